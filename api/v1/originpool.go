package v1

import (
	"fmt"
	"net"
	"strconv"
	"time"
)

// OriginPool is a set of origin endpoints with a load-balancing algorithm,
// health checks, outlier detection and circuit breakers.
type OriginPool struct {
	Envelope
	Spec   OriginPoolSpec `json:"spec"`
	Status Status         `json:"status,omitempty"`
}

// Load-balancing algorithms.
const (
	LBRoundRobin   = "roundRobin"
	LBLeastRequest = "leastRequest"
	LBRandom       = "random"
	LBRingHash     = "ringHash"
	LBMaglev       = "maglev"
)

// LoadBalancingAlgorithms lists the supported values of spec.loadBalancing.
var LoadBalancingAlgorithms = []string{LBRoundRobin, LBLeastRequest, LBRandom, LBRingHash, LBMaglev}

// OriginPoolSpec is the desired state of an OriginPool.
type OriginPoolSpec struct {
	Endpoints []OriginEndpoint `json:"endpoints"`
	// LoadBalancing is roundRobin (default), leastRequest, random, ringHash
	// or maglev.
	LoadBalancing string `json:"loadBalancing,omitempty"`
	// HashPolicy says what ringHash and maglev hash on (default: source IP).
	HashPolicy *HashPolicy `json:"hashPolicy,omitempty"`
	// SessionAffinity pins a client to an endpoint with a cookie.
	SessionAffinity *SessionAffinity `json:"sessionAffinity,omitempty"`
	// HealthCheck is an inline active health check; HealthCheckRef names a
	// HealthCheck object in the same namespace. At most one is set.
	HealthCheck      *HealthCheckSpec  `json:"healthCheck,omitempty"`
	HealthCheckRef   string            `json:"healthCheckRef,omitempty"`
	OutlierDetection *OutlierDetection `json:"outlierDetection,omitempty"`
	CircuitBreaker   *CircuitBreaker   `json:"circuitBreaker,omitempty"`
	// TLS, when set, makes connections to the origins use TLS.
	TLS *OriginTLS `json:"tls,omitempty"`
	// ProxyProtocol, when 1 or 2, sends a PROXY protocol header of that
	// version on every new origin connection.
	ProxyProtocol int `json:"proxyProtocol,omitempty"`
	// Protocol is the HTTP version spoken to the origins: http1 (default,
	// keep-alive connections), http2 (HTTP/2 over TLS negotiated with
	// ALPN; needs tls) or h2c (HTTP/2 over plaintext with prior
	// knowledge; no tls). With http2 and h2c, requests to an endpoint share
	// a few multiplexed connections. gRPC requests always use HTTP/2.
	Protocol string `json:"protocol,omitempty" enum:"http1,http2,h2c"`
	// ConnectTimeout bounds dialing an endpoint (default 5s).
	ConnectTimeout Duration `json:"connectTimeout,omitempty"`
	// MaxIdleConnsPerEndpoint is the number of idle keep-alive connections
	// kept per endpoint (default 64).
	MaxIdleConnsPerEndpoint int `json:"maxIdleConnsPerEndpoint,omitempty"`
	// IdleConnTimeout closes idle origin connections after this long
	// (default 90s).
	IdleConnTimeout Duration `json:"idleConnTimeout,omitempty"`
	// ResolveInterval is how often host names of endpoints are re-resolved
	// (default 30s).
	ResolveInterval Duration `json:"resolveInterval,omitempty"`
}

// Origin protocols (OriginPoolSpec.Protocol).
const (
	OriginHTTP1 = "http1"
	OriginHTTP2 = "http2"
	OriginH2C   = "h2c"
)

// OriginEndpoint is one origin server.
type OriginEndpoint struct {
	// Address is host:port; host names are resolved and re-resolved.
	Address string `json:"address"`
	// Weight is the relative share of traffic (default 1).
	Weight int `json:"weight,omitempty"`
}

// HashPolicy selects the request attribute hashed by ringHash and maglev.
// Exactly one is set.
type HashPolicy struct {
	Header   string `json:"header,omitempty"`
	Cookie   string `json:"cookie,omitempty"`
	SourceIP bool   `json:"sourceIP,omitempty"`
}

// SessionAffinity pins clients to an endpoint with a cookie set by the proxy.
type SessionAffinity struct {
	// Cookie is the cookie name (default "meridian-affinity").
	Cookie string `json:"cookie,omitempty"`
	// TTL is the cookie lifetime; 0 means a session cookie.
	TTL Duration `json:"ttl,omitempty"`
}

// OutlierDetection ejects endpoints that fail passively observed requests.
type OutlierDetection struct {
	// Consecutive5xx ejects after that many 5xx answers in a row (default 5).
	Consecutive5xx int `json:"consecutive5xx,omitempty"`
	// ConsecutiveConnectFailures ejects after that many failed connects in
	// a row (default 5).
	ConsecutiveConnectFailures int `json:"consecutiveConnectFailures,omitempty"`
	// BaseEjectionTime is the first ejection's length; it grows with each
	// repeated ejection (default 30s).
	BaseEjectionTime Duration `json:"baseEjectionTime,omitempty"`
	// MaxEjectionPercent bounds the share of endpoints ejected at once
	// (default 10, at least one endpoint may always be ejected).
	MaxEjectionPercent int `json:"maxEjectionPercent,omitempty"`
}

// CircuitBreaker bounds the load sent to a pool. Zero means unlimited.
type CircuitBreaker struct {
	MaxConnections     int `json:"maxConnections,omitempty"`
	MaxPendingRequests int `json:"maxPendingRequests,omitempty"`
	MaxRequests        int `json:"maxRequests,omitempty"`
}

// OriginTLS configures TLS from the proxy to origins.
type OriginTLS struct {
	// SNI is the server name sent and verified (default: the endpoint host).
	SNI string `json:"sni,omitempty"`
	// CARef names a Certificate (without key) whose PEM is the CA bundle
	// used to verify origins; default is the system roots.
	CARef string `json:"caRef,omitempty"`
	// ClientCertRef names a Certificate (with key) presented to origins.
	ClientCertRef string `json:"clientCertRef,omitempty"`
	// InsecureSkipVerify disables origin certificate verification.
	InsecureSkipVerify bool `json:"insecureSkipVerify,omitempty"`
}

// Default fills in defaults.
func (p *OriginPool) Default() {
	s := &p.Spec
	if s.LoadBalancing == "" {
		s.LoadBalancing = LBRoundRobin
	}
	for i := range s.Endpoints {
		if s.Endpoints[i].Weight == 0 {
			s.Endpoints[i].Weight = 1
		}
	}
	if (s.LoadBalancing == LBRingHash || s.LoadBalancing == LBMaglev) && s.HashPolicy == nil {
		s.HashPolicy = &HashPolicy{SourceIP: true}
	}
	if s.SessionAffinity != nil && s.SessionAffinity.Cookie == "" {
		s.SessionAffinity.Cookie = "meridian-affinity"
	}
	if s.HealthCheck != nil {
		s.HealthCheck.Default()
	}
	if o := s.OutlierDetection; o != nil {
		if o.Consecutive5xx == 0 {
			o.Consecutive5xx = 5
		}
		if o.ConsecutiveConnectFailures == 0 {
			o.ConsecutiveConnectFailures = 5
		}
		if o.BaseEjectionTime.Duration == 0 {
			o.BaseEjectionTime.Duration = 30 * time.Second
		}
		if o.MaxEjectionPercent == 0 {
			o.MaxEjectionPercent = 10
		}
	}
	if s.ConnectTimeout.Duration == 0 {
		s.ConnectTimeout.Duration = 5 * time.Second
	}
	if s.MaxIdleConnsPerEndpoint == 0 {
		s.MaxIdleConnsPerEndpoint = 64
	}
	if s.IdleConnTimeout.Duration == 0 {
		s.IdleConnTimeout.Duration = 90 * time.Second
	}
	if s.ResolveInterval.Duration == 0 {
		s.ResolveInterval.Duration = 30 * time.Second
	}
}

// Validate checks the object.
func (p *OriginPool) Validate() FieldErrors {
	s := &p.Spec
	var errs FieldErrors
	if len(s.Endpoints) == 0 {
		errs = append(errs, Required("spec.endpoints", "at least one endpoint is required"))
	}
	seen := map[string]int{}
	for i, e := range s.Endpoints {
		f := fmt.Sprintf("spec.endpoints[%d]", i)
		if e.Address == "" {
			errs = append(errs, Required(f+".address", ""))
		} else if err := dpValidHostPort(e.Address); err != "" {
			errs = append(errs, Invalid(f+".address", e.Address, err))
		} else if j, dup := seen[e.Address]; dup {
			errs = append(errs, FieldError{Field: f + ".address", Reason: ReasonDuplicate,
				Message: fmt.Sprintf("duplicate of spec.endpoints[%d].address", j)})
		} else {
			seen[e.Address] = i
		}
		if e.Weight < 0 || e.Weight > 1000 {
			errs = append(errs, Invalid(f+".weight", e.Weight, "must be between 1 and 1000"))
		}
	}
	if s.LoadBalancing != "" && !dpIn(s.LoadBalancing, LoadBalancingAlgorithms) {
		errs = append(errs, NotSupported("spec.loadBalancing", s.LoadBalancing, LoadBalancingAlgorithms))
	}
	if h := s.HashPolicy; h != nil {
		n := 0
		if h.Header != "" {
			n++
			if !dpIsToken(h.Header) {
				errs = append(errs, Invalid("spec.hashPolicy.header", h.Header, "must be a header name"))
			}
		}
		if h.Cookie != "" {
			n++
			if !dpIsToken(h.Cookie) {
				errs = append(errs, Invalid("spec.hashPolicy.cookie", h.Cookie, "must be a cookie name"))
			}
		}
		if h.SourceIP {
			n++
		}
		if n != 1 {
			errs = append(errs, Invalid("spec.hashPolicy", "", "exactly one of header, cookie or sourceIP must be set"))
		}
	}
	if a := s.SessionAffinity; a != nil && a.Cookie != "" && !dpIsToken(a.Cookie) {
		errs = append(errs, Invalid("spec.sessionAffinity.cookie", a.Cookie, "must be a cookie name"))
	}
	if s.HealthCheck != nil && s.HealthCheckRef != "" {
		errs = append(errs, FieldError{Field: "spec.healthCheckRef", Reason: ReasonForbidden, Message: "only one of healthCheck and healthCheckRef may be set"})
	}
	if s.HealthCheck != nil {
		errs = append(errs, s.HealthCheck.validate("spec.healthCheck")...)
	}
	if s.HealthCheckRef != "" && !IsDNS1123Label(s.HealthCheckRef) {
		errs = append(errs, Invalid("spec.healthCheckRef", s.HealthCheckRef, "must be a DNS-1123 label"))
	}
	if o := s.OutlierDetection; o != nil {
		if o.Consecutive5xx < 0 {
			errs = append(errs, Invalid("spec.outlierDetection.consecutive5xx", o.Consecutive5xx, "must not be negative"))
		}
		if o.ConsecutiveConnectFailures < 0 {
			errs = append(errs, Invalid("spec.outlierDetection.consecutiveConnectFailures", o.ConsecutiveConnectFailures, "must not be negative"))
		}
		if o.MaxEjectionPercent < 0 || o.MaxEjectionPercent > 100 {
			errs = append(errs, Invalid("spec.outlierDetection.maxEjectionPercent", o.MaxEjectionPercent, "must be between 0 and 100"))
		}
	}
	if c := s.CircuitBreaker; c != nil {
		if c.MaxConnections < 0 {
			errs = append(errs, Invalid("spec.circuitBreaker.maxConnections", c.MaxConnections, "must not be negative"))
		}
		if c.MaxPendingRequests < 0 {
			errs = append(errs, Invalid("spec.circuitBreaker.maxPendingRequests", c.MaxPendingRequests, "must not be negative"))
		}
		if c.MaxRequests < 0 {
			errs = append(errs, Invalid("spec.circuitBreaker.maxRequests", c.MaxRequests, "must not be negative"))
		}
	}
	if t := s.TLS; t != nil {
		if t.CARef != "" && !IsDNS1123Label(t.CARef) {
			errs = append(errs, Invalid("spec.tls.caRef", t.CARef, "must be a DNS-1123 label"))
		}
		if t.ClientCertRef != "" && !IsDNS1123Label(t.ClientCertRef) {
			errs = append(errs, Invalid("spec.tls.clientCertRef", t.ClientCertRef, "must be a DNS-1123 label"))
		}
	}
	if s.ProxyProtocol != 0 && s.ProxyProtocol != 1 && s.ProxyProtocol != 2 {
		errs = append(errs, NotSupported("spec.proxyProtocol", s.ProxyProtocol, []string{"1", "2"}))
	}
	switch s.Protocol {
	case "", OriginHTTP1:
	case OriginHTTP2, OriginH2C:
		switch {
		case s.Protocol == OriginHTTP2 && s.TLS == nil:
			errs = append(errs, Invalid("spec.protocol", s.Protocol, "http2 needs spec.tls (HTTP/2 over plaintext is h2c)"))
		case s.Protocol == OriginH2C && s.TLS != nil:
			errs = append(errs, Invalid("spec.protocol", s.Protocol, "h2c is plaintext: use http2 with spec.tls"))
		}
		if s.ProxyProtocol != 0 {
			errs = append(errs, Invalid("spec.proxyProtocol", s.ProxyProtocol, "cannot be used with protocol "+s.Protocol+": its connections are shared between clients"))
		}
	default:
		errs = append(errs, NotSupported("spec.protocol", s.Protocol, []string{OriginHTTP1, OriginHTTP2, OriginH2C}))
	}
	if s.MaxIdleConnsPerEndpoint < 0 {
		errs = append(errs, Invalid("spec.maxIdleConnsPerEndpoint", s.MaxIdleConnsPerEndpoint, "must not be negative"))
	}
	return errs
}

// References lists the objects this pool refers to.
func (p *OriginPool) References() []Reference {
	ns := p.Metadata.Namespace
	var refs []Reference
	if p.Spec.HealthCheckRef != "" {
		refs = append(refs, Reference{Field: "spec.healthCheckRef", Kind: "HealthCheck", Namespace: ns, Name: p.Spec.HealthCheckRef})
	}
	if t := p.Spec.TLS; t != nil {
		if t.CARef != "" {
			refs = append(refs, Reference{Field: "spec.tls.caRef", Kind: "Certificate", Namespace: ns, Name: t.CARef})
		}
		if t.ClientCertRef != "" {
			refs = append(refs, Reference{Field: "spec.tls.clientCertRef", Kind: "Certificate", Namespace: ns, Name: t.ClientCertRef})
		}
	}
	return refs
}

// dpValidHostPort checks a host:port address; it returns "" when valid.
func dpValidHostPort(a string) string {
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return "must be host:port"
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return "port must be between 1 and 65535"
	}
	if host == "" {
		return "host must not be empty"
	}
	if net.ParseIP(host) == nil && !dpIsDNSName(host) {
		return "host must be an IP address or a DNS name"
	}
	return ""
}

// dpIsDNSName reports whether s is a DNS name (labels of letters, digits,
// hyphens and underscores, separated by dots).
func dpIsDNSName(s string) bool {
	if len(s) == 0 || len(s) > 253 {
		return false
	}
	label := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '.':
			if label == 0 {
				return false
			}
			label = 0
			continue
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
		default:
			return false
		}
		label++
		if label > 63 {
			return false
		}
	}
	return true
}

func dpIn(s string, set []string) bool {
	for _, v := range set {
		if v == s {
			return true
		}
	}
	return false
}
