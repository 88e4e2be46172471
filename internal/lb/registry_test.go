package lb

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestStateSurvivesUpdate(t *testing.T) {
	var probes atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		probes.Add(1)
		w.WriteHeader(503)
	}))
	defer srv.Close()
	bad := srv.Listener.Addr().String()
	r, _ := newTestRegistry(t, RegistryOptions{})
	as := addrs(3)
	hc := HealthCheckConfig{HTTP: &HTTPCheck{}, Interval: 10 * time.Millisecond, UnhealthyThreshold: 1}
	// The 10.0.x addresses are not reachable, so this pool has no health
	// check; a second pool checks the test server.
	cfg := PoolConfig{
		ID:        "acme/shop/api",
		Algorithm: RoundRobin,
		Endpoints: endpoints([]string{as[0], as[1], bad}),
		Outlier:   &OutlierConfig{Consecutive5xx: 2, MaxEjectionPercent: 50, BaseEjectionTime: time.Hour},
		Breaker:   &BreakerConfig{MaxRequests: 100},
	}
	p := mustPool(t, r, cfg)
	a0, a1, b := byAddr(p, as[0]), byAddr(p, as[1]), byAddr(p, bad)
	fail(a0, 2, Result{Status: 500}) // ejected
	a1.Begin()                       // one request in flight
	if err := p.Acquire(); err != nil {
		t.Fatal(err)
	}
	if !a0.Ejected() {
		t.Fatal("setup: a0 not ejected")
	}

	cfg2 := PoolConfig{ID: "acme/shop/checked", Endpoints: endpoints([]string{bad}), HealthCheck: &hc}
	if err := r.Update(context.Background(), []PoolConfig{cfg, cfg2}); err != nil {
		t.Fatal(err)
	}
	checked := r.Pool("acme/shop/checked")
	cb := checked.Endpoints()[0]
	waitHealth(t, cb, HealthUnhealthy)

	checkerOf := func(e *Endpoint) *checker {
		e.pool.mu.Lock()
		defer e.pool.mu.Unlock()
		return e.checker
	}
	running := checkerOf(cb)

	// Change the algorithm, weights and add an endpoint: same pool, same
	// endpoints, same state.
	cfg.Algorithm = Maglev
	cfg.Endpoints = endpoints([]string{as[0], as[1], bad, as[2]}, 3, 2, 1, 1)
	cfg2.Algorithm = LeastRequest
	if err := r.Update(context.Background(), []PoolConfig{cfg, cfg2}); err != nil {
		t.Fatal(err)
	}
	if r.Pool(cfg.ID) != p || r.Pool(cfg2.ID) != checked {
		t.Fatal("pool objects replaced by an update")
	}
	if byAddr(p, as[0]) != a0 || byAddr(p, as[1]) != a1 || byAddr(p, bad) != b || checked.Endpoints()[0] != cb {
		t.Fatal("endpoint objects replaced by an update")
	}
	if !a0.Ejected() || a0.Stats().EjectionsTotal != 1 {
		t.Error("ejection lost by an update")
	}
	if a1.ActiveRequests() != 1 || a1.Stats().RequestsTotal != 1 {
		t.Error("request counts lost by an update")
	}
	if p.Stats().ActiveRequests != 1 {
		t.Error("breaker count lost by an update")
	}
	if cb.Health() != HealthUnhealthy {
		t.Error("health lost by an update")
	}
	if a0.Weight() != 3 || a1.Weight() != 2 || p.Algorithm() != Maglev {
		t.Errorf("new config not applied: weights %d/%d, algorithm %s", a0.Weight(), a1.Weight(), p.Algorithm())
	}
	// The unchanged health check kept running without a restart.
	if checkerOf(cb) != running {
		t.Error("unchanged health check restarted by an update")
	}
	n := probes.Load()
	eventually(t, 5*time.Second, "probes continue", func() bool { return probes.Load() > n+2 })
	// A changed one restarts, keeping the health state.
	hc2 := hc
	hc2.Timeout = 400 * time.Millisecond
	cfg2.HealthCheck = &hc2
	if err := r.Update(context.Background(), []PoolConfig{cfg, cfg2}); err != nil {
		t.Fatal(err)
	}
	if checkerOf(cb) == running || cb.Health() != HealthUnhealthy {
		t.Error("changed health check not restarted, or health lost")
	}

	// Removing an endpoint drops it; ByID forgets it.
	id := a1.ID()
	if p.ByID(id) != a1 {
		t.Fatal("ByID did not find a1")
	}
	cfg.Endpoints = endpoints([]string{as[0], bad})
	if err := r.Update(context.Background(), []PoolConfig{cfg, cfg2}); err != nil {
		t.Fatal(err)
	}
	if p.ByID(id) != nil || len(p.Endpoints()) != 2 {
		t.Errorf("removed endpoint still present: %v", p.Stats().Endpoints)
	}
	a1.End(Result{Status: 500}) // a late End on a removed endpoint is harmless
}

func TestEndpointIDIsStable(t *testing.T) {
	r1, _ := newTestRegistry(t, RegistryOptions{})
	r2, _ := newTestRegistry(t, RegistryOptions{})
	as := addrs(5)
	p1 := mustPool(t, r1, PoolConfig{Endpoints: endpoints(as)})
	p2 := mustPool(t, r2, PoolConfig{Endpoints: endpoints(reversed(as))})
	ids := map[string]bool{}
	for _, e := range p1.Endpoints() {
		if ids[e.ID()] {
			t.Fatalf("duplicate id %s", e.ID())
		}
		ids[e.ID()] = true
		o := p2.ByID(e.ID())
		if o == nil || o.Addr() != e.Addr() {
			t.Fatalf("id %s of %s not found on another node", e.ID(), e.Addr())
		}
	}
	if p1.ByID("nope") != nil {
		t.Error("ByID of an unknown id")
	}
}

func TestUpdateErrors(t *testing.T) {
	r, _ := newTestRegistry(t, RegistryOptions{})
	good := PoolConfig{ID: "good", Endpoints: endpoints(addrs(2))}
	p := mustPool(t, r, good)
	tests := []struct {
		cfg  PoolConfig
		want string
	}{
		{PoolConfig{ID: "good", Endpoints: []EndpointConfig{{Address: "nope"}}}, `pool "good": endpoints[0].address`},
		{PoolConfig{ID: "x", Endpoints: []EndpointConfig{{Address: "1.2.3.4:0"}}}, `pool "x": endpoints[0].address: "1.2.3.4:0": port`},
		{PoolConfig{ID: "x", Endpoints: []EndpointConfig{{Address: "1.2.3.4:80", Weight: -1}}}, `endpoints[0].weight`},
		{PoolConfig{ID: "x", Algorithm: "fastest"}, `algorithm: unsupported value "fastest"`},
		{PoolConfig{ID: "x", HealthCheck: &HealthCheckConfig{}}, `healthCheck.http: one of http or tcp is required`},
		{PoolConfig{ID: "x", HealthCheck: &HealthCheckConfig{HTTP: &HTTPCheck{Path: "x"}}}, `healthCheck.http.path`},
		{PoolConfig{ID: "x", Outlier: &OutlierConfig{MaxEjectionPercent: 101}}, `outlier.maxEjectionPercent`},
		{PoolConfig{ID: "x", Breaker: &BreakerConfig{MaxRequests: -1}}, `breaker: limits`},
		{PoolConfig{ID: "x", Algorithm: Maglev, MaglevTableSize: 1000}, `maglevTableSize: 1000 is not a prime`},
		{PoolConfig{ID: ""}, `id: must not be empty`},
	}
	for _, tt := range tests {
		err := r.Update(context.Background(), []PoolConfig{tt.cfg, good})
		if err == nil || !contains(err.Error(), tt.want) {
			t.Errorf("Update(%+v) = %v, want error containing %q", tt.cfg, err, tt.want)
		}
	}
	// The good pool is untouched; a bad new version of an existing pool
	// keeps the old one.
	if r.Pool("good") != p || len(p.Endpoints()) != 2 {
		t.Error("valid pool disturbed by invalid neighbours")
	}
	if r.Pool("x") != nil {
		t.Error("invalid pool created")
	}
	err := r.Update(context.Background(), []PoolConfig{good, good})
	if err == nil || !contains(err.Error(), "duplicate id") {
		t.Errorf("duplicate ids: %v", err)
	}
	if got := r.Pools(); len(got) != 1 || got[0] != p {
		t.Errorf("Pools() = %v", got)
	}
	r.Close()
	if err := r.Update(context.Background(), []PoolConfig{good}); err == nil {
		t.Error("Update after Close succeeded")
	}
}

// fakeResolver answers from a map that tests change.
type fakeResolver struct {
	mu      sync.Mutex
	answers map[string][]string
	calls   atomic.Int64
}

func (f *fakeResolver) set(host string, ips ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.answers[host] = ips
}

func (f *fakeResolver) LookupHost(ctx context.Context, host string) ([]string, error) {
	f.calls.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	ips, ok := f.answers[host]
	if !ok {
		return nil, fmt.Errorf("lookup %s: no such host", host)
	}
	return slices.Clone(ips), nil
}

func TestHostNamesResolvedAndReResolved(t *testing.T) {
	res := &fakeResolver{answers: map[string][]string{}}
	res.set("api.internal", "10.1.0.2", "10.1.0.1", "not-an-ip")
	r, logs := newTestRegistry(t, RegistryOptions{Resolver: res})
	cfg := PoolConfig{
		Endpoints: []EndpointConfig{
			{Address: "api.internal:8443", Weight: 2},
			{Address: "10.9.9.9:80", Weight: 1},
		},
		ResolveInterval: 20 * time.Millisecond,
	}
	p := mustPool(t, r, cfg)
	got := map[string]int{}
	for _, e := range p.Endpoints() {
		got[e.Addr()] = e.Weight()
		if e.Addr() != "10.9.9.9:80" && (e.Hostname() != "api.internal" || e.ConfigAddress() != "api.internal:8443") {
			t.Errorf("%s: hostname %q config address %q", e.Addr(), e.Hostname(), e.ConfigAddress())
		}
	}
	// The name's weight 2 is split between its two addresses; weights stay
	// in the configured 2:1 proportion.
	want := map[string]int{"10.1.0.1:8443": 2, "10.1.0.2:8443": 2, "10.9.9.9:80": 2}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("endpoints %v, want %v", got, want)
	}
	kept := byAddr(p, "10.1.0.2:8443")
	kept.Begin()

	// The answer changes: one address goes, one comes, one stays.
	res.set("api.internal", "10.1.0.2", "10.1.0.3")
	eventually(t, 5*time.Second, "re-resolution", func() bool { return byAddr(p, "10.1.0.3:8443") != nil })
	if byAddr(p, "10.1.0.1:8443") != nil {
		t.Error("stale address kept")
	}
	if byAddr(p, "10.1.0.2:8443") != kept || kept.ActiveRequests() != 1 {
		t.Error("state of an address that stayed was lost")
	}

	// A failing lookup keeps the previous addresses.
	res.mu.Lock()
	delete(res.answers, "api.internal")
	res.mu.Unlock()
	calls := res.calls.Load()
	eventually(t, 5*time.Second, "failed re-resolutions", func() bool { return res.calls.Load() > calls+2 })
	if byAddr(p, "10.1.0.3:8443") == nil {
		t.Error("addresses dropped on a failed lookup")
	}
	if !contains(logs.String(), "keeping previous addresses") {
		t.Errorf("failed lookup not logged:\n%s", logs.String())
	}
}

func TestUnresolvableNameIsRetried(t *testing.T) {
	res := &fakeResolver{answers: map[string][]string{}}
	res.set("ok.internal", "192.0.2.9")
	r, _ := newTestRegistry(t, RegistryOptions{Resolver: res})
	cfg := PoolConfig{
		ID:              "p",
		Endpoints:       []EndpointConfig{{Address: "late.internal:80"}, {Address: "[::1]:81"}, {Address: "ok.internal:82"}},
		ResolveInterval: 20 * time.Millisecond,
	}
	err := r.Update(context.Background(), []PoolConfig{cfg})
	if err == nil || !contains(err.Error(), `pool "p": resolving "late.internal"`) {
		t.Fatalf("Update error %v, want the resolution failure", err)
	}
	p := r.Pool("p")
	if p == nil || len(p.Endpoints()) != 2 || byAddr(p, "[::1]:81") == nil || byAddr(p, "192.0.2.9:82") == nil {
		t.Fatalf("pool not applied without the unresolved name")
	}
	res.set("late.internal", "192.0.2.7")
	eventually(t, 5*time.Second, "late resolution", func() bool { return byAddr(p, "192.0.2.7:80") != nil })
}

func TestRealResolverLocalhost(t *testing.T) {
	r, _ := newTestRegistry(t, RegistryOptions{})
	p := mustPool(t, r, PoolConfig{Endpoints: []EndpointConfig{{Address: "localhost:80"}}})
	if len(p.Endpoints()) == 0 {
		t.Fatal("localhost did not resolve")
	}
	for _, e := range p.Endpoints() {
		if e.Addr() != "127.0.0.1:80" && e.Addr() != "[::1]:80" {
			t.Errorf("localhost resolved to %s", e.Addr())
		}
	}
}

func TestDuplicateAddressesMerge(t *testing.T) {
	res := &fakeResolver{answers: map[string][]string{"a.internal": {"10.0.0.1"}}}
	r, _ := newTestRegistry(t, RegistryOptions{Resolver: res})
	p := mustPool(t, r, PoolConfig{Endpoints: []EndpointConfig{{Address: "a.internal:80", Weight: 2}, {Address: "10.0.0.1:80", Weight: 3}}})
	if len(p.Endpoints()) != 1 || p.Endpoints()[0].Weight() != 5 {
		t.Fatalf("endpoints %+v, want one of weight 5", p.Stats().Endpoints)
	}
}

func TestPoolStatsSnapshot(t *testing.T) {
	r, _ := newTestRegistry(t, RegistryOptions{})
	p := mustPool(t, r, PoolConfig{ID: "acme/ns/web", Algorithm: Random, Endpoints: endpoints(addrs(3))})
	e := p.Endpoints()[0]
	e.Begin()
	e.End(Result{Status: 503, Duration: 1500 * time.Millisecond})
	setHealth(p, p.Endpoints()[1], HealthUnhealthy)
	s := p.Stats()
	if s.ID != "acme/ns/web" || s.Algorithm != Random || s.Total != 3 || s.Available != 2 || s.Panic {
		t.Errorf("pool stats %+v", s)
	}
	es := s.Endpoints[0]
	if es.RequestsTotal != 1 || es.Responses5xxTotal != 1 || es.ActiveRequests != 0 || es.RequestSeconds != 1.5 || es.Address != e.Addr() || es.ID != e.ID() {
		t.Errorf("endpoint stats %+v", es)
	}
	if s.Endpoints[1].Health != HealthUnhealthy {
		t.Errorf("health in stats %v", s.Endpoints[1].Health)
	}
	if n := testing.AllocsPerRun(100, func() { _ = e.Stats() }); n != 0 {
		t.Errorf("Endpoint.Stats allocates %.0f times", n)
	}
}

func TestCloseIsIdempotentAndStopsWork(t *testing.T) {
	res := &fakeResolver{answers: map[string][]string{"a.internal": {"10.0.0.1"}}}
	r := NewRegistry(RegistryOptions{Resolver: res, Logger: nil})
	if err := r.Update(context.Background(), []PoolConfig{{ID: "p", Endpoints: []EndpointConfig{{Address: "a.internal:80"}}, ResolveInterval: 5 * time.Millisecond}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "re-resolution running", func() bool { return res.calls.Load() > 2 })
	r.Close()
	r.Close()
	n := res.calls.Load()
	time.Sleep(30 * time.Millisecond)
	if res.calls.Load() != n {
		t.Error("resolver still running after Close")
	}
	if err := r.Update(context.Background(), nil); err == nil {
		t.Error("Update after Close did not fail")
	}
}

func reversed(s []string) []string {
	out := slices.Clone(s)
	slices.Reverse(out)
	return out
}

func TestUnchangedUpdateReusesTables(t *testing.T) {
	r, _ := newTestRegistry(t, RegistryOptions{})
	cfg := PoolConfig{ID: "p", Algorithm: Maglev, Endpoints: endpoints(addrs(4), 1, 2, 3, 4)}
	p := mustPool(t, r, cfg)
	first := p.tab.Load()
	cfg.Breaker = &BreakerConfig{MaxRequests: 5} // not a selection change
	mustPool(t, r, cfg)
	second := p.tab.Load()
	if first == second || &first.maglev[0] != &second.maglev[0] || second.breaker == nil {
		t.Fatal("unchanged endpoints: lookup table rebuilt or breaker not applied")
	}
	cfg.Endpoints[0].Weight = 9
	mustPool(t, r, cfg)
	if third := p.tab.Load(); &third.maglev[0] == &second.maglev[0] {
		t.Fatal("changed weight: lookup table reused")
	}
}

func TestHealthCheckTLSEquality(t *testing.T) {
	roots := x509.NewCertPool()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	mk := func() *tls.Config {
		return &tls.Config{ServerName: "a", RootCAs: roots, Certificates: []tls.Certificate{
			{Certificate: [][]byte{[]byte("der")}, PrivateKey: key},
			{Certificate: [][]byte{[]byte("der2")}, PrivateKey: edKey},
		}}
	}
	if !tlsEqual(mk(), mk()) {
		t.Error("equal TLS configs differ")
	}
	other := mk()
	other.ServerName = "b"
	if tlsEqual(mk(), other) {
		t.Error("different server names equal")
	}
	cb := mk()
	cb.VerifyConnection = func(tls.ConnectionState) error { return nil }
	if tlsEqual(mk(), cb) || tlsEqual(nil, mk()) || !tlsEqual(nil, nil) {
		t.Error("callbacks or nil compared wrongly")
	}
}

func TestFrequentUpdatesDoNotPostponeReResolution(t *testing.T) {
	res := &fakeResolver{answers: map[string][]string{"svc.internal": {"10.2.0.1"}}}
	r, _ := newTestRegistry(t, RegistryOptions{Resolver: res})
	cfg := PoolConfig{ID: "p", Endpoints: []EndpointConfig{{Address: "svc.internal:80"}}, ResolveInterval: 60 * time.Millisecond}
	p := mustPool(t, r, cfg)
	res.set("svc.internal", "10.2.0.2")
	deadline := time.Now().Add(5 * time.Second)
	for byAddr(p, "10.2.0.2:80") == nil {
		if time.Now().After(deadline) {
			t.Fatal("updates every 10ms kept the name from being re-resolved")
		}
		mustPool(t, r, cfg)
		time.Sleep(10 * time.Millisecond)
	}
}
