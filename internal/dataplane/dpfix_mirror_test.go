package dataplane

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// shadowRecord is what a shadow origin saw of one mirrored request.
type shadowRecord struct {
	method, uri, host, xff, proto, body string
}

// TestMirrorHTTP2Client checks mirroring on the HTTP/2 client path (h2c,
// to HTTP/1.1 and h2c shadow pools): the shadow gets the request as the
// primary origin does (same Host, rewritten path, forwarding fields,
// body: kept in memory, or copied as it streams when it ends within the
// replay bound; not at all past it), a slow or failing shadow neither
// delays nor changes the answer, and the route's percentage holds.
func TestMirrorHTTP2Client(t *testing.T) {
	primary := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "primary %s %s %d", r.Method, r.URL.Path, len(b))
	}))
	startH2C(t, primary, true)
	var mu sync.Mutex
	var seen []shadowRecord
	release := make(chan struct{})
	shadow := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen = append(seen, shadowRecord{r.Method, r.RequestURI, r.Host, r.Header.Get("X-Forwarded-For"), r.Proto, string(b)})
		mu.Unlock()
		if strings.HasSuffix(r.URL.Path, "/slow") {
			<-release
		}
		w.WriteHeader(500)
	}))
	startH2C(t, shadow, true)
	defer close(release) // before the shadow closes (the test's cleanup)
	port := freePort(t)
	src := fmt.Sprintf(`apiVersion: meridian/v1
kind: OriginPool
metadata: {name: main, namespace: t}
spec: {endpoints: [{address: %[1]q}]}
---
apiVersion: meridian/v1
kind: OriginPool
metadata: {name: shadow1, namespace: t}
spec: {endpoints: [{address: %[2]q}]}
---
apiVersion: meridian/v1
kind: OriginPool
metadata: {name: shadow2, namespace: t}
spec: {endpoints: [{address: %[2]q}], protocol: h2c}
---
apiVersion: meridian/v1
kind: HTTPLoadBalancer
metadata: {name: lb, namespace: t}
spec:
  domains: ["*"]
  listeners: [{port: %[3]d, address: 127.0.0.1, h2c: true}]
  routes:
    - match: {pathPrefix: /h1shadow}
      pool: main
      prefixRewrite: /rewritten
      mirror: {pool: shadow1}
    - match: {pathPrefix: /h2shadow}
      pool: main
      mirror: {pool: shadow2}
    - match: {pathPrefix: /half}
      pool: main
      mirror: {pool: shadow1, percent: 50}
`, hostOf(primary.URL), hostOf(shadow.URL), port)
	startServer(t, src, Options{MaxReplayBodySize: 1024})
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	c := h2cClient()
	do := func(method, path string, body io.Reader, size int64) string {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, body)
		req.Host = "shop.test"
		if body != nil {
			req.ContentLength = size
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.ProtoMajor != 2 {
			t.Fatalf("%s %s: %d %s %q", method, path, resp.StatusCode, resp.Proto, b)
		}
		return string(b)
	}
	waitSeen := func(n int) []shadowRecord {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			mu.Lock()
			got := append([]shadowRecord(nil), seen...)
			mu.Unlock()
			if len(got) >= n || time.Now().After(deadline) {
				mu.Lock()
				seen = seen[:0]
				mu.Unlock()
				return got
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	streamed := func(s string) io.Reader { // a body without a length: it streams
		pr, pw := io.Pipe()
		go func() {
			_, _ = io.WriteString(pw, s)
			pw.Close()
		}()
		return pr
	}
	cases := []struct {
		name, method, path string
		body               func() io.Reader
		size               int64
		want               *shadowRecord // nil: not mirrored
	}{
		{"GET to an HTTP/1.1 shadow", "GET", "/h1shadow/a?q=1", nil, 0,
			&shadowRecord{"GET", "/rewritten/a?q=1", "shop.test", "127.0.0.1", "HTTP/1.1", ""}},
		{"GET to an h2c shadow", "GET", "/h2shadow/b", nil, 0,
			&shadowRecord{"GET", "/h2shadow/b", "shop.test", "127.0.0.1", "HTTP/2.0", ""}},
		{"body kept in memory", "POST", "/h2shadow/c", func() io.Reader { return strings.NewReader("small body") }, 10,
			&shadowRecord{"POST", "/h2shadow/c", "shop.test", "127.0.0.1", "HTTP/2.0", "small body"}},
		{"streamed body within the bound", "PUT", "/h1shadow/d", func() io.Reader { return streamed("streamed body") }, -1,
			&shadowRecord{"PUT", "/rewritten/d", "shop.test", "127.0.0.1", "HTTP/1.1", "streamed body"}},
		{"body past the bound", "POST", "/h2shadow/e", func() io.Reader { return strings.NewReader(strings.Repeat("x", 4096)) }, 4096, nil},
		{"streamed body past the bound", "POST", "/h2shadow/f", func() io.Reader { return streamed(strings.Repeat("y", 4096)) }, -1, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var body io.Reader
			if tc.body != nil {
				body = tc.body()
			}
			got := do(tc.method, tc.path, body, tc.size)
			if !strings.HasPrefix(got, "primary "+tc.method) {
				t.Fatalf("answer %q", got)
			}
			if tc.want == nil {
				time.Sleep(100 * time.Millisecond)
				if s := waitSeen(0); len(s) != 0 {
					t.Fatalf("mirrored a body past the bound: %+v", s)
				}
				return
			}
			s := waitSeen(1)
			if len(s) != 1 || s[0] != *tc.want {
				t.Fatalf("shadow saw %+v, want %+v", s, *tc.want)
			}
		})
	}
	// A shadow that does not answer delays nothing.
	t0 := time.Now()
	for i := 0; i < 5; i++ {
		do("GET", "/h2shadow/slow", nil, 0)
	}
	// (A shadow held up an answer for the 60s default route timeout; 10s
	// leaves a loaded machine room for five exchanges.)
	if d := time.Since(t0); d > 10*time.Second {
		t.Fatalf("a stalled shadow delayed the answers: %v", d)
	}
	waitSeen(5)
	// The percentage: about half of 200 requests.
	for i := 0; i < 200; i++ {
		do("GET", "/half", nil, 0)
	}
	time.Sleep(300 * time.Millisecond) // the mirrors of the last requests land
	if n := len(waitSeen(0)); n < 60 || n > 140 {
		t.Fatalf("percent 50 mirrored %d of 200", n)
	}
}

// TestMirrorGRPC checks mirroring of gRPC calls over h2c: unary and
// server-streaming calls are copied to a shadow gRPC server whose
// failures never reach the client.
func TestMirrorGRPC(t *testing.T) {
	serve := func(intercept grpc.UnaryServerInterceptor, sintercept grpc.StreamServerInterceptor) string {
		var opts []grpc.ServerOption
		if intercept != nil {
			opts = append(opts, grpc.UnaryInterceptor(intercept), grpc.StreamInterceptor(sintercept))
		}
		addr, _ := grpcHealthOrigin(t, []string{"shop"}, opts...)
		return addr
	}
	var unary, streams atomic.Int64
	var lastService atomic.Value
	primary := serve(nil, nil)
	shadow := serve(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		unary.Add(1)
		if r, ok := req.(*healthpb.HealthCheckRequest); ok {
			lastService.Store(r.Service)
		}
		return nil, status.Error(codes.Internal, "shadow fails")
	}, func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		streams.Add(1)
		return status.Error(codes.Internal, "shadow fails")
	})
	port := freePort(t)
	src := pool("g", primary) + "---\n" + pool("shadow", shadow) +
		lbDoc([]string{listenerAt(port, "h2c: true")}, "{pool: g, mirror: {pool: shadow}}")
	startServer(t, src, Options{})
	cc, err := grpc.NewClient(fmt.Sprintf("127.0.0.1:%d", port), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	hc := healthpb.NewHealthClient(cc)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for i := 0; i < 10; i++ {
		r, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: "shop"})
		if err != nil || r.Status != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("check %d: %v %v", i, r, err)
		}
	}
	w, err := hc.Watch(ctx, &healthpb.HealthCheckRequest{Service: "shop"})
	if err != nil {
		t.Fatal(err)
	}
	if m, err := w.Recv(); err != nil || m.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("watch: %v %v", m, err)
	}
	for deadline := time.Now().Add(5 * time.Second); (unary.Load() < 10 || streams.Load() < 1) && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	if unary.Load() != 10 || streams.Load() != 1 {
		t.Fatalf("shadow got %d unary calls and %d streams, want 10 and 1", unary.Load(), streams.Load())
	}
	if s, _ := lastService.Load().(string); s != "shop" {
		t.Fatalf("shadow decoded service %q: the message was not copied whole", s)
	}
}

// TestMirrorHTTP1ClientToH2Shadow: an HTTP/1.1 client's request mirrored
// to a shadow pool that speaks only h2c arrives there over HTTP/2.
func TestMirrorHTTP1ClientToH2Shadow(t *testing.T) {
	primary, _ := echoBackend(t, "primary")
	got := make(chan shadowRecord, 4)
	shadow := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- shadowRecord{r.Method, r.RequestURI, r.Host, r.Header.Get("X-Forwarded-For"), r.Proto, string(b)}
	}))
	startH2C(t, shadow, false) // no HTTP/1.1
	port := freePort(t)
	src := pool("main", hostOf(primary.URL)) + poolWith("shadow", hostOf(shadow.URL), "protocol: h2c") +
		lbDoc([]string{listenerAt(port)}, "{pool: main, mirror: {pool: shadow}}")
	startServer(t, src, Options{})
	req, _ := http.NewRequest("POST", fmt.Sprintf("http://127.0.0.1:%d/x?y=1", port), strings.NewReader("copy me"))
	req.Host = "shop.test"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	want := shadowRecord{"POST", "/x?y=1", "shop.test", "127.0.0.1", "HTTP/2.0", "copy me"}
	select {
	case s := <-got:
		if s != want {
			t.Fatalf("shadow saw %+v, want %+v", s, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the h2c shadow got nothing")
	}
}
