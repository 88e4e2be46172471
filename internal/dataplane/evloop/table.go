package evloop

import (
	"bytes"
	"net/netip"

	"github.com/meridian-platform/meridian/internal/dataplane/config"
	"github.com/meridian-platform/meridian/internal/lb"
)

// TableRouter routes through the compiled configuration of one listener:
// the Host header picks the load balancer (config.HTTPListener.VHost), its
// routes pick the pool (config.VHost.Match) and the pool's load balancer
// picks the endpoint (lb.Pool.Pick); the Target's Tag is the
// *config.Route. A request that needs anything more than forwarding goes
// to Handoff: a load balancer with security settings, trusted proxies or
// an access log (unless AccessLogs), or one that Eligible (when set)
// refuses; a route with a redirect, direct answer, rewrite or request
// header changes (unless Rewrites), response header
// changes, CORS, retries or a mirror; a pool with TLS, PROXY protocol or
// HTTP/2 to its origins, hashing, affinity or a circuit breaker (outlier
// detection works with the loops: they count every exchange on its
// endpoint); a path that needs normalization; no
// match.
type TableRouter struct {
	// Listener returns the listener's current configuration (nil: gone).
	Listener func() *config.HTTPListener
	// Pools returns a pool's runtime state by ID.
	Pools func(id string) *lb.Pool
	// Eligible, when set, must also accept the load balancer (the node's
	// hook passes "its stage pipeline is empty").
	Eligible func(vh *config.VHost) bool
	// AccessLogs says the proxy writes the access logs of the load
	// balancers that have one (Config.AccessLog); without it they go to
	// Handoff.
	AccessLogs bool
	// Rewrites says the Router's caller sets Target.Rewrite for routes
	// with a prefix or host rewrite or request header changes; without it
	// they go to Handoff.
	Rewrites bool
	// Answers says the Router's caller sets Target.Answer for redirect and
	// direct-response routes (without response header changes or CORS):
	// the Target it returns for them has no Origin. Without it they go to
	// Handoff.
	Answers bool
	// Stages says the Router's caller runs the request stages of the load
	// balancers Eligible accepts (authentication, WAF, service policies,
	// rate limits): their security settings do not send a request to
	// Handoff.
	Stages bool
}

// Route implements Router.
func (t *TableRouter) Route(r *Request) (Target, bool) {
	ap, rt, e, ok := t.route(r)
	if !ok {
		return Target{}, false
	}
	return Target{Origin: ap, Tag: rt, Endpoint: e}, true
}

// route returns the origin, the route (the Target's Tag) and the endpoint.
func (t *TableRouter) route(r *Request) (netip.AddrPort, *config.Route, *lb.Endpoint, bool) {
	lc := t.Listener()
	if lc == nil || r.Path == nil {
		return netip.AddrPort{}, nil, nil, false
	}
	vh := lc.VHost(r.Host)
	if vh == nil || !t.plainVHost(vh) || t.Eligible != nil && !t.Eligible(vh) {
		return netip.AddrPort{}, nil, nil, false
	}
	if len(r.Query) > 0 && bytes.ContainsAny(r.Query, "%+") {
		// Query matchers compare decoded values.
		for _, rt := range vh.Routes {
			if len(rt.Query) > 0 {
				return netip.AddrPort{}, nil, nil, false
			}
		}
	}
	r.match.r = r
	rt := vh.Match(&r.match)
	if rt != nil && t.Answers && (rt.Redirect != nil || rt.Direct != nil) && rt.ResponseHeaders == nil && rt.CORS == nil && t.plainSecurity(rt.Security) {
		return netip.AddrPort{}, rt, nil, true
	}
	if rt == nil || !t.plainRoute(rt) {
		return netip.AddrPort{}, nil, nil, false
	}
	pool := t.Pools(rt.Pool.ID)
	if pool == nil {
		return netip.AddrPort{}, nil, nil, false
	}
	e, err := pool.Pick(0, nil)
	if err != nil {
		return netip.AddrPort{}, nil, nil, false
	}
	ap, err := netip.ParseAddrPort(e.Addr())
	if err != nil {
		return netip.AddrPort{}, nil, nil, false
	}
	return ap, rt, e, true
}

func (t *TableRouter) plainVHost(vh *config.VHost) bool {
	if vh.Authn != nil && !t.Stages || len(vh.TrustedProxies) > 0 || !t.AccessLogs && vh.AccessLog != nil && vh.AccessLog.Enabled {
		return false
	}
	for _, s := range vh.Security {
		if !t.plainSecurity(s) {
			return false
		}
	}
	return true
}

func (t *TableRouter) plainSecurity(s *config.Security) bool {
	return s == nil || t.Stages || s.Authn == nil && len(s.AppFirewalls) == 0 && len(s.ServicePolicies) == 0 && len(s.RateLimiters) == 0
}

func (t *TableRouter) plainRoute(rt *config.Route) bool {
	if rt.Pool == nil || rt.Redirect != nil || rt.Direct != nil || !t.Rewrites && (rt.PrefixRewrite != "" || rt.HostRewrite != "" || rt.RequestHeaders != nil) ||
		rt.ResponseHeaders != nil || rt.CORS != nil || rt.Retry != nil || rt.Mirror != nil ||
		!t.plainSecurity(rt.Security) {
		return false
	}
	p := rt.Pool
	switch p.LB.Algorithm {
	case "", lb.RoundRobin, lb.Random, lb.LeastRequest:
	default:
		return false
	}
	return p.TLS == nil && p.ProxyProtocol == 0 && !p.HTTP2 && p.HashHeader == "" && p.HashCookie == "" && !p.HashSourceIP &&
		p.AffinityCookie == "" && p.LB.Breaker == nil && p.MaxConnsPerBreaker == 0
}

// matchRequest adapts a Request to config.Request. It lives inside the
// Request so that passing it as an interface allocates nothing.
type matchRequest struct{ r *Request }

func (m *matchRequest) Method() []byte { return m.r.Method }

func (m *matchRequest) Path() []byte { return m.r.Path }

func (m *matchRequest) Header(name string) ([]byte, bool) { return m.r.Header(name) }

func (m *matchRequest) Query(name string) ([]byte, bool) {
	q := m.r.Query
	for len(q) > 0 {
		var kv []byte
		if i := bytes.IndexByte(q, '&'); i >= 0 {
			kv, q = q[:i], q[i+1:]
		} else {
			kv, q = q, nil
		}
		k, v := kv, []byte{}
		if i := bytes.IndexByte(kv, '='); i >= 0 {
			k, v = kv[:i], kv[i+1:]
		}
		if string(k) == name {
			return v, true
		}
	}
	return nil, false
}
