//go:build linux

package dataplane

import (
	"crypto/tls"
	"errors"
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

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/internal/dataplane/config"
	"github.com/meridian-platform/meridian/internal/dataplane/dptest"
)

// probeStage is a loop-servable stage that writes down what it sees of
// each exchange and answers some paths itself, as a security stage would.
type probeStage struct {
	mu   sync.Mutex
	seen []string          // what OnRequestHeaders saw, in order
	ids  map[string]string // request id by X-Probe value
	done map[string]int    // OnDone calls by request id
}

func newProbeStage() *probeStage {
	return &probeStage{ids: map[string]string{}, done: map[string]int{}}
}

func (s *probeStage) Name() string       { return "policy" }
func (s *probeStage) LoopServable() bool { return true }

func (s *probeStage) OnRequestHeaders(x *Exchange) Action {
	var b strings.Builder
	fmt.Fprintf(&b, "%s path=%q query=%q host=%q scheme=%s proto=%s target=%q tls=%v body=%v", x.Method, x.Path, x.RawQuery,
		x.Host, x.Scheme, x.Proto, x.RawTarget, x.TLS != nil, x.BodyFollows)
	if x.TLS != nil {
		fmt.Fprintf(&b, " sni=%q alpn=%q version=%x complete=%v", x.SNI(), x.TLS.NegotiatedProtocol, x.TLS.Version, x.TLS.HandshakeComplete)
	}
	fmt.Fprintf(&b, " peer=%v client=%v trusted=%v idlen=%d", x.Peer.Addr(), x.Client, x.TrustedPeer, len(x.RequestID))
	fmt.Fprintf(&b, " listener=%v vhost=%s route=%v start=%v", x.Listener != nil, x.VHost.ID, x.Route != nil, !x.Start.IsZero())
	q, ok := x.Query("q")
	m, mok := x.Query("missing")
	fmt.Fprintf(&b, " q=%q/%v missing=%q/%v", q, ok, m, mok)
	ua, _ := x.ReqHeaders.Peek("user-agent")
	fmt.Fprintf(&b, " ua=%q fields=", ua)
	x.VisitRawHeaders(func(n, v []byte) { fmt.Fprintf(&b, "[%s=%s]", n, v) })
	probe, _ := x.ReqHeaders.Peek("X-Probe")
	s.mu.Lock()
	s.seen = append(s.seen, b.String())
	s.ids[string(probe)] = string(x.RequestID)
	s.mu.Unlock()
	switch {
	case strings.HasPrefix(string(x.Path), "/limit"):
		x.Reply = Reply{Status: 429, ContentType: "text/plain; charset=utf-8", Body: []byte("too many requests\n"),
			Headers: []HeaderKV{{Name: "Retry-After", Value: "7"}}}
		return Respond
	case strings.HasPrefix(string(x.Path), "/moved"):
		x.Reply = Reply{Status: 302, Headers: []HeaderKV{{Name: "Location", Value: "https://elsewhere.test/"}}}
		return Respond
	case strings.HasPrefix(string(x.Path), "/page"):
		x.Reply = Reply{Status: 403, ContentType: "text/html; charset=utf-8", Body: []byte("<p>blocked</p>")}
		return Respond
	}
	return Continue
}

func (s *probeStage) OnDone(x *Exchange) {
	s.mu.Lock()
	s.done[string(x.RequestID)]++
	s.mu.Unlock()
}

// idOrigin answers 200 and records the X-Request-Id it got, by the
// request's X-Probe field.
func idOrigin(t *testing.T) (*httptest.Server, *sync.Map) {
	var ids sync.Map
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		ids.Store(r.Header.Get("X-Probe"), r.Header.Get("X-Request-Id"))
		_, _ = io.WriteString(w, "origin "+r.URL.RequestURI()+"\n")
	}))
	t.Cleanup(srv.Close)
	return srv, &ids
}

// TestLoopStagesAgreeWithGoroutineEngine runs a loop-servable stage behind
// both HTTP/1.1 engines: the event loop serves the bodiless requests
// itself (no hand-off), its stage sees the same request view as the
// goroutine engine's (fields, query, raw head, client), with the request
// id the origin and the access log get, its answers are the goroutine
// engine's byte for byte (but Date), its completion hook runs once per
// exchange, its access-log lines are the goroutine engine's, and a request
// with a body is handed off on the same connection.
func TestLoopStagesAgreeWithGoroutineEngine(t *testing.T) {
	origin, originIDs := idOrigin(t)
	probes := map[string]*probeStage{}
	all := strings.Join(append([]string{"requestId", "status"}, v1.AccessLogFields...), ", ")
	cfg := func(port int) string {
		return pool("a", hostOf(origin.URL)) + fmt.Sprintf(`---
apiVersion: meridian/v1
kind: HTTPLoadBalancer
metadata: {name: lb, namespace: t}
spec:
  domains: ["*"]
  listeners: [{port: %d, address: 127.0.0.1}]
  accessLog: {enabled: true, fields: [%s]}
  defaultPool: a
`, port, all)
	}
	logs := map[string]*lockedBuffer{}
	addrs, servers := startEngines(t, cfg, func(engine string) Options {
		p := newProbeStage()
		probes[engine] = p
		logs[engine] = &lockedBuffer{}
		return Options{AccessLog: logs[engine], Stages: map[string]StageFactory{"policy": func(*config.VHost, *StageEnv) Stage { return p }}}
	})
	const ua = "User-Agent: probe/1.0\r\n"
	reqs := []string{
		"GET /api/users?id=42&name=alice&q=a+b%2Fc HTTP/1.1\r\nHost: shop.test\r\n" + ua + "X-Probe: 1\r\nAccept:  */* \r\n\r\n",
		"GET /limit HTTP/1.1\r\nHost: shop.test\r\nX-Probe: 2\r\n\r\n",
		"GET /moved?q= HTTP/1.1\r\nHost: shop.test:8080\r\nX-Probe: 3\r\n\r\n",
		"HEAD /page HTTP/1.1\r\nHost: shop.test\r\nX-Probe: 4\r\n\r\n",
		"GET /page2?q&q=2 HTTP/1.1\r\nHost: shop.test\r\nX-Probe: 5\r\nX-Dup: a\r\nX-Dup: b\r\n\r\n",
		"GET /after HTTP/1.1\r\nHost: shop.test\r\nContent-Length: 0\r\nX-Probe: 6\r\n\r\n",
	}
	sameAnswers(t, addrs, "stage answers", reqs...)
	if st := servers[EngineEvloop].evStats(t, addrs[EngineEvloop]); st.Requests != uint64(len(reqs)) || st.Handoffs != 0 {
		t.Fatalf("the event loop served %d requests and handed off %d, want %d and 0", st.Requests, st.Handoffs, len(reqs))
	}
	// A body goes to the goroutine engine (its stages see the body), on
	// the connection the loop served until then.
	sameAnswers(t, addrs, "a body after a loop answer",
		"GET /limit2 HTTP/1.1\r\nHost: shop.test\r\nX-Probe: 7\r\n\r\n",
		"POST /form HTTP/1.1\r\nHost: shop.test\r\nX-Probe: 8\r\nContent-Length: 3\r\n\r\nabc")
	if st := servers[EngineEvloop].evStats(t, addrs[EngineEvloop]); st.Handoffs != 1 {
		t.Errorf("the POST was not handed off (%d hand-offs)", st.Handoffs)
	}

	// The access-log lines are the goroutine engine's, field for field.
	compareLogLines(t, waitLogLines(t, servers, logs, len(reqs)+2))

	want, got := probes[EngineGoroutine], probes[EngineEvloop]
	if len(got.seen) != len(want.seen) {
		t.Fatalf("the stage saw %d requests on the loop, %d on the goroutine engine", len(got.seen), len(want.seen))
	}
	for i := range want.seen {
		if got.seen[i] != want.seen[i] {
			t.Errorf("request %d\nevloop:    %s\ngoroutine: %s", i, got.seen[i], want.seen[i])
		}
	}
	for engine, p := range probes {
		for probe, id := range p.ids {
			if n := p.done[id]; n != 1 {
				t.Errorf("%s: request %s (id %s): OnDone ran %d times", engine, probe, id, n)
			}
		}
	}
	// The origin got the id the stage saw (requests the stage did not
	// answer).
	for _, probe := range []string{"1", "6"} {
		v, _ := originIDs.Load(probe)
		if id := got.ids[probe]; id == "" || v != id {
			t.Errorf("request %s: the stage saw id %q, the origin got %v", probe, id, v)
		}
	}
}

// TestLoopStagesAgreeHTTPS is TestLoopStagesAgreeWithGoroutineEngine on a
// TLS listener: the loop runs the stage on the bodiless requests (scheme
// "https" and the connection's TLS state, as the goroutine engine gives
// them), writes the stage's answers, redirects and direct responses
// through the connection's TLS session byte for byte as the goroutine
// engine does, keeps the connection after them, and hands off nothing.
func TestLoopStagesAgreeHTTPS(t *testing.T) {
	ca, err := dptest.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	origin, originIDs := idOrigin(t)
	probes := map[string]*probeStage{}
	cfg := func(port int) string {
		return sniLBYAML(t, ca, origin.URL, port, `  routes:
  - {match: {pathPrefix: /old}, redirect: {path: /new, code: 301}}
  - {match: {pathPrefix: /port}, redirect: {port: 8443}}
  - {match: {pathPrefix: /tea}, directResponse: {status: 418, body: "short and stout\n"}}
  - {match: {pathPrefix: /}, pool: a}
`)
	}
	addrs, servers := startEngines(t, cfg, func(engine string) Options {
		p := newProbeStage()
		probes[engine] = p
		return Options{Stages: map[string]StageFactory{"policy": func(*config.VHost, *StageEnv) Stage { return p }}}
	})
	tc := &tls.Config{ServerName: "api.example.test", RootCAs: ca.Pool, NextProtos: []string{"http/1.1"}}
	reqs := []string{
		"GET /api/users?id=42&q=a+b HTTP/1.1\r\nHost: api.example.test\r\nUser-Agent: probe/1.0\r\nX-Probe: 1\r\n\r\n",
		"GET /limit HTTP/1.1\r\nHost: api.example.test\r\nX-Probe: 2\r\n\r\n",
		"GET /old/x?k=v HTTP/1.1\r\nHost: api.example.test\r\nX-Probe: 3\r\n\r\n",
		"HEAD /page HTTP/1.1\r\nHost: api.example.test\r\nX-Probe: 4\r\n\r\n",
		"GET /port/y HTTP/1.1\r\nHost: api.example.test:443\r\nX-Probe: 5\r\n\r\n",
		"GET /tea HTTP/1.1\r\nHost: api.example.test\r\nX-Probe: 6\r\n\r\n",
		"GET /moved HTTP/1.1\r\nHost: api.example.test\r\nX-Probe: 7\r\n\r\nGET /pipelined HTTP/1.1\r\nHost: api.example.test\r\nX-Probe: 8\r\n\r\n",
		"GET /limit/last HTTP/1.1\r\nHost: api.example.test\r\nX-Probe: 9\r\nConnection: close\r\n\r\n",
	}
	want := exchangeTLS(t, addrs[EngineGoroutine], tc, reqs...)
	got := exchangeTLS(t, addrs[EngineEvloop], tc, reqs...)
	if len(got) != len(want) || len(want) != 9 {
		t.Fatalf("evloop: %d answers, goroutine: %d, want 9 (one pipelined)\nevloop: %q\ngoroutine: %q", len(got), len(want), got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("answer %d differs\nevloop:\n%s\ngoroutine:\n%s", i, got[i], want[i])
		}
	}
	if !strings.Contains(got[2], "Location: https://api.example.test/new?k=v") {
		t.Errorf("the redirect does not keep https: %s", got[2])
	}
	if st := servers[EngineEvloop].evStats(t, addrs[EngineEvloop]); st.Requests != 9 || st.Handoffs != 0 {
		t.Fatalf("the event loop served %d requests and handed off %d, want 9 and 0", st.Requests, st.Handoffs)
	}
	w, g := probes[EngineGoroutine], probes[EngineEvloop]
	w.mu.Lock()
	g.mu.Lock()
	defer w.mu.Unlock()
	defer g.mu.Unlock()
	if len(g.seen) != len(w.seen) || len(g.seen) != 9 {
		t.Fatalf("the stage saw %d requests on the loop, %d on the goroutine engine, want 9", len(g.seen), len(w.seen))
	}
	for i := range w.seen {
		if g.seen[i] != w.seen[i] {
			t.Errorf("request %d\nevloop:    %s\ngoroutine: %s", i, g.seen[i], w.seen[i])
		}
		if !strings.Contains(g.seen[i], "scheme=https") || !strings.Contains(g.seen[i], `sni="api.example.test"`) {
			t.Errorf("request %d: the stage saw %s", i, g.seen[i])
		}
	}
	for probe, id := range g.ids {
		if n := g.done[id]; n != 1 {
			t.Errorf("request %s (id %s): OnDone ran %d times", probe, id, n)
		}
	}
	if v, _ := originIDs.Load("1"); v == "" || v != g.ids["1"] {
		t.Errorf("the stage saw id %q, the origin got %v", g.ids["1"], v)
	}
}

// TestLoopAnswersTLSClientNotReading: a TLS client that sends requests the
// loop answers itself and never reads the answers loses its connection
// once their ciphertext piles up (as a plaintext client does once its
// socket buffer is full), and the loop goes on serving others.
func TestLoopAnswersTLSClientNotReading(t *testing.T) {
	ca, err := dptest.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	origin, _ := idOrigin(t)
	port := freePort(t)
	src := sniCertsYAML(t, ca) + pool("a", hostOf(origin.URL)) + fmt.Sprintf(`---
apiVersion: meridian/v1
kind: HTTPLoadBalancer
metadata: {name: lb, namespace: t}
spec:
  domains: ["*"]
  listeners: [{port: %d, address: 127.0.0.1, tls: {certificateRef: def}}]
  defaultPool: a
`, port)
	p := newProbeStage()
	s := startServer(t, src, Options{HTTP1Engine: EngineEvloop,
		Stages: map[string]StageFactory{"policy": func(*config.VHost, *StageEnv) Stage { return p }}})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	tc := &tls.Config{ServerName: "default.test", RootCAs: ca.Pool, NextProtos: []string{"http/1.1"}}
	c, err := tls.Dial("tcp", addr, tc)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	batch := []byte(strings.Repeat("GET /limit HTTP/1.1\r\nHost: default.test\r\n\r\n", 256))
	_ = c.SetWriteDeadline(time.Now().Add(20 * time.Second))
	var werr error
	for written := 0; werr == nil && written < 32<<20; written += len(batch) {
		_, werr = c.Write(batch)
	}
	if werr == nil {
		t.Fatal("32 MiB of requests written to a client that reads nothing: the loop never let it go")
	}
	var ne net.Error
	if errors.As(werr, &ne) && ne.Timeout() {
		t.Fatalf("the connection was not closed: %v", werr)
	}
	if got := exchangeTLS(t, addr, tc, "GET /limit HTTP/1.1\r\nHost: default.test\r\n\r\n", "GET /x HTTP/1.1\r\nHost: default.test\r\n\r\n"); len(got) != 2 ||
		!strings.HasPrefix(got[0], "429") || !strings.HasPrefix(got[1], "200") {
		t.Fatalf("another client after: %q", got)
	}
	if st := s.evStats(t, addr); st.Handoffs != 0 {
		t.Fatalf("%d hand-offs", st.Handoffs)
	}
}

// nopLoopStage is a loop-servable stage that lets every request through.
type nopLoopStage struct{ n atomic.Int64 }

func (s *nopLoopStage) Name() string                      { return "policy" }
func (s *nopLoopStage) LoopServable() bool                { return true }
func (s *nopLoopStage) OnRequestHeaders(*Exchange) Action { s.n.Add(1); return Continue }
func (s *nopLoopStage) OnDone(*Exchange)                  {}

// BenchmarkLoopStagePath is a GET through the event loop with a stage that
// does nothing: what running stages on the loop costs by itself (filling
// the loop's Exchange, the request id, the completion hooks), 0 allocations
// per request.
func BenchmarkLoopStagePath(b *testing.B) {
	st := &nopLoopStage{}
	port := freePort(b)
	s := startServer(b, pool("a", dptest.CannedOrigin(b))+lbDoc([]string{listenerAt(port)}, "{match: {pathPrefix: /}, pool: a}"),
		Options{HTTP1Engine: EngineEvloop, Stages: map[string]StageFactory{"policy": func(*config.VHost, *StageEnv) Stage { return st }}})
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	req := []byte("GET /api/users?id=42&name=alice HTTP/1.1\r\nHost: shop.test\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n")
	buf := make([]byte, 64<<10)
	roundTrip := func() { dptest.CannedRoundTrip(b, c, req, buf) }
	roundTrip()
	b.ReportAllocs()
	for b.Loop() {
		roundTrip()
	}
	b.StopTimer()
	if st.n.Load() < int64(b.N) {
		b.Fatalf("the stage saw %d requests", st.n.Load())
	}
	s.mu.Lock()
	l := s.listeners[fmt.Sprintf("127.0.0.1:%d", port)]
	s.mu.Unlock()
	if l == nil || l.ev == nil || l.ev.p.Stats().Handoffs != 0 {
		b.Fatal("the requests were not all served by the event loop")
	}
}
