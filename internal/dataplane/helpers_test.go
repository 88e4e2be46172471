package dataplane

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"sigs.k8s.io/yaml"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/internal/dataplane/config"
	"github.com/meridian-platform/meridian/internal/testfixture"
)

// freePort returns a loopback port that was free a moment ago.
var freePort = testfixture.FreePort

func decodeObjects(t testing.TB, src string) []v1.Object {
	t.Helper()
	var out []v1.Object
	for _, doc := range strings.Split(src, "\n---\n") {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		var tm v1.TypeMeta
		if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
			t.Fatal(err)
		}
		o, ok := v1.New(tm.Kind)
		if !ok {
			t.Fatalf("unknown kind %q", tm.Kind)
		}
		if err := yaml.UnmarshalStrict([]byte(doc), o); err != nil {
			t.Fatalf("decoding %s: %v\n%s", tm.Kind, err, doc)
		}
		out = append(out, o)
	}
	return out
}

// testEngine is the HTTP/1.1 engine the package's tests run with: the
// default ("": the event-loop engine in front of the goroutine engine);
// DATAPLANE_HTTP1_ENGINE=goroutine runs them all with the goroutine engine
// alone. TestOtherHTTP1Engine runs a part of them with the other engine,
// TestEnginesAgree compares the two.
var testEngine = os.Getenv("DATAPLANE_HTTP1_ENGINE")

func quietLoggerT() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// startServer compiles src and applies it to a new server; it fails the
// test on any compile or apply error.
func startServer(t testing.TB, src string, opts Options) *Server {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = quietLoggerT()
	}
	if opts.AccessLog == nil {
		opts.AccessLog = io.Discard
	}
	if opts.HTTP1Engine == "" {
		opts.HTTP1Engine = testEngine
	}
	s := New(opts)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
	})
	apply(t, s, src)
	return s
}

func apply(t testing.TB, s *Server, src string) {
	t.Helper()
	tab := config.Compile(decodeObjects(t, src))
	if len(tab.Errors) > 0 {
		t.Fatalf("compile errors: %v", tab.Errors)
	}
	if err := s.Apply(context.Background(), tab); err != nil {
		t.Fatalf("apply: %v", err)
	}
}

func pool(name string, addrs ...string) string {
	var eps []string
	for _, a := range addrs {
		eps = append(eps, fmt.Sprintf("{address: %q}", a))
	}
	return fmt.Sprintf(`apiVersion: meridian/v1
kind: OriginPool
metadata: {name: %s, namespace: t}
spec: {endpoints: [%s]}
`, name, strings.Join(eps, ", "))
}

func hostOf(url string) string {
	return strings.TrimPrefix(strings.TrimPrefix(url, "http://"), "https://")
}

// deadAddr is an address no test server listens on: connecting to it
// fails at once. (A port found free by freePort may be taken by another
// process before the test connects.)
const deadAddr = "127.0.0.1:1"

// engineNames are the HTTP/1.1 engines the tests that compare them run.
var engineNames = []string{EngineGoroutine, EngineEvloop}

// startEngines starts a server per HTTP/1.1 engine, each with cfg(port)
// on a port of its own; opts, when not nil, gives an engine's options
// (HTTP1Engine is set here). It returns the address and the server of
// each by engine.
func startEngines(t testing.TB, cfg func(port int) string, opts func(engine string) Options) (map[string]string, map[string]*Server) {
	t.Helper()
	addrs, servers := map[string]string{}, map[string]*Server{}
	for _, engine := range engineNames {
		var o Options
		if opts != nil {
			o = opts(engine)
		}
		o.HTTP1Engine = engine
		port := freePort(t)
		servers[engine] = startServer(t, cfg(port), o)
		addrs[engine] = fmt.Sprintf("127.0.0.1:%d", port)
	}
	return addrs, servers
}

// poolWith is pool for one endpoint with more spec fields (YAML flow
// mapping entries such as "protocol: h2c").
func poolWith(name, addr, more string) string {
	return fmt.Sprintf(`---
apiVersion: meridian/v1
kind: OriginPool
metadata: {name: %s, namespace: t}
spec: {endpoints: [{address: %q}], %s}
`, name, addr, more)
}

// h1AndH2CPools are two pools of the one origin at addr: h1 speaks
// HTTP/1.1 to it, h2 h2c.
func h1AndH2CPools(h1, h2, addr string) string {
	return pool(h1, addr) + poolWith(h2, addr, "protocol: h2c")
}

// listenerAt is a listener on 127.0.0.1:port (a YAML flow mapping) with
// more fields (such as "h2c: true").
func listenerAt(port int, more ...string) string {
	return fmt.Sprintf("{port: %d, address: 127.0.0.1%s}", port, strings.Join(append([]string{""}, more...), ", "))
}

// lbDoc is the YAML document of the load balancer "lb" for every domain
// on the listeners (YAML flow mappings, see listenerAt) with the routes
// (one YAML flow mapping each), after a document separator.
func lbDoc(listeners []string, routes ...string) string {
	return lbDocFor(`["*"]`, listeners, routes...)
}

// lbDocFor is lbDoc for the domains (a YAML flow sequence).
func lbDocFor(domains string, listeners []string, routes ...string) string {
	return lbSpec(domains, listeners, "routes:\n  - "+strings.Join(routes, "\n  - "))
}

// lbSpec is the YAML document of the load balancer "lb" for the domains
// (a YAML flow sequence) on the listeners, with more spec fields (each a
// "name: value" YAML line, such as "defaultPool: a"), after a document
// separator.
func lbSpec(domains string, listeners []string, fields ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `---
apiVersion: meridian/v1
kind: HTTPLoadBalancer
metadata: {name: lb, namespace: t}
spec:
  domains: %s
  listeners: [%s]
`, domains, strings.Join(listeners, ", "))
	for _, f := range fields {
		b.WriteString("  " + f + "\n")
	}
	return b.String()
}

// startH2C starts o speaking h2c (prior knowledge), and HTTP/1.1 too when
// http1 is set; it is closed when the test ends.
func startH2C(t testing.TB, o *httptest.Server, http1 bool) {
	o.Config.Protocols = new(http.Protocols)
	o.Config.Protocols.SetHTTP1(http1)
	o.Config.Protocols.SetUnencryptedHTTP2(true)
	o.Start()
	t.Cleanup(o.Close)
}

// statusCount sends n requests with send, reads each answer whole and
// returns how many had the status.
func statusCount(t testing.TB, n, status int, send func() (*http.Response, error)) int {
	t.Helper()
	count := 0
	for range n {
		resp, err := send()
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode == status {
			count++
		}
	}
	return count
}

// grpcHealthOrigin starts a gRPC server (h2c) on loopback with the health
// service, each of services SERVING, and returns its address and the
// health service; it stops when the test ends.
func grpcHealthOrigin(t testing.TB, services []string, opts ...grpc.ServerOption) (string, *health.Server) {
	t.Helper()
	gs := grpc.NewServer(opts...)
	hs := health.NewServer()
	for _, s := range services {
		hs.SetServingStatus(s, healthpb.HealthCheckResponse_SERVING)
	}
	healthpb.RegisterHealthServer(gs, hs)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go gs.Serve(ln)
	t.Cleanup(gs.Stop)
	return ln.Addr().String(), hs
}

// dialFor connects to addr with a deadline d from now for all the
// connection's reads and writes; the caller closes it.
func dialFor(t testing.TB, addr string, d time.Duration) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(d))
	return c
}
