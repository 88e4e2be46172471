package lb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Resolver resolves host names; *net.Resolver satisfies it.
type Resolver interface {
	LookupHost(ctx context.Context, host string) ([]string, error)
}

// Dialer opens health-check connections; *net.Dialer satisfies it.
type Dialer interface {
	DialContext(ctx context.Context, network, address string) (net.Conn, error)
}

// RegistryOptions configures a Registry. Every field is optional.
type RegistryOptions struct {
	// Logger receives health transitions, ejections and resolution
	// failures (default slog.Default()).
	Logger *slog.Logger
	// Resolver resolves endpoint host names (default net.DefaultResolver).
	Resolver Resolver
	// Dialer dials health-check connections (default a net.Dialer).
	Dialer Dialer
	// Now is the clock used for ejection bookkeeping (default time.Now).
	// Timers (probe intervals, ejection ends) always run on real time.
	Now func() time.Time
	// Jitter returns a random duration in [0, max) (default uniform); tests
	// may make it deterministic.
	Jitter func(max time.Duration) time.Duration
	// ResolveTimeout bounds one host-name lookup (default 5s).
	ResolveTimeout time.Duration
}

// Registry holds the origin pools of a node, keyed by stable pool ID. Pools
// and their endpoints' runtime state live here, outside any compiled
// configuration, so a configuration push does not reset them.
type Registry struct {
	opts RegistryOptions
	log  *slog.Logger
	wg   sync.WaitGroup

	mu     sync.Mutex
	pools  map[string]*Pool
	closed bool
	view   atomic.Pointer[map[string]*Pool]
}

// NewRegistry returns an empty registry.
func NewRegistry(opts RegistryOptions) *Registry {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Resolver == nil {
		opts.Resolver = net.DefaultResolver
	}
	if opts.Dialer == nil {
		opts.Dialer = &net.Dialer{}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Jitter == nil {
		opts.Jitter = func(max time.Duration) time.Duration {
			if max <= 0 {
				return 0
			}
			return rand.N(max)
		}
	}
	if opts.ResolveTimeout <= 0 {
		opts.ResolveTimeout = 5 * time.Second
	}
	r := &Registry{opts: opts, log: opts.Logger.With("component", "lb"), pools: map[string]*Pool{}}
	empty := map[string]*Pool{}
	r.view.Store(&empty)
	return r
}

func (r *Registry) now() time.Time { return r.opts.Now() }

func (r *Registry) jitter(max time.Duration) time.Duration {
	if max <= 0 {
		return 0
	}
	return r.opts.Jitter(max)
}

// Update makes the registry hold exactly the given pools: new IDs are
// created, existing ones updated in place (endpoints with an unchanged
// resolved address keep their health, ejection, breaker and request
// counters), and pools not listed are removed (their health checks and
// re-resolution stop; their *Pool keeps serving Pick for in-flight users).
//
// A pool whose configuration is invalid is left as it was (or not created)
// and reported in the returned error; the other pools are applied anyway. A
// host name that cannot be resolved is reported too, but its pool is applied
// without that name's endpoints and the name is retried in the background.
func (r *Registry) Update(ctx context.Context, pools []PoolConfig) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return errors.New("updating pools: registry is closed")
	}
	var errs []error
	seen := make(map[string]bool, len(pools))
	for _, pc := range pools {
		if seen[pc.ID] {
			errs = append(errs, fmt.Errorf("pool %q: duplicate id", pc.ID))
			continue
		}
		seen[pc.ID] = true
		cfg, err := pc.normalized()
		if err != nil {
			errs = append(errs, fmt.Errorf("pool %q: %w", pc.ID, err))
			continue
		}
		p := r.pools[cfg.ID]
		if p == nil {
			p = newPool(r, cfg.ID)
			r.pools[cfg.ID] = p
		}
		if err := p.apply(ctx, cfg); err != nil {
			errs = append(errs, fmt.Errorf("pool %q: %w", pc.ID, err))
		}
	}
	for id, p := range r.pools {
		if !seen[id] {
			p.close()
			delete(r.pools, id)
			r.log.Info("pool removed", "pool", id)
		}
	}
	view := make(map[string]*Pool, len(r.pools))
	for id, p := range r.pools {
		view[id] = p
	}
	r.view.Store(&view)
	return errors.Join(errs...)
}

// Pool returns the pool with the given ID, or nil. It does not lock.
func (r *Registry) Pool(id string) *Pool { return (*r.view.Load())[id] }

// Pools returns all pools sorted by ID.
func (r *Registry) Pools() []*Pool {
	m := *r.view.Load()
	ps := make([]*Pool, 0, len(m))
	for _, p := range m {
		ps = append(ps, p)
	}
	slices.SortFunc(ps, func(a, b *Pool) int {
		switch {
		case a.id < b.id:
			return -1
		case a.id > b.id:
			return 1
		}
		return 0
	})
	return ps
}

// Close stops every health checker and resolver and waits for them. Pools
// keep answering Pick.
func (r *Registry) Close() {
	r.mu.Lock()
	r.closed = true
	for _, p := range r.pools {
		p.close()
	}
	r.mu.Unlock()
	r.wg.Wait()
}

// lookup resolves a host name to its sorted IP addresses.
func (r *Registry) lookup(ctx context.Context, host string) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, r.opts.ResolveTimeout)
	defer cancel()
	addrs, err := r.opts.Resolver.LookupHost(ctx, host)
	if err != nil {
		return nil, fmt.Errorf("resolving %q: %w", host, err)
	}
	var ips []string
	for _, a := range addrs {
		ip, err := netip.ParseAddr(a)
		if err != nil {
			continue
		}
		if s := ip.String(); !slices.Contains(ips, s) {
			ips = append(ips, s)
		}
	}
	if len(ips) == 0 {
		return nil, fmt.Errorf("resolving %q: no IP address", host)
	}
	slices.Sort(ips)
	return ips, nil
}

// startResolverLocked (re)starts the pool's background re-resolution of
// names every ResolveInterval (every 2s at most while a name has never
// resolved). A loop already running for the same names and interval is
// left alone, so frequent updates do not keep postponing re-resolution.
func (p *Pool) startResolverLocked(names []string) {
	interval := p.cfg.ResolveInterval
	if p.resolver != nil && slices.Equal(p.resolverNames, names) && p.resolverInterval == interval {
		return
	}
	if p.resolver != nil {
		p.resolver()
		p.resolver = nil
	}
	p.resolverNames, p.resolverInterval = names, interval
	if len(names) == 0 || p.closed {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.resolver = cancel
	p.reg.wg.Add(1)
	go func() {
		defer p.reg.wg.Done()
		p.resolveLoop(ctx, names, interval)
	}()
}

func (p *Pool) resolveLoop(ctx context.Context, names []string, interval time.Duration) {
	timer := time.NewTimer(p.resolveWait(names, interval))
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		found := map[string][]string{}
		for _, n := range names {
			ips, err := p.reg.lookup(ctx, n)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				p.log.Warn("re-resolving endpoint host failed; keeping previous addresses", "host", n, "error", err.Error())
				continue
			}
			found[n] = ips
		}
		p.mu.Lock()
		if ctx.Err() != nil {
			p.mu.Unlock()
			return
		}
		changed := false
		for n, ips := range found {
			if old, ok := p.hosts[n]; !ok || !slices.Equal(old, ips) {
				p.log.Info("endpoint host resolved", "host", n, "addresses", ips, "previous", old)
				p.hosts[n] = ips
				changed = true
			}
		}
		if changed {
			p.rebuildLocked()
		}
		p.mu.Unlock()
		timer.Reset(p.resolveWait(names, interval))
	}
}

// resolveWait is the delay before the next resolution round: shorter while
// some name has no address yet.
func (p *Pool) resolveWait(names []string, interval time.Duration) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, n := range names {
		if len(p.hosts[n]) == 0 {
			return min(interval, 2*time.Second)
		}
	}
	return interval
}
