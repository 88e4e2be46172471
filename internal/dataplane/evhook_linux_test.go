//go:build linux

package dataplane

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/meridian-platform/meridian/internal/dataplane/config"
	"github.com/meridian-platform/meridian/internal/dataplane/evloop"
)

// headerEcho is an origin that answers with what it received: the method,
// target, protocol and every header (the request id reduced to its form).
func headerEcho(t *testing.T) *httptest.Server {
	idForm := regexp.MustCompile(`^[0-9a-f]{32}$`)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var lines []string
		for k, vs := range r.Header {
			v := strings.Join(vs, ",")
			if k == "X-Request-Id" {
				v = fmt.Sprintf("well-formed=%v", idForm.MatchString(v))
			}
			lines = append(lines, k+": "+v)
		}
		sort.Strings(lines)
		w.Header().Set("X-Origin", "1")
		w.Header().Set("Keep-Alive", "timeout=5")
		if r.URL.Path == "/status" {
			w.WriteHeader(418)
		}
		fmt.Fprintf(w, "%s %s %s host=%s te=%v cl=%d\n%s\nbody=%q\n", r.Method, r.RequestURI, r.Proto, r.Host,
			r.TransferEncoding, r.ContentLength, strings.Join(lines, "\n"), body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// exchangeRaw sends raw requests on one connection and returns each answer
// (status line, headers but Date, body) as text.
func exchangeRaw(t *testing.T, addr string, reqs ...string) []string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return exchangeOn(t, c, 5*time.Second, false, reqs...)
}

// exchangeOn sends raw requests on c, one after the other, returns each
// answer as text and closes c. A write holding several pipelined
// requests is followed by as many reads as it has request lines, so
// that every answer is read (and so counted by the server) before c
// closes; a closing answer ends the exchange. The text has the status,
// whether the connection closes, the header fields but Date (and
// Content-Length with bodyLength) and the body; with bodyLength, the
// body's length in place of the transfer coding (for answers whose
// framing may differ).
func exchangeOn(t *testing.T, c net.Conn, timeout time.Duration, bodyLength bool, reqs ...string) []string {
	t.Helper()
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	br := bufio.NewReader(c)
	var out []string
	for _, req := range reqs {
		if _, err := io.WriteString(c, req); err != nil {
			out = append(out, "write: "+err.Error())
			break
		}
		for _, method := range requestLineMethods(req) {
			a, closed, err := readAnswer(br, method, bodyLength)
			if err != nil {
				return append(out, "read: "+err.Error())
			}
			if out = append(out, a); closed {
				return out
			}
		}
	}
	return out
}

// requestLineRE matches the request lines of raw HTTP/1.x requests.
var requestLineRE = regexp.MustCompile(`(?m)^([A-Z]+) \S+ HTTP/1\.[01]\r?$`)

// requestLineMethods is the method of each request line in raw (one at
// least: the first word, for input that has no well-formed request line).
func requestLineMethods(raw string) []string {
	var ms []string
	for _, m := range requestLineRE.FindAllStringSubmatch(raw, -1) {
		ms = append(ms, m[1])
	}
	if len(ms) == 0 {
		ms = append(ms, strings.Fields(raw + " x")[0])
	}
	return ms
}

// readAnswer reads one answer to a request of method from br as
// exchangeOn prints it, and whether it closes the connection.
func readAnswer(br *bufio.Reader, method string, bodyLength bool) (string, bool, error) {
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		return "", false, err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var hs []string
	for k, vs := range resp.Header {
		if k == "Date" || bodyLength && k == "Content-Length" {
			continue
		}
		hs = append(hs, k+": "+strings.Join(vs, ","))
	}
	sort.Strings(hs)
	framing := fmt.Sprintf("te=%v", resp.TransferEncoding)
	if bodyLength {
		framing = fmt.Sprintf("len=%d", len(body))
	}
	return fmt.Sprintf("%d close=%v %s\n%s\n%s", resp.StatusCode, resp.Close, framing, strings.Join(hs, "\n"), body), resp.Close, nil
}

// metricDump is the counters and gauges of reg whose name keep keeps, a
// "name{label=value,...} value" line each: those that are not 0, and the
// gauges of active things even at 0.
func metricDump(t *testing.T, reg *prometheus.Registry, keep func(name string) bool) string {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, mf := range mfs {
		if !keep(mf.GetName()) {
			continue
		}
		for _, m := range mf.GetMetric() {
			var ls []string
			for _, lp := range m.GetLabel() {
				ls = append(ls, lp.GetName()+"="+lp.GetValue())
			}
			if v := m.GetCounter().GetValue() + m.GetGauge().GetValue(); v != 0 || strings.Contains(mf.GetName(), "active") {
				out = append(out, fmt.Sprintf("%s{%s} %v", mf.GetName(), strings.Join(ls, ","), v))
			}
		}
	}
	return strings.Join(out, "\n")
}

// sameAnswers sends reqs on a connection to each engine's address and
// reports where the answers differ (what names the exchange).
func sameAnswers(t *testing.T, addrs map[string]string, what string, reqs ...string) {
	t.Helper()
	want := exchangeRaw(t, addrs[EngineGoroutine], reqs...)
	got := exchangeRaw(t, addrs[EngineEvloop], reqs...)
	if len(got) != len(want) {
		t.Errorf("%s: evloop: %d answers, goroutine: %d\nevloop: %q\ngoroutine: %q", what, len(got), len(want), got, want)
		return
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("%s: answer %d differs\nevloop:\n%s\ngoroutine:\n%s", what, i, got[i], want[i])
		}
	}
}

// TestEnginesAgree sends the same requests to a node served by the
// goroutine engine and to one served by the event loop, and compares what
// the client and the origin see; the event loop must have served the
// plain requests itself.
func TestEnginesAgree(t *testing.T) {
	origin := headerEcho(t)
	cfg := func(port int) string {
		return pool("a", hostOf(origin.URL)) + lbDocFor(`["shop.test"]`, []string{listenerAt(port)},
			"{match: {pathPrefix: /old}, redirect: {path: /new, code: 301}}", "{match: {pathPrefix: /}, pool: a}")
	}
	regs := map[string]*prometheus.Registry{}
	addrs, servers := startEngines(t, cfg, func(engine string) Options {
		regs[engine] = prometheus.NewRegistry()
		return Options{Metrics: regs[engine]}
	})
	convs := []struct {
		name string
		reqs []string
	}{
		{"keep-alive gets", []string{
			"GET /a?x=1 HTTP/1.1\r\nHost: shop.test\r\nX-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Proto: https\r\nX-Request-Id: forged\r\n\r\n",
			"GET /status HTTP/1.1\r\nHost: shop.test\r\nConnection: keep-alive, X-Drop\r\nX-Drop: 1\r\nTE: trailers\r\nProxy-Authorization: x\r\n\r\n",
			"HEAD /h HTTP/1.1\r\nHost: shop.test\r\n\r\n",
			"GET /last HTTP/1.1\r\nHost: shop.test\r\nConnection: close\r\n\r\n",
		}},
		{"bodies", []string{
			"POST /p HTTP/1.1\r\nHost: shop.test\r\nContent-Length: 5\r\n\r\nhello",
			"POST /c HTTP/1.1\r\nHost: shop.test\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
			"PUT /e HTTP/1.1\r\nHost: shop.test\r\nContent-Length: 0\r\n\r\n",
		}},
		{"handed off mid-connection", []string{
			"GET /1 HTTP/1.1\r\nHost: shop.test\r\n\r\n",
			"GET /old/x HTTP/1.1\r\nHost: shop.test\r\n\r\n", // the loop's own answer
			"GET /2 HTTP/1.1\r\nHost: shop.test\r\nExpect: 100-continue\r\n\r\n",
			"GET /3 HTTP/1.1\r\nHost: shop.test\r\n\r\n",
		}},
		{"no load balancer", []string{"GET / HTTP/1.1\r\nHost: other.test\r\n\r\n"}},
		{"http/1.0", []string{"GET /ten HTTP/1.0\r\nHost: shop.test\r\n\r\n"}},
		{"expect", []string{"POST /x HTTP/1.1\r\nHost: shop.test\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nok"}},
		{"smuggling", []string{"POST / HTTP/1.1\r\nHost: shop.test\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"}},
		{"absolute form", []string{"GET http://shop.test/abs HTTP/1.1\r\nHost: x\r\n\r\n"}},
	}
	for _, cv := range convs {
		t.Run(cv.name, func(t *testing.T) { sameAnswers(t, addrs, cv.name, cv.reqs...) })
	}
	// Requests written at once and followed by the client's FIN (as the
	// smuggling fuzz target sends them): the same answers, in the same
	// order, before the connection closes.
	statusLines := regexp.MustCompile(`HTTP/1\.1 \d{3}`)
	for _, in := range []string{
		"POST / HTTP/1.1\r\nHost: shop.test\r\nContent-Length: 5\r\n\r\nhello",
		"POST / HTTP/1.1\r\nHost: shop.test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\nGET /2 HTTP/1.1\r\nHost: shop.test\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: shop.test\r\nContent-Length: 44\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: shop.test\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: shop.test\r\n\nGET /x HTTP/1.1\r\nHost: shop.test\r\n\r\n",
		"GET /a HTTP/1.1\r\nHost: shop.test\r\n\r\nGET /b HTTP/1.1\r\nHost: shop.test\r\n\r\nGET /c HTTP/1.1\r\nHost: shop.test\r\n\r\n",
	} {
		var outs []string
		for _, engine := range engineNames {
			b := rawExchangeHalfClose(t, addrs[engine], in, true)
			outs = append(outs, strings.Join(statusLines.FindAllString(b, -1), ","))
		}
		if outs[0] != outs[1] {
			t.Errorf("half-closed %q: goroutine answered %q, evloop %q", in, outs[0], outs[1])
		}
	}
	// The same requests counted the same way: by route and status class,
	// the response body bytes of the load balancer, and the requests of
	// the pool's endpoint.
	counters := func(reg *prometheus.Registry) string {
		return metricDump(t, reg, func(name string) bool {
			switch name {
			case "meridian_http_requests_total", "meridian_http_request_bytes_total", "meridian_http_response_body_bytes_total",
				"meridian_endpoint_requests_total", "meridian_endpoint_responses_5xx_total", "meridian_endpoint_active_requests":
				return true
			}
			return false
		})
	}
	// The loop counts an exchange once its answer is sent (the goroutine
	// engine before): the last ones may be a moment behind.
	g, e := counters(regs[EngineGoroutine]), counters(regs[EngineEvloop])
	for deadline := time.Now().Add(15 * time.Second); g != e && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		g, e = counters(regs[EngineGoroutine]), counters(regs[EngineEvloop])
	}
	if g != e || !strings.Contains(g, `code=2xx`) || !strings.Contains(g, "body_bytes") || !strings.Contains(g, "endpoint_requests_total") ||
		!strings.Contains(g, "endpoint_active_requests{endpoint="+hostOf(origin.URL)+",pool=t/a} 0") {
		t.Errorf("metrics differ\ngoroutine:\n%s\nevloop:\n%s", g, e)
	}
	st := servers[EngineEvloop].evStats(t, addrs[EngineEvloop])
	// keep-alive gets 4, bodies 3, mid-connection 2 (the rest after the
	// handoff is the goroutine engine's).
	if st.Requests < 9 || st.Handoffs < 5 {
		t.Fatalf("event loop served %d requests and handed off %d connections, want at least 9 and 5", st.Requests, st.Handoffs)
	}
}

// evStats returns the event-loop counters of the listener at key.
func (s *Server) evStats(t *testing.T, key string) evloop.Stats {
	t.Helper()
	s.mu.Lock()
	l := s.listeners[key]
	s.mu.Unlock()
	if l == nil || l.ev == nil {
		t.Fatalf("listener %s is not served by the event loop", key)
	}
	return l.ev.p.Stats()
}

// TestEvloopReloadSwitchesEngine reloads a listener served by the event
// loop into one it cannot serve (h2c) and back, on the same port: the
// socket changes hands each time and requests keep being answered.
func TestEvloopReloadSwitchesEngine(t *testing.T) {
	a, _ := echoBackend(t, "a")
	port := freePort(t)
	conf := func(h2c bool) string {
		return pool("a", hostOf(a.URL)) + fmt.Sprintf(`---
apiVersion: meridian/v1
kind: HTTPLoadBalancer
metadata: {name: lb, namespace: t}
spec: {domains: ["*"], listeners: [{port: %d, address: 127.0.0.1, h2c: %v}], defaultPool: a}
`, port, h2c)
	}
	s := startServer(t, conf(false), Options{HTTP1Engine: EngineEvloop})
	key := fmt.Sprintf("127.0.0.1:%d", port)
	url := "http://" + key + "/x"
	for i, h2c := range []bool{false, true, false} {
		if i > 0 {
			apply(t, s, conf(h2c))
		}
		s.mu.Lock()
		l := s.listeners[key]
		s.mu.Unlock()
		if l == nil || (l.ev != nil) == h2c {
			t.Fatalf("step %d (h2c %v): listener %+v", i, h2c, l)
		}
		if resp, body := get(t, url, nil); resp.StatusCode != 200 || !strings.HasPrefix(body, "backend=a") {
			t.Fatalf("step %d: %d %q", i, resp.StatusCode, body)
		}
	}
	if st := s.evStats(t, key); st.Requests != 1 {
		t.Fatalf("the new event loop served %d requests, want 1", st.Requests)
	}
}

// TestOtherHTTP1Engine runs HTTP/1 tests of the package with the engine
// the rest of the package does not run with: the goroutine engine (the
// event-loop engine is the default; DATAPLANE_HTTP1_ENGINE=goroutine runs
// the whole package with the goroutine engine, and this test with the
// event loop): framing and smuggling, routing, client timeouts, connection
// limits, metrics, reload, NetworkPolicy, drain.
func TestOtherHTTP1Engine(t *testing.T) {
	saved := testEngine
	defer func() { testEngine = saved }()
	testEngine = EngineGoroutine
	if saved == EngineGoroutine {
		testEngine = EngineEvloop
	}
	for _, tc := range []struct {
		name string
		f    func(*testing.T)
	}{
		{"framing", TestHTTP1Framing},
		{"routing", TestHTTP1Routing},
		{"client timeouts", TestClientTimeouts},
		{"slow body", TestHTTP1SlowBody},
		{"connection limit", TestHTTP1ConnectionLimitAndProxyProtocol},
		{"metrics", TestMetricsOfRemovedObjectsDisappear},
		{"reload", TestReloadKeepsConnectionsAndState},
		{"netpolicy", TestNetworkPolicyReload},
		{"netpolicy tcp and ipv6", TestNetworkPolicyTCPAndIPv6},
		{"drain", TestGracefulShutdown},
		{"streaming", TestHTTP1Streaming},
		{"websocket", TestWebSocketUpgrade},
		{"outlier ejection", TestOutlierEjection},
	} {
		t.Run(tc.name, tc.f)
	}
}

// TestEvloopConnectionGauge checks that connections held by the loops, and
// those handed off, are counted in the listener's connection gauge.
func TestEvloopConnectionGauge(t *testing.T) {
	a, _ := echoBackend(t, "a")
	port := freePort(t)
	reg := prometheus.NewRegistry()
	startServer(t, pool("a", hostOf(a.URL))+lbYAML(port, "a"), Options{HTTP1Engine: EngineEvloop, Metrics: reg})
	key := fmt.Sprintf("127.0.0.1:%d", port)
	gauge := func() float64 {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				for _, lp := range m.GetLabel() {
					if m.GetGauge() != nil && lp.GetValue() == key && strings.Contains(mf.GetName(), "connections") {
						return m.GetGauge().GetValue()
					}
				}
			}
		}
		return -1
	}
	var conns []net.Conn
	for i, req := range []string{
		"GET /1 HTTP/1.1\r\nHost: a\r\n\r\n",                                              // served by the loop
		"GET /2 HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n", // handed off (no origin upgrade: answered, kept or closed)
		"GET http://a/3 HTTP/1.1\r\nHost: a\r\n\r\n",                                      // handed off, kept
	} {
		c := dialFor(t, key, 3*time.Second)
		defer c.Close()
		io.WriteString(c, req)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		resp.Body.Close()
		if !resp.Close {
			conns = append(conns, c)
		}
	}
	waitGauge := func(want float64) {
		t.Helper()
		for deadline := time.Now().Add(15 * time.Second); gauge() != want && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
		}
		if got := gauge(); got != want {
			t.Fatalf("connection gauge %v, want %v", got, want)
		}
	}
	waitGauge(float64(len(conns)))
	for _, c := range conns {
		c.Close()
	}
	waitGauge(0)
}

// TestEvloopPortTaken checks that a second listener on an address the event
// loop holds fails to bind, as with the goroutine engine.
func TestEvloopPortTaken(t *testing.T) {
	a, _ := echoBackend(t, "a")
	port := freePort(t)
	conf := pool("a", hostOf(a.URL)) + lbYAML(port, "a")
	startServer(t, conf, Options{HTTP1Engine: EngineEvloop})
	for _, engine := range []string{EngineEvloop, EngineGoroutine} {
		s := New(Options{Logger: quietLoggerT(), AccessLog: io.Discard, HTTP1Engine: engine})
		tab := config.Compile(decodeObjects(t, conf))
		err := s.Apply(context.Background(), tab)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = s.Shutdown(ctx)
		cancel()
		if err == nil || !strings.Contains(err.Error(), "address already in use") {
			t.Errorf("%s engine on a taken port: %v", engine, err)
		}
	}
}

// The loops wait in the kernel only when the process has more Ps than
// CPUs, and then one loop runs per CPU; otherwise one loop runs per P and
// parks in the network poller.
func TestEvLoops(t *testing.T) {
	for _, tc := range []struct {
		procs, cpus, loops int
		kernelWait         bool
	}{
		{2, 2, 2, false},
		{3, 2, 2, true},
		{4, 2, 2, true},
		{1, 2, 1, false},
		{2, 1, 1, true},
		{8, 16, 8, false},
		{2, 0, 2, false},
	} {
		loops, kw := evLoops(tc.procs, tc.cpus)
		if loops != tc.loops || kw != tc.kernelWait {
			t.Errorf("evLoops(%d procs, %d CPUs) = %d loops, kernel wait %v; want %d, %v", tc.procs, tc.cpus, loops, kw, tc.loops, tc.kernelWait)
		}
	}
}
