//go:build linux

package evloop

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/internal/dataplane/config"
	"github.com/meridian-platform/meridian/internal/lb"
)

// namedOrigin answers "<name> <path>" to every request.
func namedOrigin(t *testing.T, name string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, name+" "+r.URL.Path)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

const routingConfig = `
apiVersion: meridian/v1
kind: OriginPool
metadata: {name: a, namespace: ns}
spec: {endpoints: [{address: "%s"}]}
---
apiVersion: meridian/v1
kind: OriginPool
metadata: {name: b, namespace: ns}
spec: {endpoints: [{address: "%s"}]}
---
apiVersion: meridian/v1
kind: HTTPLoadBalancer
metadata: {name: shop, namespace: ns}
spec:
  domains: ["shop.test"]
  listeners: [{port: 8080, address: 127.0.0.1}]
  routes:
    - match: {pathPrefix: /b}
      pool: b
    - match: {path: /old}
      redirect: {path: /new, code: 301}
    - match: {pathPrefix: /rewrite}
      pool: b
      prefixRewrite: /x
  defaultPool: a
---
apiVersion: meridian/v1
kind: HTTPLoadBalancer
metadata: {name: logged, namespace: ns}
spec:
  domains: ["logged.test"]
  listeners: [{port: 8080, address: 127.0.0.1}]
  defaultPool: b
  accessLog: {enabled: true}
`

// startTable compiles the configuration and starts its pools.
func startTable(t testing.TB, a, b string) (*config.HTTPListener, *lb.Registry) {
	t.Helper()
	objs, err := v1.DecodeAll([]byte(fmt.Sprintf(routingConfig, a, b)))
	if err != nil {
		t.Fatal(err)
	}
	tab := config.Compile(objs)
	if len(tab.Errors) > 0 {
		t.Fatalf("compile: %v", tab.Errors)
	}
	reg := lb.NewRegistry(lb.RegistryOptions{})
	t.Cleanup(reg.Close)
	var pcs []lb.PoolConfig
	for _, p := range tab.Pools {
		pcs = append(pcs, p.LB)
	}
	if err := reg.Update(context.Background(), pcs); err != nil {
		t.Fatal(err)
	}
	lc := tab.HTTP["127.0.0.1:8080"]
	if lc == nil {
		t.Fatalf("no listener in %v", tab.HTTP)
	}
	return lc, reg
}

func TestTableRouterAndHandoff(t *testing.T) {
	lc, reg := startTable(t, namedOrigin(t, "A"), namedOrigin(t, "B"))
	handed := make(chan string, 16)
	var mu sync.Mutex
	var observed []string
	p, err := Start(Config{
		Observe: func(tag any, status int, elapsed time.Duration, _, bytesOut int64) {
			mu.Lock()
			defer mu.Unlock()
			observed = append(observed, fmt.Sprintf("%s %d %v", tag.(*config.Route).Name, status, bytesOut >= 3 && bytesOut < 20 && elapsed >= 0)) // the body ("A /path"), not the head
		},
		Listen: "127.0.0.1:0",
		Loops:  2,
		Router: &TableRouter{Listener: func() *config.HTTPListener { return lc }, Pools: reg.Pool},
		// The fallback answers itself here; in the node it is the
		// goroutine engine.
		Handoff: func(conn net.Conn, buffered []byte) {
			go func() {
				defer conn.Close()
				br := bufio.NewReader(io.MultiReader(strings.NewReader(string(buffered)), conn))
				req, err := http.ReadRequest(br)
				if err != nil {
					handed <- "error: " + err.Error()
					return
				}
				handed <- req.Host + " " + req.URL.Path
				io.WriteString(conn, "HTTP/1.1 299 Handed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
			}()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	addr := p.Addr().String()

	c := dial(t, addr)
	for _, tt := range []struct{ host, path, want string }{
		{"shop.test", "/", "A /"},
		{"shop.test:8080", "/b/1", "B /b/1"},
		{"SHOP.test", "/c?x=1", "A /c"},
	} {
		resp, body := c.roundTrip(t, "GET "+tt.path+" HTTP/1.1\r\nHost: "+tt.host+"\r\n\r\n", "GET")
		if resp.StatusCode != 200 || body != tt.want {
			t.Errorf("%s%s: got %d %q, want %q", tt.host, tt.path, resp.StatusCode, body, tt.want)
		}
	}
	// Requests the loop does not serve go to Handoff with their bytes.
	for _, tt := range []struct{ name, raw, want string }{
		{"redirect route", "GET /old HTTP/1.1\r\nHost: shop.test\r\n\r\n", "shop.test /old"},
		{"rewrite route", "GET /rewrite/1 HTTP/1.1\r\nHost: shop.test\r\n\r\n", "shop.test /rewrite/1"},
		{"access log", "GET / HTTP/1.1\r\nHost: logged.test\r\n\r\n", "logged.test /"},
		{"unknown host", "GET / HTTP/1.1\r\nHost: other.test\r\n\r\n", "other.test /"},
		{"path to normalize", "GET /b/../a HTTP/1.1\r\nHost: shop.test\r\n\r\n", "shop.test /b/../a"},
		{"upgrade", "GET /ws HTTP/1.1\r\nHost: shop.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", "shop.test /ws"},
		{"absolute form", "GET http://shop.test/abs HTTP/1.1\r\nHost: shop.test\r\n\r\n", "shop.test /abs"},
	} {
		c := dial(t, addr)
		// A served request first: the handoff happens mid-connection.
		if _, body := c.roundTrip(t, "GET / HTTP/1.1\r\nHost: shop.test\r\n\r\n", "GET"); body != "A /" {
			t.Fatalf("%s: first request got %q", tt.name, body)
		}
		resp, _ := c.roundTrip(t, tt.raw, "GET")
		if resp.StatusCode != 299 {
			t.Errorf("%s: got %d, want the handoff's 299", tt.name, resp.StatusCode)
		}
		if got := <-handed; got != tt.want {
			t.Errorf("%s: handoff saw %q, want %q", tt.name, got, tt.want)
		}
	}
	mu.Lock()
	got := strings.Join(observed, ", ")
	mu.Unlock()
	want := "ns/shop#default 200 true, ns/shop#0 200 true, ns/shop#default 200 true" + strings.Repeat(", ns/shop#default 200 true", 7)
	if got != want {
		t.Errorf("observed %s, want %s", got, want)
	}
	st := p.Stats()
	if st.Handoffs != 7 || st.Requests != 10 {
		t.Errorf("stats %+v: want 7 handoffs and 10 served requests", st)
	}
}

func TestNormalPath(t *testing.T) {
	for _, tt := range []struct{ target, path, query string }{
		{"/", "/", ""},
		{"/a/b?x=1&y", "/a/b", "x=1&y"},
		{"/a.b/c..d/.e", "/a.b/c..d/.e", ""},
		{"/a/./b", "", ""},
		{"/a/../b?q", "", "q"},
		{"/a/..", "", ""},
		{"/a//b", "", ""},
		{"/a%2Fb", "", ""},
		{"/a\\b", "", ""},
	} {
		p, q := normalPath([]byte(tt.target))
		if string(p) != tt.path || string(q) != tt.query || (tt.path == "") != (p == nil) {
			t.Errorf("%q: got %q %q, want %q %q", tt.target, p, q, tt.path, tt.query)
		}
	}
}
