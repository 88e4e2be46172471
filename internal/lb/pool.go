package lb

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Errors returned by Pick and the circuit breaker.
var (
	// ErrNoHealthyEndpoint: the pool has no endpoint, or none is available
	// and panic mode is disabled.
	ErrNoHealthyEndpoint = errors.New("lb: no healthy endpoint")
	// ErrCircuitOpen: a circuit breaker limit of the pool is reached.
	ErrCircuitOpen = errors.New("lb: circuit breaker open")
)

// Pool is one origin pool. A *Pool stays the same object for its ID across
// Registry.Update calls, so the data plane may keep it in a compiled
// configuration; after the pool is removed from the registry it keeps
// answering Pick with its last endpoints (for in-flight requests of an older
// configuration) but no longer health-checks or re-resolves them.
type Pool struct {
	id  string
	reg *Registry
	log *slog.Logger
	tab atomic.Pointer[table]
	// Written on every request: each on its own cache line, away from tab.
	_  [64]byte
	rr atomic.Uint64
	_  [56]byte

	active, pending, conns                     atomic.Int64
	reqRejected, pendingRejected, connRejected atomic.Uint64
	ejectionsSkipped                           atomic.Uint64

	mu       sync.Mutex
	cfg      PoolConfig
	eps      map[string]*Endpoint // by resolved address
	hosts    map[string][]string  // host name -> last resolved IPs (sorted)
	closed   bool
	resolver context.CancelFunc // stops the re-resolution loop
	// names and interval the running loop was started with
	resolverNames    []string
	resolverInterval time.Duration
}

func newPool(r *Registry, id string) *Pool {
	p := &Pool{id: id, reg: r, log: r.log.With("pool", id), eps: map[string]*Endpoint{}, hosts: map[string][]string{}}
	p.rr.Store(rand.Uint64())
	p.tab.Store(&table{alg: RoundRobin})
	return p
}

// ID returns the pool's stable identity.
func (p *Pool) ID() string { return p.id }

// Algorithm returns the pool's current selection algorithm.
func (p *Pool) Algorithm() Algorithm { return p.tab.Load().alg }

// Endpoints returns the pool's current endpoints, sorted by address. The
// slice is shared: do not modify it.
func (p *Pool) Endpoints() []*Endpoint { return p.tab.Load().eps }

// ByID returns the current endpoint with the given ID (see Endpoint.ID), or
// nil. It does not look at health: check Endpoint.Available before pinning
// a client to it.
func (p *Pool) ByID(id string) *Endpoint { return p.tab.Load().byID[id] }

// Pick chooses an endpoint. hash is the request's key for RingHash and
// Maglev (see HashString) and ignored by the other algorithms. exclude, when
// not nil, is avoided if any other endpoint can be picked (a retry passes
// the endpoint that just failed); with no alternative it is returned again.
//
// Unhealthy and ejected endpoints are skipped, except in panic mode: when
// fewer than PanicThresholdPercent of the endpoints are available, every
// endpoint is a candidate, so that a pool whose health checks all fail
// still spreads traffic instead of overloading the few survivors or failing
// everything. Pick returns ErrNoHealthyEndpoint when the pool is empty or
// (panic mode disabled) nothing is available. It does not allocate and is
// safe for concurrent use; circuit breakers are checked by Acquire, not here.
func (p *Pool) Pick(hash uint64, exclude *Endpoint) (*Endpoint, error) {
	t := p.tab.Load()
	n := len(t.eps)
	if n == 0 {
		return nil, ErrNoHealthyEndpoint
	}
	avail := int(t.available.Load())
	all := t.panicPct > 0 && avail*100 < t.panicPct*n
	usable := avail
	if all {
		usable = n
	}
	if usable == 0 {
		return nil, ErrNoHealthyEndpoint
	}
	if usable == 1 {
		exclude = nil
	}
	i := t.pick(p, hash, exclude, all)
	if i < 0 && exclude != nil {
		i = t.pick(p, hash, nil, all)
	}
	if i < 0 {
		return nil, ErrNoHealthyEndpoint
	}
	return t.eps[i], nil
}

// Acquire admits one more active request into the pool, or returns
// ErrCircuitOpen when MaxRequests requests are already active. Every
// successful Acquire must be followed by one Release.
func (p *Pool) Acquire() error {
	if b := p.tab.Load().breaker; b != nil && b.MaxRequests > 0 {
		if p.active.Add(1) > int64(b.MaxRequests) {
			p.active.Add(-1)
			p.reqRejected.Add(1)
			return ErrCircuitOpen
		}
		return nil
	}
	p.active.Add(1)
	return nil
}

// Release ends a request admitted by Acquire.
func (p *Pool) Release() { p.active.Add(-1) }

// AcquirePending admits one more request waiting for a connection to an
// endpoint (none idle and MaxConnections reached, or a dial in progress), or
// returns ErrCircuitOpen when MaxPendingRequests are already waiting. Every
// successful AcquirePending must be followed by one ReleasePending, once the
// request has a connection or gives up.
func (p *Pool) AcquirePending() error {
	if b := p.tab.Load().breaker; b != nil && b.MaxPendingRequests > 0 {
		if p.pending.Add(1) > int64(b.MaxPendingRequests) {
			p.pending.Add(-1)
			p.pendingRejected.Add(1)
			return ErrCircuitOpen
		}
		return nil
	}
	p.pending.Add(1)
	return nil
}

// ReleasePending ends a wait admitted by AcquirePending.
func (p *Pool) ReleasePending() { p.pending.Add(-1) }

// PoolStats is a snapshot of a pool for metrics.
type PoolStats struct {
	ID        string
	Algorithm Algorithm
	// Total is the number of endpoints, Available those neither unhealthy
	// nor ejected; Panic says Pick currently ignores health.
	Total, Available int
	Panic            bool

	ActiveRequests, PendingRequests, ActiveConnections int64
	// Circuit-breaker rejections by limit.
	RequestsRejected, PendingRejected, ConnectionsRejected uint64
	// EjectionsSkipped counts ejections refused by MaxEjectionPercent.
	EjectionsSkipped uint64

	Endpoints []EndpointStats
}

// Stats returns a snapshot of the pool and its endpoints.
func (p *Pool) Stats() PoolStats {
	t := p.tab.Load()
	s := PoolStats{
		ID:                  p.id,
		Algorithm:           t.alg,
		Total:               len(t.eps),
		Available:           int(t.available.Load()),
		ActiveRequests:      p.active.Load(),
		PendingRequests:     p.pending.Load(),
		ActiveConnections:   p.conns.Load(),
		RequestsRejected:    p.reqRejected.Load(),
		PendingRejected:     p.pendingRejected.Load(),
		ConnectionsRejected: p.connRejected.Load(),
		EjectionsSkipped:    p.ejectionsSkipped.Load(),
		Endpoints:           make([]EndpointStats, len(t.eps)),
	}
	s.Panic = s.Total > 0 && t.panicPct > 0 && s.Available*100 < t.panicPct*s.Total
	for i, e := range t.eps {
		s.Endpoints[i] = e.Stats()
	}
	return s
}

// apply installs a normalized configuration. Host names not resolved
// before are resolved now; a failure is returned but does not stop the
// rest of the pool from being applied (the name is retried in the
// background).
func (p *Pool) apply(ctx context.Context, cfg PoolConfig) error {
	names := hostNames(cfg.Endpoints)
	p.mu.Lock()
	known := make(map[string][]string, len(names))
	for _, n := range names {
		if ips, ok := p.hosts[n]; ok {
			known[n] = ips
		}
	}
	p.mu.Unlock()

	// Names not seen before are resolved now, all at once.
	var todo []string
	for _, n := range names {
		if _, ok := known[n]; !ok {
			todo = append(todo, n)
		}
	}
	ips := make([][]string, len(todo))
	errs := make([]error, len(todo))
	var wg sync.WaitGroup
	for i, n := range todo {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ips[i], errs[i] = p.reg.lookup(ctx, n)
		}()
	}
	wg.Wait()
	for i, n := range todo {
		if errs[i] == nil {
			known[n] = ips[i]
		}
	}

	p.mu.Lock()
	defer p.mu.Unlock()
	for n := range known {
		// The resolver loop may have refreshed a cached name meanwhile.
		if cur, ok := p.hosts[n]; ok && !slices.Contains(todo, n) {
			known[n] = cur
		}
	}
	p.cfg = cfg
	p.hosts = known
	p.rebuildLocked()
	p.startResolverLocked(names)
	return errors.Join(errs...)
}

// hostNames lists the distinct host names (not IP literals) of eps.
func hostNames(eps []EndpointConfig) []string {
	var names []string
	for _, e := range eps {
		host, _, _ := splitAddress(e.Address)
		if _, err := netip.ParseAddr(host); err == nil {
			continue
		}
		if !slices.Contains(names, host) {
			names = append(names, host)
		}
	}
	return names
}

// rebuildLocked expands the configuration into endpoints (keeping the
// existing Endpoint of every address still present), builds and installs
// a new table, and starts or stops health checkers to match.
func (p *Pool) rebuildLocked() {
	cfg := &p.cfg
	type cand struct {
		hostname, configAddr string
		weight               uint64
	}
	// A name resolving to k addresses gets its weight split k ways; all
	// weights are scaled by the least common multiple of the k (at most 64)
	// so the split stays exact in the usual cases.
	scale := uint64(1)
	for _, ec := range cfg.Endpoints {
		host, _, _ := splitAddress(ec.Address)
		if k := uint64(len(p.hosts[host])); k > 1 {
			scale = min(64, scale/gcd(scale, k)*k)
		}
	}
	cands := map[string]*cand{}
	var addrs []string
	for _, ec := range cfg.Endpoints {
		host, port, _ := splitAddress(ec.Address)
		ips := []string{host}
		if _, err := netip.ParseAddr(host); err != nil {
			ips = p.hosts[host]
		}
		if len(ips) == 0 {
			continue
		}
		w := max(1, uint64(ec.Weight)*scale/uint64(len(ips)))
		for _, ip := range ips {
			a := net.JoinHostPort(ip, port)
			if c, ok := cands[a]; ok {
				c.weight += w // the same address configured twice
				continue
			}
			cands[a] = &cand{hostname: host, configAddr: ec.Address, weight: w}
			addrs = append(addrs, a)
		}
	}
	slices.Sort(addrs)

	eps := make([]*Endpoint, len(addrs))
	weights := make([]uint64, len(addrs))
	next := make(map[string]*Endpoint, len(addrs))
	for i, a := range addrs {
		c := cands[a]
		e := p.eps[a]
		if e == nil {
			e = newEndpoint(p, a, c.hostname, c.configAddr)
		}
		e.weight.Store(int64(c.weight))
		eps[i], weights[i], next[a] = e, c.weight, e
	}
	for a, e := range p.eps {
		if next[a] == nil {
			p.retireLocked(e)
		}
	}
	p.eps = next

	if cfg.Outlier == nil {
		for _, e := range eps {
			p.clearEjectionLocked(e)
		}
	}
	for _, e := range eps {
		p.syncCheckerLocked(e, cfg.HealthCheck)
	}
	t := buildTable(cfg, eps, weights, p.tab.Load())
	p.tab.Store(t)
	p.recountLocked()
}

// retireLocked stops everything running for an endpoint leaving the pool.
func (p *Pool) retireLocked(e *Endpoint) {
	if e.checker != nil {
		e.checker.stop()
		e.checker = nil
	}
	if e.ejectTimer != nil {
		e.ejectTimer.Stop()
		e.ejectTimer = nil
	}
}

// recountLocked recomputes the number of available endpoints of the
// current table. Callers hold p.mu after changing a flag, so the last
// recount always sees every change.
func (p *Pool) recountLocked() {
	t := p.tab.Load()
	n := int64(0)
	for _, e := range t.eps {
		if e.flags.Load() == 0 {
			n++
		}
	}
	t.available.Store(n)
}

// close stops the pool's health checkers, re-resolution and ejection timers.
func (p *Pool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.closed = true
	if p.resolver != nil {
		p.resolver()
		p.resolver = nil
	}
	for _, e := range p.eps {
		p.retireLocked(e)
	}
}

// outlierFailure is called by End when an endpoint reached a consecutive
// failure threshold: it ejects the endpoint unless that would exceed
// MaxEjectionPercent. Either way the consecutive counters restart, so the
// next attempt needs a new run of failures.
func (p *Pool) outlierFailure(e *Endpoint, reason string, count int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e.consec5xx.Store(0)
	e.consecConnect.Store(0)
	t := p.tab.Load()
	o := t.outlier
	if o == nil || p.closed || p.eps[e.addr] != e || e.flags.Load()&flagEjected != 0 {
		return
	}
	ejected := 0
	for _, x := range t.eps {
		if x.flags.Load()&flagEjected != 0 {
			ejected++
		}
	}
	limit := max(1, len(t.eps)*o.MaxEjectionPercent/100)
	if ejected >= limit {
		p.ejectionsSkipped.Add(1)
		p.log.Info("endpoint not ejected: max ejection percent reached", "endpoint", e.addr,
			"reason", reason, "count", count, "ejected", ejected, "maxEjectionPercent", o.MaxEjectionPercent)
		return
	}
	now := p.reg.now()
	if e.multiplier > 0 && !e.lastUneject.IsZero() {
		e.multiplier = max(0, e.multiplier-int(now.Sub(e.lastUneject)/o.Interval))
	}
	e.multiplier++
	d := o.BaseEjectionTime * time.Duration(e.multiplier)
	if d > o.MaxEjectionTime || d/time.Duration(e.multiplier) != o.BaseEjectionTime {
		d = o.MaxEjectionTime
	}
	e.flags.Or(flagEjected)
	e.ejections.Add(1)
	e.ejectTimer = time.AfterFunc(d, func() { p.uneject(e) })
	p.recountLocked()
	p.log.Warn("endpoint ejected", "endpoint", e.addr, "reason", reason, "count", count, "for", d,
		"ejections", e.ejections.Load())
}

// uneject returns an ejected endpoint to service when its time is up.
func (p *Pool) uneject(e *Endpoint) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e.ejectTimer = nil
	if e.flags.Load()&flagEjected == 0 {
		return
	}
	e.flags.And(^flagEjected)
	e.lastUneject = p.reg.now()
	p.recountLocked()
	p.log.Info("endpoint returned from ejection", "endpoint", e.addr)
}

// clearEjectionLocked ends an ejection at once (outlier detection removed).
func (p *Pool) clearEjectionLocked(e *Endpoint) {
	if e.ejectTimer != nil {
		e.ejectTimer.Stop()
		e.ejectTimer = nil
	}
	e.multiplier = 0
	e.flags.And(^flagEjected)
}

// setHealthLocked records a health transition.
func (p *Pool) setHealthLocked(e *Endpoint, s HealthState) {
	e.health.Store(int32(s))
	if s == HealthUnhealthy {
		e.flags.Or(flagUnhealthy)
	} else {
		e.flags.And(^flagUnhealthy)
	}
}
