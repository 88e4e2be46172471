//go:build linux

package wafstage

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/yaml"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/internal/authn"
	"github.com/meridian-platform/meridian/internal/dataplane"
	"github.com/meridian-platform/meridian/internal/dataplane/config"
	"github.com/meridian-platform/meridian/internal/dataplane/dptest"
	"github.com/meridian-platform/meridian/internal/secevents"
)

// loopFront is a data-plane server on the event-loop engine with one load
// balancer in front of a backend that records the X-Request-Id it gets.
type loopFront struct {
	addr string
	reg  *prometheus.Registry
	alog *syncBuf
	ids  *idLog
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuf) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuf) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// idLog is what the backend saw: the request ids, by path.
type idLog struct {
	mu sync.Mutex
	m  map[string]string
}

func (l *idLog) get(path string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.m[path]
}

func startLoopFront(t testing.TB, name string, fw *v1.AppFirewallSpec, extra []v1.Object, edit func(*v1.HTTPLoadBalancerSpec)) *loopFront {
	t.Helper()
	ids := &idLog{m: map[string]string{}}
	bl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	bs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		ids.mu.Lock()
		ids.m[r.URL.Path] = r.Header.Get("X-Request-Id")
		ids.mu.Unlock()
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "origin")
	})}
	go bs.Serve(bl)
	t.Cleanup(func() { bs.Close() })
	return startLoopFrontTo(t, bl.Addr().String(), ids, name, fw, extra, edit)
}

func startLoopFrontTo(t testing.TB, backend string, ids *idLog, name string, fw *v1.AppFirewallSpec, extra []v1.Object, edit func(*v1.HTTPLoadBalancerSpec)) *loopFront {
	t.Helper()
	port := freePort(t)
	pool := &v1.OriginPool{Spec: v1.OriginPoolSpec{Endpoints: []v1.OriginEndpoint{{Address: backend}}}}
	pool.Kind, pool.APIVersion = "OriginPool", "meridian/v1"
	pool.Metadata.Namespace, pool.Metadata.Name = "t", "backend"
	lb := &v1.HTTPLoadBalancer{Spec: v1.HTTPLoadBalancerSpec{Domains: []string{"*"},
		Listeners: []v1.HTTPListener{{Port: port, Address: "127.0.0.1"}}, DefaultPool: "backend",
		AccessLog: &v1.AccessLogConfig{Enabled: true}}}
	lb.Kind, lb.APIVersion = "HTTPLoadBalancer", "meridian/v1"
	lb.Metadata.Namespace, lb.Metadata.Name = "t", name
	objs := []v1.Object{pool, lb}
	if fw != nil {
		af := &v1.AppFirewall{Spec: *fw}
		af.Kind, af.APIVersion = "AppFirewall", "meridian/v1"
		af.Metadata.Namespace, af.Metadata.Name = "t", name
		lb.Spec.AppFirewall = name
		objs = append(objs, af)
	}
	if edit != nil {
		edit(&lb.Spec)
	}
	objs = append(objs, extra...)
	for _, o := range objs {
		v1.DefaultObject(o)
	}
	tab := config.Compile(objs)
	if len(tab.Errors) > 0 {
		t.Fatalf("compile errors: %v", tab.Errors)
	}
	f := &loopFront{addr: fmt.Sprintf("127.0.0.1:%d", port), reg: prometheus.NewRegistry(), alog: &syncBuf{}, ids: ids}
	s := dataplane.New(dataplane.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), AccessLog: f.alog,
		MaxRequestBodySize: 1 << 20, Stages: stagesOnce(), Metrics: f.reg, HTTP1Engine: dataplane.EngineEvloop})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
	})
	if err := s.Apply(context.Background(), tab); err != nil {
		t.Fatal(err)
	}
	return f
}

// conn is one keep-alive client connection.
type conn struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func dialLoop(t *testing.T, addr string) *conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &conn{t: t, c: c, br: bufio.NewReader(c)}
}

const browserFields = "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0\r\nAccept: text/html,*/*;q=0.8\r\n"

// do sends a request on the connection and reads its answer.
func (c *conn) do(method, target, body string) (*http.Response, string) {
	c.t.Helper()
	req := method + " " + target + " HTTP/1.1\r\nHost: shop.test\r\n" + browserFields
	if body != "" {
		req += "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: " + fmt.Sprint(len(body)) + "\r\n"
	}
	req += "\r\n" + body
	c.c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c.c, req); err != nil {
		c.t.Fatal(err)
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, target, err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

// accessLine returns the access-log line of the request with this path
// (waiting for the loop's periodic flush).
func (f *loopFront) accessLine(t *testing.T, path string) map[string]any {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); {
		for _, line := range strings.Split(f.alog.String(), "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(line), &m) == nil && m["path"] == path {
				return m
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no access-log line for %s in %q", path, f.alog.String())
	return nil
}

// TestWAFOnEventLoop: a load balancer with a WAF (paranoia level 1, no
// response inspection) is served by the event loops: benign and attack
// GETs never leave them (the block page and the security event carry the
// request id the access log has), the connection goes on after a block,
// and a POST with a body on the same connection is handed to the
// goroutine engine, which inspects the body.
func TestWAFOnEventLoop(t *testing.T) {
	f := startLoopFront(t, "loopwaf", &v1.AppFirewallSpec{}, nil, nil)
	c := dialLoop(t, f.addr)

	benignThenBlocked(t, f, c, "t/loopwaf")
	// The blocked GET's event was the only one (none for the benign GET).
	if ev := events.takeAll("t/loopwaf"); len(ev) != 0 {
		t.Errorf("events besides the blocked GET's: %+v", ev[0])
	}

	// The connection goes on after the block.
	resp, body := c.do("GET", "/after", "")
	if resp.StatusCode != 200 || body != "origin" {
		t.Fatalf("GET after the block: %d %q", resp.StatusCode, body)
	}
	if reqs, handoffs := dptest.EvloopCounts(t, f.reg); reqs != 3 || handoffs != 0 {
		t.Fatalf("the loops served %v requests and handed off %v, want 3 and 0", reqs, handoffs)
	}

	// A body goes to the goroutine engine, which inspects it.
	resp, _ = c.do("POST", "/form", "q=1%27%20UNION%20SELECT%20password%20FROM%20users--")
	if resp.StatusCode != 403 {
		t.Fatalf("SQLi POST: %d", resp.StatusCode)
	}
	if _, handoffs := dptest.EvloopCounts(t, f.reg); handoffs != 1 {
		t.Fatalf("the POST was not handed off (%v hand-offs)", handoffs)
	}
	if evs := waitEvents("t/loopwaf/form"); len(evs) != 1 || evs[0].Action != secevents.ActionBlocked {
		t.Fatalf("events of the blocked POST: %+v", evs)
	}
	resp, body = c.do("GET", "/after2", "")
	if resp.StatusCode != 200 || body != "origin" {
		t.Fatalf("GET after the POST: %d %q", resp.StatusCode, body)
	}
}

// benignThenBlocked sends a benign GET and an SQL injection on c, a
// connection to f's load balancer (key "NAMESPACE/NAME"): the benign GET
// reaches the origin through the loops (no hand-off) with the request id
// the access log has; the attack gets the block
// page without reaching the origin, the connection stays open, and its
// security event, access-log line and block page carry one request id.
func benignThenBlocked(t *testing.T, f *loopFront, c *conn, key string) {
	t.Helper()
	resp, body := c.do("GET", "/api/users?id=42&name=alice", "")
	if resp.StatusCode != 200 || body != "origin" {
		t.Fatalf("benign GET: %d %q", resp.StatusCode, body)
	}
	if reqs, handoffs := dptest.EvloopCounts(t, f.reg); reqs != 1 || handoffs != 0 {
		t.Fatalf("after the benign GET the loops served %v requests and handed off %v, want 1 and 0", reqs, handoffs)
	}
	line := f.accessLine(t, "/api/users")
	if id := f.ids.get("/api/users"); id == "" || line["requestId"] != id {
		t.Errorf("the origin got request id %q, the access log says %v", id, line["requestId"])
	}
	resp, body = c.do("GET", "/search?q=1%27%20UNION%20SELECT%20password%20FROM%20users--", "")
	if resp.StatusCode != 403 || !strings.Contains(body, "Request blocked") || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" || resp.Close {
		t.Fatalf("SQLi GET: %d %q close=%v %q", resp.StatusCode, resp.Header.Get("Content-Type"), resp.Close, body)
	}
	if f.ids.get("/search") != "" {
		t.Error("the blocked request reached the origin")
	}
	evs := waitEvents(key + "/search")
	if len(evs) != 1 || evs[0].Kind != secevents.KindWAF || evs[0].Action != secevents.ActionBlocked || evs[0].Status != 403 {
		t.Fatalf("events of the blocked GET: %+v", evs)
	}
	line = f.accessLine(t, "/search")
	if id := evs[0].RequestID; id == "" || line["requestId"] != id || !strings.Contains(body, id) || evs[0].Client != "127.0.0.1" {
		t.Errorf("event request id %q client %q, access log %v, block page %q", id, evs[0].Client, line["requestId"], body)
	}
	if line["status"] != float64(403) {
		t.Errorf("access log status %v, want 403", line["status"])
	}
}

// TestWAFMonitorOnEventLoop: in monitor mode an attack is forwarded by the
// loop and reported as a detection carrying the id the origin got.
func TestWAFMonitorOnEventLoop(t *testing.T) {
	f := startLoopFront(t, "loopmon", &v1.AppFirewallSpec{Mode: v1.AppFirewallMonitor}, nil, nil)
	c := dialLoop(t, f.addr)
	resp, body := c.do("GET", "/search?q=1%27%20UNION%20SELECT%20password%20FROM%20users--", "")
	if resp.StatusCode != 200 || body != "origin" {
		t.Fatalf("SQLi GET in monitor mode: %d %q", resp.StatusCode, body)
	}
	evs := waitEvents("t/loopmon/search")
	if len(evs) != 1 || evs[0].Action != secevents.ActionDetected || len(evs[0].Rules) == 0 {
		t.Fatalf("events: %+v", evs)
	}
	if id := f.ids.get("/search"); id == "" || evs[0].RequestID != id {
		t.Errorf("the origin got request id %q, the event says %q", id, evs[0].RequestID)
	}
	if reqs, handoffs := dptest.EvloopCounts(t, f.reg); reqs != 1 || handoffs != 0 {
		t.Fatalf("the loops served %v requests and handed off %v, want 1 and 0", reqs, handoffs)
	}
}

// TestWAFResponsePhaseStaysOffLoop: at paranoia level 2 a response-phase
// rule (a 5xx status) can act, so the load balancer stays with the
// goroutine engine.
func TestWAFResponsePhaseStaysOffLoop(t *testing.T) {
	f := startLoopFront(t, "looppl2", &v1.AppFirewallSpec{ParanoiaLevel: 2}, nil, nil)
	c := dialLoop(t, f.addr)
	if resp, _ := c.do("GET", "/x", ""); resp.StatusCode != 200 {
		t.Fatalf("GET: %d", resp.StatusCode)
	}
	if reqs, handoffs := dptest.EvloopCounts(t, f.reg); reqs != 0 || handoffs != 1 {
		t.Fatalf("the loops served %v requests and handed off %v, want 0 and 1", reqs, handoffs)
	}
}

// TestPolicyAndRateLimitOnEventLoop: service-policy denials and rate-limit
// refusals (429 with Retry-After) are answered by the loops, each with its
// event, and the connection goes on.
func TestPolicyAndRateLimitOnEventLoop(t *testing.T) {
	pol := &v1.ServicePolicy{}
	if err := yaml.UnmarshalStrict([]byte(`{rules: [{name: no-admin, action: deny, status: 451, match: {pathPrefix: /admin}}]}`), &pol.Spec); err != nil {
		t.Fatal(err)
	}
	pol.Kind, pol.Metadata.Namespace, pol.Metadata.Name = "ServicePolicy", "t", "loopguard"
	rlName := fmt.Sprintf("loop-rl-%d", pipelineRuns.Add(1))
	rl := &v1.RateLimiter{Spec: v1.RateLimiterSpec{Rate: 3, Burst: 3, Per: "hour"}}
	rl.Kind, rl.Metadata.Namespace, rl.Metadata.Name = "RateLimiter", "t", rlName
	f := startLoopFront(t, "looppol", &v1.AppFirewallSpec{}, []v1.Object{pol, rl}, func(s *v1.HTTPLoadBalancerSpec) {
		s.ServicePolicies = []string{"loopguard"}
		s.RateLimiter = rlName
	})
	c := dialLoop(t, f.addr)
	resp, body := c.do("GET", "/admin/x", "")
	if resp.StatusCode != 451 || body != "request denied by policy\n" {
		t.Fatalf("policy deny: %d %q", resp.StatusCode, body)
	}
	if evs := waitEvents("t/looppol/admin/x"); len(evs) != 1 || evs[0].Kind != secevents.KindPolicy || evs[0].RequestID == "" {
		t.Fatalf("policy events: %+v", evs)
	}
	for i := 0; i < 3; i++ { // the burst (the denied request took no token)
		if resp, body := c.do("GET", "/ok", ""); resp.StatusCode != 200 || body != "origin" {
			t.Fatalf("GET %d under the limit: %d %q", i, resp.StatusCode, body)
		}
	}
	resp, body = c.do("GET", "/ok", "")
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" || body != "too many requests\n" {
		t.Fatalf("over the limit: %d Retry-After %q %q", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	if evs := waitEvents("t/looppol/ok"); len(evs) != 1 || evs[0].Kind != secevents.KindRateLimit {
		t.Fatalf("rate-limit events: %+v", evs)
	}
	if reqs, handoffs := dptest.EvloopCounts(t, f.reg); reqs != 5 || handoffs != 0 {
		t.Fatalf("the loops served %v requests and handed off %v, want 5 and 0", reqs, handoffs)
	}
}

// BenchmarkLoopGET is the bench's benign GET through the event loops with
// the WAF (paranoia level 1, the bench's AppFirewall) on one keep-alive
// connection, to a backend that costs nearly nothing; BenchmarkLoopGETNoWAF
// is the same load balancer without it. cpu-ns/op is the whole process's
// CPU time per request (client, loop, stage and backend): the difference
// between the two is the WAF's cost on the loop.
func BenchmarkLoopGET(b *testing.B) { benchLoopGET(b, &v1.AppFirewallSpec{}) }

func BenchmarkLoopGETNoWAF(b *testing.B) { benchLoopGET(b, nil) }

func benchLoopGET(b *testing.B, fw *v1.AppFirewallSpec) {
	f := startLoopFrontTo(b, dptest.CannedOrigin(b), nil, "bench", fw, nil, func(s *v1.HTTPLoadBalancerSpec) { s.AccessLog = nil })
	c, err := net.Dial("tcp", f.addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	runLoopGET(b, f, c)
}

// runLoopGET measures the bench's GET on c, a connection to f.
func runLoopGET(b *testing.B, f *loopFront, c net.Conn) {
	req := []byte("GET /api/users?id=42&name=alice HTTP/1.1\r\nHost: shop.test\r\n" + browserFields + "\r\n")
	buf := make([]byte, 64<<10)
	roundTrip := func() {
		if a := dptest.CannedRoundTrip(b, c, req, buf); !bytes.HasPrefix(a, []byte("HTTP/1.1 200")) {
			b.Fatalf("answer %q", a)
		}
	}
	roundTrip()
	b.ReportAllocs()
	cpu0 := cpuTime()
	for b.Loop() {
		roundTrip()
	}
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
	b.StopTimer()
	if reqs, handoffs := dptest.EvloopCounts(b, f.reg); handoffs != 0 || reqs < float64(b.N) {
		b.Fatalf("the loops served %v requests and handed off %v", reqs, handoffs)
	}
}

// TestAuthnOnEventLoop: API-key authentication runs on the loops (401
// without a key, the identity reaches the rate limiter keyed by API key);
// an authentication that forwards claims to the origin stays with the
// goroutine engine.
func TestAuthnOnEventLoop(t *testing.T) {
	keys := &authn.APIKeyConfig{Keys: []authn.APIKey{{Name: "partner", Key: "partner-key-0123456789"}, {Name: "intern", Key: "intern-key-0123456789"}}}
	authConfigs.Store("t/loopauth", &authn.Config{APIKey: keys})
	rlName := fmt.Sprintf("loop-key-%d", pipelineRuns.Add(1))
	rl := &v1.RateLimiter{Spec: v1.RateLimiterSpec{Rate: 1, Burst: 1, Per: "hour", Key: v1.RateLimitKey{Type: "apiKey"}}}
	rl.Kind, rl.Metadata.Namespace, rl.Metadata.Name = "RateLimiter", "t", rlName
	f := startLoopFront(t, "loopauth", &v1.AppFirewallSpec{}, []v1.Object{rl}, func(s *v1.HTTPLoadBalancerSpec) { s.RateLimiter = rlName })
	c := dialLoop(t, f.addr)
	if resp, body := c.do("GET", "/a", ""); resp.StatusCode != 401 || !strings.Contains(body, "X-API-Key") {
		t.Fatalf("no key: %d %q", resp.StatusCode, body)
	}
	if evs := waitEvents("t/loopauth/a"); len(evs) != 1 || evs[0].Kind != secevents.KindAuthn || evs[0].RequestID == "" {
		t.Fatalf("authn events: %+v", evs)
	}
	withKey := func(key, path string) int {
		t.Helper()
		req := "GET " + path + " HTTP/1.1\r\nHost: shop.test\r\n" + browserFields + "X-API-Key: " + key + "\r\n\r\n"
		c.c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(c.c, req); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(c.br, nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := withKey("partner-key-0123456789", "/b"); got != 200 {
		t.Errorf("partner: %d", got)
	}
	if got := withKey("partner-key-0123456789", "/b"); got != 429 {
		t.Errorf("partner over its limit: %d", got)
	}
	if got := withKey("intern-key-0123456789", "/b"); got != 200 {
		t.Errorf("intern (its own bucket): %d", got)
	}
	if reqs, handoffs := dptest.EvloopCounts(t, f.reg); reqs != 4 || handoffs != 0 {
		t.Fatalf("the loops served %v requests and handed off %v, want 4 and 0", reqs, handoffs)
	}

	authConfigs.Store("t/loopfwd", &authn.Config{APIKey: keys, ForwardClaims: []authn.ClaimHeader{{Claim: "sub", Header: "X-User"}}})
	f = startLoopFront(t, "loopfwd", nil, nil, nil)
	if resp, _ := dialLoop(t, f.addr).do("GET", "/c", ""); resp.StatusCode != 401 {
		t.Fatalf("no key (claims forwarded): %d", resp.StatusCode)
	}
	if reqs, handoffs := dptest.EvloopCounts(t, f.reg); reqs != 0 || handoffs != 1 {
		t.Fatalf("forwarded claims: the loops served %v requests and handed off %v, want 0 and 1", reqs, handoffs)
	}
}
