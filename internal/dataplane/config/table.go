package config

import (
	"crypto/tls"
	"fmt"
	"net/netip"
	"regexp"
	"time"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/internal/authn"
	"github.com/meridian-platform/meridian/internal/lb"
)

// Table is an immutable compiled configuration. Nothing in it changes after
// Compile returns; a new configuration is a new Table.
type Table struct {
	// HTTP and TCP listeners by key ("address:port").
	HTTP map[string]*HTTPListener
	TCP  map[string]*TCPListener
	// Pools by ID.
	Pools map[string]*Pool
	// Errors lists the objects that were skipped, with why.
	Errors []ObjectError
	// Objects is the effective configuration (defaults applied, secrets
	// redacted), for the admin /config endpoint.
	Objects []v1.Object

	// others holds objects of kinds the compiler does not interpret
	// (AppFirewall, ServicePolicy, RateLimiter, ...) for the stages that
	// do, keyed by "Kind namespace/name".
	others map[string]v1.Object
	// netPolicies holds the NetworkPolicy matchers by listener key
	// (netpolicy.go).
	netPolicies *netPolicyTable
}

// Object returns an object of a kind the compiler passes through to stages
// (AppFirewall, ServicePolicy, RateLimiter, ...), or nil. Stages must not
// modify it.
func (t *Table) Object(kind, namespace, name string) v1.Object {
	return t.others[kind+" "+namespace+"/"+name]
}

// ObjectError says why one object was skipped.
type ObjectError struct {
	Kind      string
	Namespace string
	Name      string
	Err       error
}

func (e ObjectError) Error() string {
	return fmt.Sprintf("%s %s/%s: %v", e.Kind, e.Namespace, e.Name, e.Err)
}

// Timeouts are client-side timeouts of a listener.
type Timeouts struct {
	RequestHeader time.Duration
	RequestBody   time.Duration
	Idle          time.Duration
}

// Strictest returns, field by field, the shorter of two timeouts (a zero
// field is unset and loses to any other).
func (t Timeouts) Strictest(o Timeouts) Timeouts {
	pick := func(a, b time.Duration) time.Duration {
		if a == 0 || b != 0 && b < a {
			return b
		}
		return a
	}
	return Timeouts{RequestHeader: pick(t.RequestHeader, o.RequestHeader), RequestBody: pick(t.RequestBody, o.RequestBody), Idle: pick(t.Idle, o.Idle)}
}

// HTTPListener is one HTTP(S) listening address and the virtual hosts it
// serves.
type HTTPListener struct {
	Key           string // "address:port"
	Address       string
	Port          int
	TLS           *Certs // nil for plaintext
	MinTLSVersion uint16
	HTTP2         bool // ALPN h2 on TLS listeners
	H2C           bool // prior-knowledge h2c on plaintext listeners
	ProxyProtocol bool
	// MaxConnections bounds concurrent connections (0: unlimited).
	MaxConnections int
	// Timeouts apply before the Host header tells which load balancer a
	// request is for (reading the head, idle keep-alive connections):
	// when load balancers share the listener, the strictest of theirs,
	// field by field. Once the Host is known, the request body is bounded
	// by its load balancer's VHost.Timeouts.
	Timeouts Timeouts
	// ClientCertificates asks TLS clients for a certificate (not
	// required, not verified by the handshake): some load balancer on the
	// listener authenticates with mTLS, which checks it per route.
	ClientCertificates bool

	exact    map[string]*VHost
	wildcard []wildcardHost // longest suffix first
	any      *VHost
}

type wildcardHost struct {
	suffix string // ".example.com"
	vh     *VHost
}

// VHost is one HTTPLoadBalancer as seen from one listener.
type VHost struct {
	// ID is "namespace/name" of the load balancer.
	ID        string
	Namespace string
	Name      string
	Routes    []*Route
	// Default is used when no route matches (nil: 404).
	Default        *Route
	TrustedProxies []netip.Prefix
	AccessLog      *v1.AccessLogConfig
	// Timeouts are the load balancer's own (spec.timeouts); of them, the
	// request body timeout applies to its requests (the listener's
	// Timeouts bound what happens before the Host is known).
	Timeouts Timeouts
	// Spec is the load balancer's effective spec (for stages that read
	// their own settings: firewall, policies, rate limiter names).
	Spec *v1.HTTPLoadBalancerSpec
	// Security lists the distinct effective security settings of the load
	// balancer's routes; Security[0] is the load balancer's own (its
	// default route's, and that of requests no route matched). Each
	// Route.Security points into it.
	Security []*Security
	// Authn is the load balancer's own authentication (nil: none); routes
	// may replace it (Route.Security.Authn).
	Authn *authn.Config
}

// PathKind says how Route.PathValue is compared.
type PathKind uint8

// Path match kinds.
const (
	PathAny PathKind = iota
	PathExact
	PathPrefix
	PathRegex
)

// Route is one compiled route.
type Route struct {
	// Name identifies the route in metrics and logs: "<lb>#<index>" or
	// "<lb>#default".
	Name      string
	PathKind  PathKind
	PathValue string
	PathRe    *regexp.Regexp
	Methods   []string
	Headers   []ValueMatch
	Query     []ValueMatch

	// Exactly one action.
	Pool     *Pool
	Redirect *v1.HTTPRedirect
	Direct   *v1.HTTPDirectResponse

	PrefixRewrite   string
	HostRewrite     string
	RequestHeaders  *v1.HTTPHeaderModifier
	ResponseHeaders *v1.HTTPHeaderModifier
	Timeout         time.Duration
	Retry           *Retry
	Mirror          *Mirror
	CORS            *v1.CORSPolicy
	// Security is what the security stages apply to the route's requests
	// (one of VHost.Security).
	Security *Security
}

// ValueMatch matches a header or query parameter.
type ValueMatch struct {
	Name    string
	Exact   string
	Prefix  string
	Regex   *regexp.Regexp
	Present bool
	Invert  bool
}

// Retry is a compiled retry policy.
type Retry struct {
	Attempts       int
	ConnectFailure bool
	Reset          bool
	Any5xx         bool
	GatewayError   bool
	Statuses       []int
	PerTryTimeout  time.Duration
	NonIdempotent  bool
	BudgetPercent  int
	MinPerSecond   int
}

// RetryOnStatus reports whether a response status triggers a retry.
func (r *Retry) RetryOnStatus(status int) bool {
	if r.Any5xx && status >= 500 && status <= 599 {
		return true
	}
	if r.GatewayError && (status == 502 || status == 503 || status == 504) {
		return true
	}
	for _, s := range r.Statuses {
		if s == status {
			return true
		}
	}
	return false
}

// Mirror sends a share of requests to a shadow pool.
type Mirror struct {
	Pool    *Pool
	Percent int
}

// Pool is a compiled origin pool.
type Pool struct {
	// ID is "namespace/name", the key of runtime state in lb.Registry.
	ID        string
	Namespace string
	Name      string
	LB        lb.PoolConfig
	// TLS to origins (nil: plaintext).
	TLS           *tls.Config
	ProxyProtocol int
	// HTTP2 says requests go to the origins over HTTP/2 (TLS with ALPN
	// when TLS is set, h2c otherwise) instead of HTTP/1.1.
	HTTP2              bool
	ConnectTimeout     time.Duration
	MaxIdleConns       int
	IdleConnTimeout    time.Duration
	HashHeader         string
	HashCookie         string
	HashSourceIP       bool
	AffinityCookie     string
	AffinityTTL        time.Duration
	MaxConnsPerBreaker int
	// TransportKey changes whenever a setting that shapes origin
	// connections changes (TLS, PROXY protocol, timeouts): clients built
	// for another key are replaced.
	TransportKey string
}

// TCPListener is one TCP load-balancing address.
type TCPListener struct {
	Key            string
	Address        string
	Port           int
	ID             string // "namespace/name" of the TCPLoadBalancer
	ProxyProtocol  bool
	MaxConnections int
	IdleTimeout    time.Duration
	Routes         []TCPRoute
	Default        *Pool
}

// TCPRoute sends TLS connections with a matching SNI to a pool.
type TCPRoute struct {
	Exact    []string
	Suffixes []string // ".example.com" for "*.example.com"
	Pool     *Pool
}

// Route returns the pool for a server name ("" when not TLS or no SNI).
func (l *TCPListener) Route(sni string) *Pool {
	if sni != "" {
		sni = lowerASCII(sni)
		for _, r := range l.Routes {
			for _, e := range r.Exact {
				if e == sni {
					return r.Pool
				}
			}
			for _, s := range r.Suffixes {
				if len(sni) > len(s) && sni[len(sni)-len(s):] == s {
					return r.Pool
				}
			}
		}
	}
	return l.Default
}

// NeedsSNI reports whether connections must be peeked for a TLS SNI.
func (l *TCPListener) NeedsSNI() bool { return len(l.Routes) > 0 }

func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if c := b[j]; c >= 'A' && c <= 'Z' {
					b[j] = c + 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}
