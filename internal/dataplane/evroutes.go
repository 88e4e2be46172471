package dataplane

import (
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meridian-platform/meridian/internal/dataplane/config"
	"github.com/meridian-platform/meridian/internal/dataplane/evloop"
)

// evRoute is what the event-loop engine needs of a route, resolved when a
// table is applied: the Tag of the requests the loops forward on it, so
// that counting and logging an exchange look nothing up.
type evRoute struct {
	rt  *config.Route
	rm  *routeMetrics
	lbm *lbMetrics
	// log is the load balancer's access log (nil: none).
	log *accessLogStage
	// timeout and connectTimeout are the route's and its pool's (0: the
	// loop's defaults, Options.DefaultRouteTimeout and the pools'
	// default connect timeout).
	timeout, connectTimeout time.Duration
	// bodyTimeout is the load balancer's request body timeout (0: the
	// listener's).
	bodyTimeout time.Duration
	// rewrite is the route's prefix and host rewrite for the loop (nil:
	// none); noRewrite says the loop cannot do it as the goroutine engine
	// does (a prefix with bytes it would escape).
	rewrite   *evloop.Rewrite
	noRewrite bool
	// vh is the route's load balancer; stages, when set, is its pipeline,
	// whose loop-servable stages the loop runs (evstage_linux.go).
	vh     *config.VHost
	stages *Pipeline
}

// evRoutes resolves the evRoute of every route of st.
func evRoutes(st *state) map[*config.Route]*evRoute {
	m := map[*config.Route]*evRoute{}
	for vh, pl := range st.pipelines {
		add := func(rt *config.Route) {
			if rt != nil {
				er := &evRoute{rt: rt, rm: st.routeMetrics[rt], lbm: st.lbMetrics[vh], log: pl.accessLog, timeout: max(rt.Timeout, 0),
					bodyTimeout: max(vh.Timeouts.RequestBody, 0)}
				if rt.Pool != nil {
					er.connectTimeout = max(rt.Pool.ConnectTimeout, 0)
				}
				er.vh = vh
				if len(pl.evReq) > 0 || len(pl.evDone) > 0 {
					er.stages = pl
				}
				if rt.PrefixRewrite != "" || rt.HostRewrite != "" || rt.RequestHeaders != nil {
					er.rewrite, er.noRewrite = evRewrite(rt)
				}
				m[rt] = er
			}
		}
		for _, rt := range vh.Routes {
			add(rt)
		}
		add(vh.Default)
	}
	return m
}

// evRouteCache holds the evRoutes of the state in force, resolved on first
// use after each Apply.
type evRouteCache struct {
	s   *Server
	mu  sync.Mutex
	cur atomic.Pointer[evRouteSet]
}

type evRouteSet struct {
	st     *state
	routes map[*config.Route]*evRoute
}

// lookup returns the evRoute of rt in the state in force (nil when rt is
// not one of its routes: the table changed meanwhile).
func (c *evRouteCache) lookup(rt *config.Route) *evRoute {
	st := c.s.state.Load()
	set := c.cur.Load()
	if set == nil || set.st != st {
		c.mu.Lock()
		if set = c.cur.Load(); set == nil || set.st != st {
			set = &evRouteSet{st: st, routes: evRoutes(st)}
			c.cur.Store(set)
		}
		c.mu.Unlock()
	}
	return set.routes[rt]
}

// plainPath says a path has only bytes that the goroutine engine's HTTP
// library sends as they are (no percent-encoding): a rewritten path is
// built by the event loop only then.
func plainPath(p []byte) bool {
	for _, c := range p {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '/' || c == '-' || c == '.' || c == '_' || c == '~':
		default:
			return false
		}
	}
	return true
}

// evRewrite is the event loop's version of the route's prefix and host
// rewrite and request header changes; ok false when the loop cannot do
// them as the goroutine engine does: a prefix with bytes its library
// would escape, a header change naming a field that engine treats apart
// (framing, Host, User-Agent, Content-Type, Cookie, hop-by-hop fields) or
// one the proxy sets after the changes (forwarding fields, the request id
// the access log reports).
func evRewrite(rt *config.Route) (rw *evloop.Rewrite, no bool) {
	rw = &evloop.Rewrite{Path: rt.PrefixRewrite, Strip: -1, Host: rt.HostRewrite}
	if rt.PathKind == config.PathPrefix {
		rw.Strip = len(rt.PathValue)
	}
	no = !plainPath([]byte(rt.PrefixRewrite))
	if m := rt.RequestHeaders; m != nil {
		rw.Remove = m.Remove
		for _, n := range m.Remove {
			no = no || evKeptField(n)
		}
		for _, kv := range m.Set {
			rw.Set = append(rw.Set, evloop.Field{Name: kv.Name, Value: kv.Value})
			no = no || evKeptField(kv.Name)
		}
		for _, kv := range m.Add {
			rw.Add = append(rw.Add, evloop.Field{Name: kv.Name, Value: kv.Value})
			no = no || evKeptField(kv.Name)
		}
	}
	return rw, no
}

// evKeptField says a header change naming this field stays with the
// goroutine engine.
func evKeptField(name string) bool {
	switch strings.ToLower(name) {
	case "host", "content-length", "transfer-encoding", "content-type", "user-agent", "cookie", "connection", "keep-alive",
		"proxy-connection", "proxy-authorization", "te", "trailer", "upgrade", "expect", "x-forwarded-for", "x-forwarded-proto",
		"x-request-id":
		return true
	}
	return false
}
