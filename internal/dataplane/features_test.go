package dataplane

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meridian-platform/meridian/internal/dataplane/proxyproto"
	"github.com/meridian-platform/meridian/internal/testfixture"
)

// ppListener reads a PROXY header from every accepted connection and
// exposes the source it names as the connection's remote address.
type ppListener struct{ net.Listener }

type ppConn struct {
	net.Conn
	r   *bufio.Reader
	src net.Addr
}

func (c *ppConn) Read(b []byte) (int, error) { return c.r.Read(b) }
func (c *ppConn) RemoteAddr() net.Addr       { return c.src }

func (l ppListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	br := bufio.NewReader(c)
	h, err := proxyproto.Read(br)
	if err != nil {
		c.Close()
		return &ppConn{Conn: c, r: bufio.NewReader(strings.NewReader("")), src: c.RemoteAddr()}, nil
	}
	return &ppConn{Conn: c, r: br, src: net.TCPAddrFromAddrPort(h.Source)}, nil
}

func TestProxyProtocolToOrigin(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "remote=%s", r.RemoteAddr)
	})}
	go hs.Serve(ppListener{ln})
	defer hs.Close()
	port, tport := freePort(t), freePort(t)
	startServer(t, fmt.Sprintf(`apiVersion: meridian/v1
kind: OriginPool
metadata: {name: pp, namespace: t}
spec: {endpoints: [{address: %q}], proxyProtocol: 2}
`, ln.Addr().String())+lbYAML(port, "pp")+fmt.Sprintf(`---
apiVersion: meridian/v1
kind: TCPLoadBalancer
metadata: {name: tcp, namespace: t}
spec: {listeners: [{port: %d, address: 127.0.0.1, proxyProtocol: true}], pool: pp}
`, tport), Options{})
	// HTTP: the origin sees the client's address in the PROXY header.
	for i := 0; i < 3; i++ {
		resp, body := get(t, fmt.Sprintf("http://127.0.0.1:%d/", port), nil)
		if resp.StatusCode != 200 || !strings.HasPrefix(body, "remote=127.0.0.1:") {
			t.Fatalf("%d %q", resp.StatusCode, body)
		}
	}
	// TCP with PROXY in and out: the address from the inbound header is
	// passed on.
	got := rawExchange(t, fmt.Sprintf("127.0.0.1:%d", tport),
		"PROXY TCP4 192.0.2.9 127.0.0.1 4242 80\r\nGET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	if !strings.Contains(got, "remote=192.0.2.9:4242") {
		t.Fatalf("tcp: %q", got)
	}
}

func TestAffinityHashMirrorCORS(t *testing.T) {
	var mirrored atomic.Int64
	var mu sync.Mutex
	seen := map[string]int{}
	mk := func(name string) *httptest.Server {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			seen[name]++
			mu.Unlock()
			fmt.Fprint(w, name)
		}))
		t.Cleanup(s.Close)
		return s
	}
	a, b, c := mk("a"), mk("b"), mk("c")
	shadow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mirrored.Add(1)
		w.WriteHeader(500)
	}))
	defer shadow.Close()
	port := freePort(t)
	startServer(t, fmt.Sprintf(`apiVersion: meridian/v1
kind: OriginPool
metadata: {name: sticky, namespace: t}
spec: {endpoints: [{address: %q}, {address: %q}, {address: %q}], sessionAffinity: {cookie: srv}}
---
apiVersion: meridian/v1
kind: OriginPool
metadata: {name: hashed, namespace: t}
spec: {endpoints: [{address: %q}, {address: %q}, {address: %q}], loadBalancing: maglev, hashPolicy: {header: x-user}}
`, hostOf(a.URL), hostOf(b.URL), hostOf(c.URL), hostOf(a.URL), hostOf(b.URL), hostOf(c.URL))+"---\n"+pool("shadow", hostOf(shadow.URL))+
		lbDoc([]string{listenerAt(port)}, "{match: {pathPrefix: /sticky}, pool: sticky}",
			`{match: {pathPrefix: /hash}, pool: hashed, mirror: {pool: shadow}, cors: {allowOrigins: ["https://app.test"], allowMethods: [GET, PUT], maxAge: 1m, exposeHeaders: [X-Total]}}`), Options{})
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	// Affinity: the cookie set on the first answer pins later requests.
	resp, first := get(t, base+"/sticky", nil)
	var cookie string
	for _, ck := range resp.Cookies() {
		if ck.Name == "srv" {
			cookie = ck.Value
		}
	}
	if cookie == "" {
		t.Fatalf("no affinity cookie: %v", resp.Header)
	}
	for i := 0; i < 10; i++ {
		_, body := get(t, base+"/sticky", map[string]string{"Cookie": "srv=" + cookie})
		if body != first {
			t.Fatalf("affinity broken: %q then %q", first, body)
		}
	}
	// Hash on a header: the same user always lands on the same endpoint,
	// different users spread.
	owners := map[string]bool{}
	for u := 0; u < 30; u++ {
		user := fmt.Sprintf("user-%d", u)
		_, want := get(t, base+"/hash", map[string]string{"X-User": user})
		for i := 0; i < 3; i++ {
			if _, got := get(t, base+"/hash", map[string]string{"X-User": user}); got != want {
				t.Fatalf("%s moved from %s to %s", user, want, got)
			}
		}
		owners[want] = true
	}
	if len(owners) < 2 {
		t.Fatalf("hash did not spread: %v", owners)
	}
	// Mirror: the shadow pool got copies; its 500s never reached clients.
	for deadline := time.Now().Add(15 * time.Second); mirrored.Load() < 100 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if n := mirrored.Load(); n < 100 {
		t.Fatalf("mirrored %d of 120", n)
	}
	// CORS preflight is answered by the proxy; simple requests get headers.
	req, _ := http.NewRequest("OPTIONS", base+"/hash", nil)
	req.Header.Set("Origin", "https://app.test")
	req.Header.Set("Access-Control-Request-Method", "PUT")
	pre, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	pre.Body.Close()
	if pre.StatusCode != 204 || pre.Header.Get("Access-Control-Allow-Origin") != "https://app.test" ||
		pre.Header.Get("Access-Control-Allow-Methods") != "GET, PUT" || pre.Header.Get("Access-Control-Max-Age") != "60" {
		t.Fatalf("preflight %d %v", pre.StatusCode, pre.Header)
	}
	resp, _ = get(t, base+"/hash", map[string]string{"Origin": "https://app.test"})
	if resp.Header.Get("Access-Control-Allow-Origin") != "https://app.test" || resp.Header.Get("Access-Control-Expose-Headers") != "X-Total" {
		t.Fatalf("cors headers %v", resp.Header)
	}
	resp, _ = get(t, base+"/hash", map[string]string{"Origin": "https://evil.test"})
	if resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatal("CORS allowed an unknown origin")
	}
}

func TestTimeoutBreakerAndHealth(t *testing.T) {
	release := make(chan struct{})
	var healthy atomic.Bool
	healthy.Store(true)
	// The slow origin answers only once the test ends: an answer before
	// that comes from the route's timeout or the circuit breaker.
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	defer close(release) // before slow.Close, which waits for its handlers
	flappy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" && !healthy.Load() {
			w.WriteHeader(503)
			return
		}
		fmt.Fprint(w, "flappy")
	}))
	defer flappy.Close()
	steady, _ := echoBackend(t, "steady")
	port := freePort(t)
	// Probes get a timeout a loaded machine meets (a probe timing out
	// marks a healthy endpoint unhealthy) and two failures to eject.
	s := startServer(t, fmt.Sprintf(`apiVersion: meridian/v1
kind: OriginPool
metadata: {name: slow, namespace: t}
spec: {endpoints: [{address: %q}], circuitBreaker: {maxRequests: 1}}
---
apiVersion: meridian/v1
kind: OriginPool
metadata: {name: hc, namespace: t}
spec:
  endpoints: [{address: %q}, {address: %q}]
  healthCheck: {http: {path: /health}, interval: 500ms, timeout: 500ms, healthyThreshold: 1, unhealthyThreshold: 2}
`, hostOf(slow.URL), hostOf(flappy.URL), hostOf(steady.URL))+lbDoc([]string{listenerAt(port)},
		"{match: {pathPrefix: /slow}, pool: slow, timeout: 200ms}", "{match: {pathPrefix: /held}, pool: slow}",
		"{match: {pathPrefix: /hc}, pool: hc}"), Options{})
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	start := time.Now()
	resp, _ := get(t, base+"/slow", nil)
	if resp.StatusCode != 504 || time.Since(start) > 4*time.Second {
		t.Fatalf("timeout: %d after %v", resp.StatusCode, time.Since(start))
	}
	// Circuit breaker: with one request in flight the next is refused. The
	// request held in flight goes by a route without a timeout, so it stays
	// in flight however long the test takes to send the next one.
	go func() {
		c := &http.Client{Timeout: 30 * time.Second}
		if r, err := c.Get(base + "/held"); err == nil {
			r.Body.Close()
		}
	}()
	p := s.Registry().Pool("t/slow")
	testfixture.WaitFor(t, "the held request in flight", func() bool { return p.Stats().ActiveRequests == 1 })
	resp, body := get(t, base+"/slow", nil)
	if resp.StatusCode != 503 || !strings.Contains(body, "circuit") {
		t.Fatalf("breaker: %d %q", resp.StatusCode, body)
	}
	// Health checks: an unhealthy endpoint gets no traffic.
	healthy.Store(false)
	hp := s.Registry().Pool("t/hc")
	testfixture.WaitFor(t, "flappy unhealthy", func() bool { return hp.Stats().Available == 1 })
	for i := 0; i < 10; i++ {
		if _, body := get(t, base+"/hc", nil); !strings.Contains(body, "backend=steady") {
			t.Fatalf("unhealthy endpoint served: %q", body)
		}
	}
	healthy.Store(true)
	testfixture.WaitFor(t, "flappy healthy again", func() bool { return hp.Stats().Available == 2 })
	got := map[string]bool{}
	for i := 0; i < 10; i++ {
		_, body := get(t, base+"/hc", nil)
		got[strings.SplitN(body, " ", 2)[0]] = true
	}
	if !got["flappy"] {
		t.Fatalf("recovered endpoint gets no traffic: %v", got)
	}
}

func TestH2CPlainRequestAndBodyStage(t *testing.T) {
	a, _ := echoBackend(t, "a")
	port := freePort(t)
	startServer(t, pool("a", hostOf(a.URL))+lbSpec(`["*"]`, []string{listenerAt(port, "h2c: true")}, "defaultPool: a"), Options{})
	// Prior-knowledge h2c request.
	c := dialFor(t, fmt.Sprintf("127.0.0.1:%d", port), 3*time.Second)
	defer c.Close()
	if _, err := c.Write(h2Preface); err != nil {
		t.Fatal(err)
	}
	// The server answers with a SETTINGS frame (type 4) first.
	hdr := make([]byte, 9)
	if _, err := io.ReadFull(c, hdr); err != nil || hdr[3] != 4 {
		t.Fatalf("no h2 SETTINGS: %v %v", hdr, err)
	}
	// HTTP/1.1 still works on the same listener.
	resp, body := get(t, fmt.Sprintf("http://127.0.0.1:%d/p", port), nil)
	if resp.StatusCode != 200 || !strings.Contains(body, "backend=a") {
		t.Fatalf("h1 on h2c listener: %d %q", resp.StatusCode, body)
	}
}

func TestOutlierEjection(t *testing.T) { outlierEjection(t, Options{}) }

// outlierEjection sends 20 requests to a pool of a failing and a good
// endpoint with outlier detection and returns the server and the
// listener's key.
func outlierEjection(t *testing.T, opts Options) (*Server, string) {
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) }))
	defer bad.Close()
	good, _ := echoBackend(t, "good")
	port := freePort(t)
	s := startServer(t, fmt.Sprintf(`apiVersion: meridian/v1
kind: OriginPool
metadata: {name: p, namespace: t}
spec:
  endpoints: [{address: %q}, {address: %q}]
  outlierDetection: {consecutive5xx: 3, maxEjectionPercent: 50, baseEjectionTime: 30s}
`, hostOf(bad.URL), hostOf(good.URL))+lbYAML(port, "p"), opts)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	for i := 0; i < 10; i++ {
		get(t, base+"/", nil)
	}
	var ejected int
	for _, e := range s.Registry().Pool("t/p").Stats().Endpoints {
		if e.Ejected {
			ejected++
			if e.Address != hostOf(bad.URL) {
				t.Fatalf("good endpoint ejected: %+v", e)
			}
		}
	}
	if ejected != 1 {
		t.Fatalf("ejected %d endpoints", ejected)
	}
	for i := 0; i < 10; i++ {
		if resp, _ := get(t, base+"/", nil); resp.StatusCode != 200 {
			t.Fatalf("ejected endpoint still served: %d", resp.StatusCode)
		}
	}
	return s, fmt.Sprintf("127.0.0.1:%d", port)
}

func TestClientTimeouts(t *testing.T) {
	a, _ := echoBackend(t, "a")
	port := freePort(t)
	startServer(t, pool("a", hostOf(a.URL))+lbSpec(`["*"]`, []string{listenerAt(port)},
		"defaultPool: a", "timeouts: {requestHeader: 200ms, requestBody: 200ms, idle: 300ms}"), Options{})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	closedWithin := func(send string, limit time.Duration) bool {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, send)
		_ = c.SetReadDeadline(time.Now().Add(limit))
		_, err = io.ReadAll(c)
		ne, ok := err.(net.Error)
		return !(ok && ne.Timeout())
	}
	// A head that never ends (slowloris) is cut off.
	if !closedWithin("GET / HTTP/1.1\r\nHost: a\r\nX-Slow: ", 2*time.Second) {
		t.Fatal("slow head not cut off")
	}
	// A body that never arrives is cut off.
	if !closedWithin("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nabc", 2*time.Second) {
		t.Fatal("slow body not cut off")
	}
	// An idle keep-alive connection is closed.
	if !closedWithin("GET / HTTP/1.1\r\nHost: a\r\n\r\n", 2*time.Second) {
		t.Fatal("idle connection kept")
	}
}
