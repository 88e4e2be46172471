package apiserver

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"sync"
	"time"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"golang.org/x/time/rate"
)

// limiterRefresh is how often a tenant's limit is re-read from its Tenant
// object.
const limiterRefresh = 10 * time.Second

type tenantLimiter struct {
	lim     *rate.Limiter
	checked time.Time
	rps     float64
	burst   int
}

// tenantLimiters keeps one token bucket per tenant.
type tenantLimiters struct {
	s  *Server
	mu sync.Mutex
	m  map[string]*tenantLimiter
}

func newTenantLimiters(s *Server) *tenantLimiters {
	return &tenantLimiters{s: s, m: map[string]*tenantLimiter{}}
}

// limitsOf reads a tenant's limits, falling back to the defaults.
func (l *tenantLimiters) limitsOf(ctx context.Context, tenant string) (float64, int) {
	rps, burst := l.s.opts.DefaultRateLimit, l.s.opts.DefaultRateBurst
	kv, err := l.s.st.Get(ctx, objKey(SystemTenant, objRef{Plural: l.s.pluralOf("Tenant"), Name: tenant}))
	if err != nil {
		return rps, burst
	}
	var t v1.Tenant
	if json.Unmarshal(kv.Value, &t) != nil {
		return rps, burst
	}
	if t.Spec.Limits.RequestsPerSecond > 0 {
		rps = float64(t.Spec.Limits.RequestsPerSecond)
		burst = t.Spec.Limits.Burst
		if burst <= 0 {
			burst = 2 * t.Spec.Limits.RequestsPerSecond
		}
	}
	return rps, burst
}

// allow takes one token of the tenant's bucket or answers 429.
func (l *tenantLimiters) allow(ctx context.Context, tenant string) error {
	if l.s.opts.DefaultRateLimit < 0 {
		return nil
	}
	now := l.s.now()
	l.mu.Lock()
	tl := l.m[tenant]
	stale := tl == nil || now.Sub(tl.checked) > limiterRefresh
	l.mu.Unlock()
	if stale {
		rps, burst := l.limitsOf(ctx, tenant)
		l.mu.Lock()
		tl = l.m[tenant]
		if tl == nil {
			tl = &tenantLimiter{lim: rate.NewLimiter(rate.Limit(rps), burst), rps: rps, burst: burst}
			l.m[tenant] = tl
		} else if tl.rps != rps || tl.burst != burst {
			tl.lim.SetLimitAt(now, rate.Limit(rps))
			tl.lim.SetBurstAt(now, burst)
			tl.rps, tl.burst = rps, burst
		}
		tl.checked = now
		l.mu.Unlock()
	}
	r := tl.lim.ReserveN(now, 1)
	if !r.OK() {
		return tooMany(time.Second)
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return tooMany(d)
	}
	return nil
}

func tooMany(d time.Duration) error {
	secs := int(math.Ceil(d.Seconds()))
	if secs < 1 {
		secs = 1
	}
	e := newErr(http.StatusTooManyRequests, v1.StatusReasonTooManyRequests, "too many requests for this tenant: retry after %d s", secs)
	e.retryAfter = secs
	return e
}
