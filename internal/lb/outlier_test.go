package lb

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func fail(e *Endpoint, n int, res Result) {
	for i := 0; i < n; i++ {
		e.Begin()
		e.End(res)
	}
}

func TestOutlierEjection(t *testing.T) {
	tests := []struct {
		name    string
		res     Result
		outlier OutlierConfig
	}{
		{"consecutive 5xx", Result{Status: 502}, OutlierConfig{Consecutive5xx: 3, ConsecutiveConnectFailures: -1}},
		{"consecutive connect failures", Result{ConnectFailed: true}, OutlierConfig{Consecutive5xx: -1, ConsecutiveConnectFailures: 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, logs := newTestRegistry(t, RegistryOptions{})
			o := tt.outlier
			o.BaseEjectionTime = 150 * time.Millisecond
			o.MaxEjectionPercent = 50
			as := addrs(4)
			p := mustPool(t, r, PoolConfig{Endpoints: endpoints(as), Outlier: &o})
			e := byAddr(p, as[0])

			fail(e, 2, tt.res)
			if e.Ejected() {
				t.Fatal("ejected before the threshold")
			}
			// Un-ejection is a timer on real time: it never fires early,
			// but a loaded machine may take longer than the ejection
			// between two lines. A check that needs the endpoint still
			// ejected counts only while base has not passed since the
			// ejection began (started is taken before it).
			base := o.BaseEjectionTime
			started := time.Now()
			fail(e, 1, tt.res)
			if (!e.Ejected() || e.Available()) && time.Since(started) < base {
				t.Fatal("not ejected at the threshold")
			}
			for i := 0; i < 500; i++ {
				if got, _ := p.Pick(uint64(i), nil); got == e && time.Since(started) < base {
					t.Fatal("Pick returned an ejected endpoint")
				}
			}
			st := e.Stats()
			if !st.Ejected && time.Since(started) < base || st.EjectionsTotal != 1 || st.RequestsTotal != 3 {
				t.Errorf("stats %+v", st)
			}
			if tt.res.ConnectFailed && st.ConnectFailures != 3 {
				t.Errorf("ConnectFailures = %d, want 3", st.ConnectFailures)
			}
			if !contains(logs.String(), "endpoint ejected") {
				t.Errorf("ejection not logged:\n%s", logs.String())
			}
			eventually(t, 5*time.Second, "un-ejection", func() bool { return !e.Ejected() })
			if d := time.Since(started); d < base {
				t.Errorf("un-ejected after %v, want >= %v", d, base)
			}

			// The second ejection lasts twice as long.
			started = time.Now()
			fail(e, 3, tt.res)
			if !e.Ejected() && time.Since(started) < 2*base {
				t.Fatal("not ejected again")
			}
			eventually(t, 5*time.Second, "second un-ejection", func() bool { return !e.Ejected() })
			if d := time.Since(started); d < 2*base {
				t.Errorf("second ejection ended after %v, want >= %v (twice the base time)", d, 2*base)
			}
			if got := e.Stats().EjectionsTotal; got != 2 {
				t.Errorf("EjectionsTotal = %d, want 2", got)
			}
		})
	}
}

func TestOutlierSuccessResetsCount(t *testing.T) {
	r, _ := newTestRegistry(t, RegistryOptions{})
	p := mustPool(t, r, PoolConfig{Endpoints: endpoints(addrs(2)), Outlier: &OutlierConfig{Consecutive5xx: 3, ConsecutiveConnectFailures: 3, MaxEjectionPercent: 100}})
	e := p.Endpoints()[0]
	fail(e, 2, Result{Status: 500})
	fail(e, 1, Result{Status: 404}) // not a 5xx: resets
	fail(e, 2, Result{Status: 503})
	fail(e, 1, Result{}) // no status: neutral
	fail(e, 2, Result{ConnectFailed: true})
	fail(e, 1, Result{Status: 500}) // connected: resets connect failures, third 5xx in a row
	if !e.Ejected() {
		t.Fatal("three 5xx in a row (with a neutral result between) did not eject")
	}
	e2 := p.Endpoints()[1]
	fail(e2, 2, Result{ConnectFailed: true})
	fail(e2, 1, Result{Status: 200})
	fail(e2, 2, Result{ConnectFailed: true})
	if e2.Ejected() {
		t.Fatal("a success between connect failures did not reset the count")
	}
}

func TestMaxEjectionPercent(t *testing.T) {
	tests := []struct {
		endpoints, percent, wantEjected int
	}{
		{10, 30, 3},
		{10, 10, 1},
		{3, 10, 1}, // at least one may always be ejected
		{4, 100, 4},
		{5, 0, 1}, // default 10%
	}
	for _, tt := range tests {
		r, _ := newTestRegistry(t, RegistryOptions{})
		p := mustPool(t, r, PoolConfig{
			Endpoints: endpoints(addrs(tt.endpoints)),
			Outlier:   &OutlierConfig{Consecutive5xx: 1, MaxEjectionPercent: tt.percent, BaseEjectionTime: time.Minute},
		})
		for _, e := range p.Endpoints() {
			fail(e, 3, Result{Status: 500})
		}
		n := 0
		for _, e := range p.Endpoints() {
			if e.Ejected() {
				n++
			}
		}
		if n != tt.wantEjected {
			t.Errorf("%d endpoints, %d%%: %d ejected, want %d", tt.endpoints, tt.percent, n, tt.wantEjected)
		}
		st := p.Stats()
		if st.Available != tt.endpoints-tt.wantEjected {
			t.Errorf("%d endpoints, %d%%: Available %d", tt.endpoints, tt.percent, st.Available)
		}
		if tt.wantEjected < tt.endpoints && st.EjectionsSkipped == 0 {
			t.Errorf("%d endpoints, %d%%: no skipped ejection counted", tt.endpoints, tt.percent)
		}
	}
}

func TestOutlierRemovedClearsEjections(t *testing.T) {
	r, _ := newTestRegistry(t, RegistryOptions{})
	cfg := PoolConfig{Endpoints: endpoints(addrs(2)), Outlier: &OutlierConfig{Consecutive5xx: 1, MaxEjectionPercent: 50, BaseEjectionTime: time.Hour}}
	p := mustPool(t, r, cfg)
	e := p.Endpoints()[0]
	fail(e, 1, Result{Status: 500})
	if !e.Ejected() {
		t.Fatal("not ejected")
	}
	cfg.Outlier = nil
	mustPool(t, r, cfg)
	if e.Ejected() || !e.Available() || p.Stats().Available != 2 {
		t.Fatal("ejection kept after outlier detection was removed")
	}
	fail(e, 10, Result{Status: 500})
	if e.Ejected() {
		t.Fatal("ejected without outlier detection")
	}
}

func TestEjectionMultiplierDecays(t *testing.T) {
	var mu sync.Mutex
	now := time.Unix(1000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	r, _ := newTestRegistry(t, RegistryOptions{Now: clock})
	p := mustPool(t, r, PoolConfig{Endpoints: endpoints(addrs(2)), Outlier: &OutlierConfig{
		Consecutive5xx: 1, MaxEjectionPercent: 50, BaseEjectionTime: 20 * time.Millisecond, Interval: time.Minute,
	}})
	e := p.Endpoints()[0]
	multiplier := func() int { p.mu.Lock(); defer p.mu.Unlock(); return e.multiplier }
	for i := 1; i <= 3; i++ {
		fail(e, 1, Result{Status: 500})
		if got := multiplier(); got != i {
			t.Fatalf("ejection %d: multiplier %d", i, got)
		}
		eventually(t, 5*time.Second, "un-ejection", func() bool { return !e.Ejected() })
	}
	// Two intervals without ejection take the multiplier from 3 to 1, so
	// the next ejection is the second step.
	advance(2*time.Minute + time.Second)
	fail(e, 1, Result{Status: 500})
	if got := multiplier(); got != 2 {
		t.Fatalf("after decay: multiplier %d, want 2", got)
	}
}

func TestBreakerLimits(t *testing.T) {
	r, _ := newTestRegistry(t, RegistryOptions{})
	p := mustPool(t, r, PoolConfig{Endpoints: endpoints(addrs(2)), Breaker: &BreakerConfig{MaxRequests: 2, MaxPendingRequests: 1, MaxConnections: 3}})

	if err := p.Acquire(); err != nil {
		t.Fatal(err)
	}
	if err := p.Acquire(); err != nil {
		t.Fatal(err)
	}
	if err := p.Acquire(); !errors.Is(err, ErrCircuitOpen) {
		t.Fatalf("third Acquire: %v, want ErrCircuitOpen", err)
	}
	p.Release()
	if err := p.Acquire(); err != nil {
		t.Fatalf("Acquire after Release: %v", err)
	}

	if err := p.AcquirePending(); err != nil {
		t.Fatal(err)
	}
	if err := p.AcquirePending(); !errors.Is(err, ErrCircuitOpen) {
		t.Fatalf("second AcquirePending: %v", err)
	}
	p.ReleasePending()

	a, b := p.Endpoints()[0], p.Endpoints()[1]
	for _, e := range []*Endpoint{a, a, b} {
		if err := e.ConnOpened(); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.ConnOpened(); !errors.Is(err, ErrCircuitOpen) {
		t.Fatalf("fourth connection: %v", err)
	}
	a.ConnClosed()
	if err := b.ConnOpened(); err != nil {
		t.Fatalf("connection after close: %v", err)
	}
	st := p.Stats()
	if st.ActiveRequests != 2 || st.PendingRequests != 0 || st.ActiveConnections != 3 ||
		st.RequestsRejected != 1 || st.PendingRejected != 1 || st.ConnectionsRejected != 1 {
		t.Errorf("stats %+v", st)
	}
	if st.Endpoints[0].ActiveConnections != 1 || st.Endpoints[1].ActiveConnections != 2 {
		t.Errorf("endpoint connections %d/%d, want 1/2", st.Endpoints[0].ActiveConnections, st.Endpoints[1].ActiveConnections)
	}
}

func TestBreakerUnderConcurrency(t *testing.T) {
	r, _ := newTestRegistry(t, RegistryOptions{})
	p := mustPool(t, r, PoolConfig{Endpoints: endpoints(addrs(1)), Breaker: &BreakerConfig{MaxRequests: 3}})
	var inside, peak, admitted atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 2000; i++ {
				if p.Acquire() != nil {
					continue
				}
				admitted.Add(1)
				n := inside.Add(1)
				for {
					old := peak.Load()
					if n <= old || peak.CompareAndSwap(old, n) {
						break
					}
				}
				inside.Add(-1)
				p.Release()
			}
		}()
	}
	wg.Wait()
	if peak.Load() > 3 {
		t.Errorf("%d requests inside at once, limit 3", peak.Load())
	}
	if admitted.Load() == 0 {
		t.Error("nothing admitted")
	}
	if got := p.Stats().ActiveRequests; got != 0 {
		t.Errorf("ActiveRequests %d after all released", got)
	}
}

func TestNoBreakerIsUnlimited(t *testing.T) {
	r, _ := newTestRegistry(t, RegistryOptions{})
	p := mustPool(t, r, PoolConfig{Endpoints: endpoints(addrs(1)), Breaker: &BreakerConfig{}})
	e := p.Endpoints()[0]
	for i := 0; i < 5000; i++ {
		if p.Acquire() != nil || p.AcquirePending() != nil || e.ConnOpened() != nil {
			t.Fatal("limit without a limit")
		}
	}
	// Limits added by an update apply to the counts already there.
	if err := r.Update(context.Background(), []PoolConfig{{ID: p.ID(), Endpoints: endpoints(addrs(1)), Breaker: &BreakerConfig{MaxRequests: 10}}}); err != nil {
		t.Fatal(err)
	}
	if p.Acquire() == nil {
		t.Fatal("Acquire admitted over the new limit")
	}
}
