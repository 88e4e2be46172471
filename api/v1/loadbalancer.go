package v1

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// HTTPLoadBalancer publishes HTTP(S) applications: listeners, domains and
// routes to origin pools, with the security stages bound to it.
type HTTPLoadBalancer struct {
	Envelope
	Spec   HTTPLoadBalancerSpec `json:"spec"`
	Status Status               `json:"status,omitempty"`
}

// HTTPLoadBalancerSpec is the desired state of an HTTPLoadBalancer.
type HTTPLoadBalancerSpec struct {
	// Domains are matched against the Host header (or :authority): exact
	// names, wildcards ("*.example.com") and "*" (any host).
	Domains   []string       `json:"domains"`
	Listeners []HTTPListener `json:"listeners"`
	// Routes are tried in order; the first match wins. A request no route
	// matches goes to DefaultPool (or gets 404 without one).
	Routes      []HTTPRoute `json:"routes,omitempty"`
	DefaultPool string      `json:"defaultPool,omitempty"`
	// AppFirewall names the AppFirewall inspecting requests (a route may
	// name another). A namespace's SecurityBinding firewall runs as well.
	AppFirewall string `json:"appFirewall,omitempty"`
	// ServicePolicies are evaluated in order (a route may give its own
	// list, which replaces this one), after those of the namespace's
	// SecurityBindings.
	ServicePolicies []string `json:"servicePolicies,omitempty"`
	// RateLimiter names the RateLimiter applied to requests (a route may
	// name another).
	RateLimiter string `json:"rateLimiter,omitempty"`
	// Authentication requires requests to authenticate (JWT, API key or
	// client certificate); a route may replace or disable it.
	Authentication *HTTPAuthentication `json:"authentication,omitempty"`
	APIDiscovery   *LBAPIDiscovery     `json:"apiDiscovery,omitempty"`
	Sites          *LBPlacement        `json:"sites,omitempty"`
	// TrustedProxies are the CIDRs whose X-Forwarded-For is believed when
	// finding the real client address.
	TrustedProxies []string `json:"trustedProxies,omitempty"`
	// Timeouts bound the client side. On a listener shared with other
	// load balancers (same address and port), requestHeader and idle run
	// before the Host header names the load balancer, so the shortest of
	// the load balancers' values applies; requestBody is this load
	// balancer's own.
	Timeouts *HTTPTimeouts `json:"timeouts,omitempty"`
	// MaxConnections bounds concurrent client connections per listener
	// (default 10000).
	MaxConnections int              `json:"maxConnections,omitempty"`
	AccessLog      *AccessLogConfig `json:"accessLog,omitempty"`
}

// HTTPListener is a port the load balancer accepts connections on.
type HTTPListener struct {
	Port int `json:"port"`
	// Address is the IP to bind (default: all addresses).
	Address string       `json:"address,omitempty"`
	TLS     *ListenerTLS `json:"tls,omitempty"`
	// HTTP2 enables HTTP/2 through ALPN on TLS listeners (default true).
	HTTP2 *bool `json:"http2,omitempty"`
	// H2C enables cleartext HTTP/2 (prior knowledge) on plain listeners.
	H2C bool `json:"h2c,omitempty"`
	// ProxyProtocol expects a PROXY protocol v1 or v2 header on every
	// accepted connection.
	ProxyProtocol bool `json:"proxyProtocol,omitempty"`
}

// ListenerTLS terminates TLS on a listener.
type ListenerTLS struct {
	// CertificateRef is the default certificate (served when SNI matches
	// no other certificate or is absent).
	CertificateRef string `json:"certificateRef,omitempty"`
	// CertificateRefs are further certificates, chosen by SNI against their
	// names (wildcards included).
	CertificateRefs []string `json:"certificateRefs,omitempty"`
	// MinVersion is "1.2" (default) or "1.3".
	MinVersion string `json:"minVersion,omitempty"`
}

// HTTPRoute matches requests and says what to do with them. At most one of
// Pool, Redirect and DirectResponse is set; with none, DefaultPool is used.
type HTTPRoute struct {
	Match          HTTPRouteMatch      `json:"match,omitempty"`
	Pool           string              `json:"pool,omitempty"`
	Redirect       *HTTPRedirect       `json:"redirect,omitempty"`
	DirectResponse *HTTPDirectResponse `json:"directResponse,omitempty"`
	// PrefixRewrite replaces the matched pathPrefix (or the whole path for
	// exact/regex matches) before forwarding.
	PrefixRewrite   string              `json:"prefixRewrite,omitempty"`
	HostRewrite     string              `json:"hostRewrite,omitempty"`
	RequestHeaders  *HTTPHeaderModifier `json:"requestHeaders,omitempty"`
	ResponseHeaders *HTTPHeaderModifier `json:"responseHeaders,omitempty"`
	// Timeout bounds the whole exchange with the origin, retries included
	// (default: none, for streaming).
	Timeout Duration         `json:"timeout,omitempty"`
	Retries *HTTPRetryPolicy `json:"retries,omitempty"`
	Mirror  *HTTPMirror      `json:"mirror,omitempty"`
	CORS    *CORSPolicy      `json:"cors,omitempty"`
	// AppFirewall replaces the load balancer's spec.appFirewall for this
	// route.
	AppFirewall string `json:"appFirewall,omitempty"`
	// ServicePolicies replace (not extend) the load balancer's list for
	// this route; the namespace's SecurityBinding policies still run first.
	ServicePolicies []string `json:"servicePolicies,omitempty"`
	// RateLimiter replaces the load balancer's spec.rateLimiter for this
	// route.
	RateLimiter string `json:"rateLimiter,omitempty"`
	// Authentication replaces the load balancer's authentication for this
	// route; {disabled: true} exempts the route.
	Authentication *HTTPAuthentication `json:"authentication,omitempty"`
}

// HTTPRouteMatch is a conjunction of conditions; empty matches everything.
// At most one of Path, PathPrefix and PathRegex is set.
type HTTPRouteMatch struct {
	Path        string                `json:"path,omitempty"`
	PathPrefix  string                `json:"pathPrefix,omitempty"`
	PathRegex   string                `json:"pathRegex,omitempty"`
	Methods     []string              `json:"methods,omitempty"`
	Headers     []HTTPHeaderMatch     `json:"headers,omitempty"`
	QueryParams []HTTPQueryParamMatch `json:"queryParams,omitempty"`
}

// HTTPHeaderMatch matches one header. Exactly one of Exact, Prefix, Regex
// and Present is set. Invert negates the result.
type HTTPHeaderMatch struct {
	Name    string `json:"name"`
	Exact   string `json:"exact,omitempty"`
	Prefix  string `json:"prefix,omitempty"`
	Regex   string `json:"regex,omitempty"`
	Present bool   `json:"present,omitempty"`
	Invert  bool   `json:"invert,omitempty"`
}

// HTTPQueryParamMatch matches one query parameter, like HTTPHeaderMatch.
type HTTPQueryParamMatch struct {
	Name    string `json:"name"`
	Exact   string `json:"exact,omitempty"`
	Prefix  string `json:"prefix,omitempty"`
	Regex   string `json:"regex,omitempty"`
	Present bool   `json:"present,omitempty"`
	Invert  bool   `json:"invert,omitempty"`
}

// HTTPRedirect answers with a redirect built from the request, with the set
// parts replaced.
type HTTPRedirect struct {
	Scheme string `json:"scheme,omitempty"`
	Host   string `json:"host,omitempty"`
	Port   int    `json:"port,omitempty"`
	Path   string `json:"path,omitempty"`
	// Code is 301, 302 (default), 303, 307 or 308.
	Code int `json:"code,omitempty"`
	// StripQuery drops the query string.
	StripQuery bool `json:"stripQuery,omitempty"`
}

// HTTPDirectResponse answers without an origin.
type HTTPDirectResponse struct {
	Status      int    `json:"status"`
	Body        string `json:"body,omitempty"`
	ContentType string `json:"contentType,omitempty"`
}

// HTTPHeaderModifier edits headers: remove, then set (replace), then add.
type HTTPHeaderModifier struct {
	Add    []HTTPHeaderValue `json:"add,omitempty"`
	Set    []HTTPHeaderValue `json:"set,omitempty"`
	Remove []string          `json:"remove,omitempty"`
}

// HTTPHeaderValue is one header name and value.
type HTTPHeaderValue struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Retry conditions (plus any status code 500-599 written as a number).
const (
	RetryOnConnectFailure = "connect-failure"
	RetryOnReset          = "reset"
	RetryOn5xx            = "5xx"
	RetryOnGatewayError   = "gateway-error" // 502, 503, 504
)

// HTTPRetryPolicy retries failed attempts on another endpoint.
type HTTPRetryPolicy struct {
	// Attempts is the number of retries after the first try (default 1).
	Attempts int `json:"attempts,omitempty"`
	// On lists when to retry: connect-failure, reset, 5xx, gateway-error or
	// a status code (default [connect-failure]).
	On []RetryCondition `json:"on,omitempty"`
	// PerTryTimeout bounds each attempt.
	PerTryTimeout Duration `json:"perTryTimeout,omitempty"`
	// RetryNonIdempotent allows retrying POST, PATCH and other
	// non-idempotent methods.
	RetryNonIdempotent bool `json:"retryNonIdempotent,omitempty"`
	// Budget bounds retries to a share of requests.
	Budget *RetryBudget `json:"budget,omitempty"`
}

// UnmarshalJSON decodes strictly and also accepts the key "true": YAML 1.1
// parsers read an unquoted `on:` key as the boolean true.
func (p *HTTPRetryPolicy) UnmarshalJSON(b []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	if v, ok := raw["true"]; ok {
		if _, dup := raw["on"]; dup {
			return fmt.Errorf("retries: both \"on\" and \"true\" given")
		}
		delete(raw, "true")
		raw["on"] = v
	}
	nb, err := json.Marshal(raw)
	if err != nil {
		return err
	}
	type plain HTTPRetryPolicy
	dec := json.NewDecoder(bytes.NewReader(nb))
	dec.DisallowUnknownFields()
	return dec.Decode((*plain)(p))
}

// RetryBudget limits retries to Percent of active requests, but always
// allows MinRetriesPerSecond.
type RetryBudget struct {
	Percent             int `json:"percent,omitempty"`
	MinRetriesPerSecond int `json:"minRetriesPerSecond,omitempty"`
}

// RetryCondition is a retry trigger; in YAML/JSON it may be a string
// ("connect-failure") or a status code (503).
type RetryCondition string

// UnmarshalJSON accepts a string or a number.
func (r *RetryCondition) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*r = RetryCondition(s)
		return nil
	}
	var n int
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("retry condition must be a string or a status code, got %s", b)
	}
	*r = RetryCondition(strconv.Itoa(n))
	return nil
}

// HTTPMirror copies a share of requests to a shadow pool; its answers are
// discarded.
type HTTPMirror struct {
	Pool string `json:"pool"`
	// Percent of requests mirrored (default 100).
	Percent int `json:"percent,omitempty"`
}

// CORSPolicy answers preflight requests and adds CORS headers.
type CORSPolicy struct {
	AllowOrigins     []string `json:"allowOrigins"`
	AllowMethods     []string `json:"allowMethods,omitempty"`
	AllowHeaders     []string `json:"allowHeaders,omitempty"`
	ExposeHeaders    []string `json:"exposeHeaders,omitempty"`
	MaxAge           Duration `json:"maxAge,omitempty"`
	AllowCredentials bool     `json:"allowCredentials,omitempty"`
}

// HTTPTimeouts are client-side timeouts (see HTTPLoadBalancerSpec.Timeouts
// for listeners shared by several load balancers).
type HTTPTimeouts struct {
	// RequestHeader bounds reading a request's headers (default 10s).
	RequestHeader Duration `json:"requestHeader,omitempty"`
	// RequestBody bounds each wait for more of a request's body (default
	// 60s): a body that stops arriving for this long gets 408, a large
	// body that keeps arriving is not cut.
	RequestBody Duration `json:"requestBody,omitempty"`
	// Idle closes keep-alive connections idle this long (default 60s).
	Idle Duration `json:"idle,omitempty"`
}

// AccessLogConfig configures the JSON access log.
type AccessLogConfig struct {
	Enabled bool `json:"enabled"`
	// Fields lists the fields written, in this order, among time,
	// loadBalancer, namespace, route, pool, endpoint, client, method,
	// host, path, query, protocol, status, bytesIn, bytesOut, duration,
	// upstreamDuration, requestId, userAgent, referer, tls, retries and
	// grpcStatus (AccessLogFields; default: AccessLogDefaultFields); a
	// field without a value is written as null. grpcStatus is the gRPC
	// status of a gRPC call's answer, as a number: the grpc-status the
	// client got in the trailers (or in the head of a Trailers-Only
	// answer), as response-trailer stages left it, including the status
	// the proxy sends itself (14, UNAVAILABLE, when the origin cannot be
	// reached or its stream breaks; 4, DEADLINE_EXCEEDED, past the call's
	// deadline); null for an exchange that is not a gRPC call (every
	// exchange the event loops serve), for a call whose status the client
	// did not get, and for a call reset before its status was sent.
	Fields []string `json:"fields,omitempty"`
}

// AccessLogFields lists the fields an access log line can carry.
var AccessLogFields = []string{"time", "loadBalancer", "namespace", "route", "pool", "endpoint", "client", "method",
	"host", "path", "query", "protocol", "status", "bytesIn", "bytesOut", "duration", "upstreamDuration",
	"requestId", "userAgent", "referer", "tls", "retries", "grpcStatus"}

// AccessLogDefaultFields is what an access log carries by default.
var AccessLogDefaultFields = []string{"time", "loadBalancer", "namespace", "route", "pool", "endpoint", "client",
	"method", "host", "path", "protocol", "status", "bytesIn", "bytesOut", "duration", "requestId"}

// LBAPIDiscovery turns API discovery on for a load balancer.
type LBAPIDiscovery struct {
	Enabled bool `json:"enabled"`
}

// LBPlacement says where a load balancer runs; ignored by a standalone node.
type LBPlacement struct {
	VirtualSite string `json:"virtualSite,omitempty"`
}

// Default fills in defaults.
func (lb *HTTPLoadBalancer) Default() {
	s := &lb.Spec
	for i := range s.Listeners {
		l := &s.Listeners[i]
		if l.TLS != nil {
			if l.TLS.MinVersion == "" {
				l.TLS.MinVersion = "1.2"
			}
			if l.HTTP2 == nil {
				t := true
				l.HTTP2 = &t
			}
		}
	}
	for i := range s.Routes {
		r := &s.Routes[i]
		if rt := r.Retries; rt != nil {
			if rt.Attempts == 0 {
				rt.Attempts = 1
			}
			if len(rt.On) == 0 {
				rt.On = []RetryCondition{RetryOnConnectFailure}
			}
			if rt.Budget == nil {
				rt.Budget = &RetryBudget{}
			}
			if rt.Budget.Percent == 0 {
				rt.Budget.Percent = 20
			}
			if rt.Budget.MinRetriesPerSecond == 0 {
				rt.Budget.MinRetriesPerSecond = 10
			}
		}
		if r.Redirect != nil && r.Redirect.Code == 0 {
			r.Redirect.Code = http.StatusFound
		}
		if r.Mirror != nil && r.Mirror.Percent == 0 {
			r.Mirror.Percent = 100
		}
		if c := r.CORS; c != nil && len(c.AllowMethods) == 0 {
			c.AllowMethods = []string{"GET", "HEAD", "POST"}
		}
	}
	s.Authentication.defaults()
	for i := range s.Routes {
		s.Routes[i].Authentication.defaults()
	}
	if s.Timeouts == nil {
		s.Timeouts = &HTTPTimeouts{}
	}
	if s.Timeouts.RequestHeader.Duration == 0 {
		s.Timeouts.RequestHeader.Duration = 10 * time.Second
	}
	if s.Timeouts.RequestBody.Duration == 0 {
		s.Timeouts.RequestBody.Duration = 60 * time.Second
	}
	if s.Timeouts.Idle.Duration == 0 {
		s.Timeouts.Idle.Duration = 60 * time.Second
	}
	if s.MaxConnections == 0 {
		s.MaxConnections = 10000
	}
	if s.AccessLog != nil && s.AccessLog.Enabled && len(s.AccessLog.Fields) == 0 {
		s.AccessLog.Fields = append([]string(nil), AccessLogDefaultFields...)
	}
}

// Validate checks the object.
func (lb *HTTPLoadBalancer) Validate() FieldErrors {
	s := &lb.Spec
	var errs FieldErrors
	if len(s.Domains) == 0 {
		errs = append(errs, Required("spec.domains", "at least one domain is required (\"*\" matches any host)"))
	}
	seenDom := map[string]int{}
	for i, d := range s.Domains {
		f := fmt.Sprintf("spec.domains[%d]", i)
		if msg := dpCheckDomain(d); msg != "" {
			errs = append(errs, Invalid(f, d, msg))
			continue
		}
		if j, dup := seenDom[strings.ToLower(d)]; dup {
			errs = append(errs, FieldError{Field: f, Reason: ReasonDuplicate, Message: fmt.Sprintf("duplicate of spec.domains[%d]", j)})
		}
		seenDom[strings.ToLower(d)] = i
	}
	if len(s.Listeners) == 0 {
		errs = append(errs, Required("spec.listeners", "at least one listener is required"))
	}
	errs = append(errs, dpCheckListeners(len(s.Listeners), func(i int) (int, string) { return s.Listeners[i].Port, s.Listeners[i].Address })...)
	for i, l := range s.Listeners {
		f := fmt.Sprintf("spec.listeners[%d]", i)
		if t := l.TLS; t != nil {
			if t.CertificateRef == "" && len(t.CertificateRefs) == 0 {
				errs = append(errs, Required(f+".tls.certificateRef", "a TLS listener needs a certificate"))
			}
			if t.CertificateRef != "" && !IsDNS1123Label(t.CertificateRef) {
				errs = append(errs, Invalid(f+".tls.certificateRef", t.CertificateRef, "must be a DNS-1123 label"))
			}
			for j, c := range t.CertificateRefs {
				if !IsDNS1123Label(c) {
					errs = append(errs, Invalid(fmt.Sprintf("%s.tls.certificateRefs[%d]", f, j), c, "must be a DNS-1123 label"))
				}
			}
			if t.MinVersion != "" && t.MinVersion != "1.2" && t.MinVersion != "1.3" {
				errs = append(errs, NotSupported(f+".tls.minVersion", t.MinVersion, []string{"1.2", "1.3"}))
			}
			if l.H2C {
				errs = append(errs, FieldError{Field: f + ".h2c", Reason: ReasonForbidden, Message: "h2c is for plaintext listeners; TLS listeners use http2"})
			}
		}
	}
	placed := s.Sites != nil && s.Sites.VirtualSite != ""
	for i := range s.Routes {
		errs = append(errs, s.Routes[i].validate(fmt.Sprintf("spec.routes[%d]", i), s.DefaultPool != "", placed)...)
	}
	errs = append(errs, s.Authentication.validate("spec.authentication", false, placed)...)
	if s.DefaultPool != "" && !IsDNS1123Label(s.DefaultPool) {
		errs = append(errs, Invalid("spec.defaultPool", s.DefaultPool, "must be a DNS-1123 label"))
	}
	if s.AppFirewall != "" && !IsDNS1123Label(s.AppFirewall) {
		errs = append(errs, Invalid("spec.appFirewall", s.AppFirewall, "must be a DNS-1123 label"))
	}
	for i, p := range s.ServicePolicies {
		if !IsDNS1123Label(p) {
			errs = append(errs, Invalid(fmt.Sprintf("spec.servicePolicies[%d]", i), p, "must be a DNS-1123 label"))
		}
	}
	if s.RateLimiter != "" && !IsDNS1123Label(s.RateLimiter) {
		errs = append(errs, Invalid("spec.rateLimiter", s.RateLimiter, "must be a DNS-1123 label"))
	}
	if s.Sites != nil && s.Sites.VirtualSite != "" && !IsDNS1123Label(s.Sites.VirtualSite) {
		errs = append(errs, Invalid("spec.sites.virtualSite", s.Sites.VirtualSite, "must be a DNS-1123 label"))
	}
	for i, c := range s.TrustedProxies {
		if _, _, err := net.ParseCIDR(c); err != nil && net.ParseIP(c) == nil {
			errs = append(errs, Invalid(fmt.Sprintf("spec.trustedProxies[%d]", i), c, "must be a CIDR or an IP address"))
		}
	}
	if s.MaxConnections < 0 {
		errs = append(errs, Invalid("spec.maxConnections", s.MaxConnections, "must not be negative"))
	}
	if a := s.AccessLog; a != nil {
		for i, f := range a.Fields {
			if !dpIn(f, AccessLogFields) {
				errs = append(errs, NotSupported(fmt.Sprintf("spec.accessLog.fields[%d]", i), f, AccessLogFields))
			}
		}
	}
	return errs
}

func (r *HTTPRoute) validate(f string, haveDefault, placed bool) FieldErrors {
	var errs FieldErrors
	if r.AppFirewall != "" && !IsDNS1123Label(r.AppFirewall) {
		errs = append(errs, Invalid(f+".appFirewall", r.AppFirewall, "must be a DNS-1123 label"))
	}
	for i, p := range r.ServicePolicies {
		if !IsDNS1123Label(p) {
			errs = append(errs, Invalid(fmt.Sprintf("%s.servicePolicies[%d]", f, i), p, "must be a DNS-1123 label"))
		}
	}
	if r.RateLimiter != "" && !IsDNS1123Label(r.RateLimiter) {
		errs = append(errs, Invalid(f+".rateLimiter", r.RateLimiter, "must be a DNS-1123 label"))
	}
	errs = append(errs, r.Authentication.validate(f+".authentication", true, placed)...)
	m := &r.Match
	n := 0
	if m.Path != "" {
		n++
		if !strings.HasPrefix(m.Path, "/") {
			errs = append(errs, Invalid(f+".match.path", m.Path, "must start with /"))
		}
	}
	if m.PathPrefix != "" {
		n++
		if !strings.HasPrefix(m.PathPrefix, "/") {
			errs = append(errs, Invalid(f+".match.pathPrefix", m.PathPrefix, "must start with /"))
		}
	}
	if m.PathRegex != "" {
		n++
		if _, err := regexp.Compile(m.PathRegex); err != nil {
			errs = append(errs, Invalid(f+".match.pathRegex", m.PathRegex, err.Error()))
		}
	}
	if n > 1 {
		errs = append(errs, FieldError{Field: f + ".match", Reason: ReasonForbidden, Message: "only one of path, pathPrefix and pathRegex may be set"})
	}
	for i, meth := range m.Methods {
		if !dpIsToken(meth) {
			errs = append(errs, Invalid(fmt.Sprintf("%s.match.methods[%d]", f, i), meth, "must be an HTTP method token"))
		}
	}
	for i, h := range m.Headers {
		errs = append(errs, dpCheckValueMatch(fmt.Sprintf("%s.match.headers[%d]", f, i), h.Name, h.Exact, h.Prefix, h.Regex, h.Present, true)...)
	}
	for i, q := range m.QueryParams {
		errs = append(errs, dpCheckValueMatch(fmt.Sprintf("%s.match.queryParams[%d]", f, i), q.Name, q.Exact, q.Prefix, q.Regex, q.Present, false)...)
	}
	actions := 0
	if r.Pool != "" {
		actions++
		if !IsDNS1123Label(r.Pool) {
			errs = append(errs, Invalid(f+".pool", r.Pool, "must be a DNS-1123 label"))
		}
	}
	if rd := r.Redirect; rd != nil {
		actions++
		switch rd.Code {
		case 0, 301, 302, 303, 307, 308:
		default:
			errs = append(errs, NotSupported(f+".redirect.code", rd.Code, []string{"301", "302", "303", "307", "308"}))
		}
		if rd.Scheme != "" && rd.Scheme != "http" && rd.Scheme != "https" {
			errs = append(errs, NotSupported(f+".redirect.scheme", rd.Scheme, []string{"http", "https"}))
		}
		if rd.Port < 0 || rd.Port > 65535 {
			errs = append(errs, Invalid(f+".redirect.port", rd.Port, "must be between 1 and 65535"))
		}
		if rd.Path != "" && !strings.HasPrefix(rd.Path, "/") {
			errs = append(errs, Invalid(f+".redirect.path", rd.Path, "must start with /"))
		}
		if rd.Host != "" && !dpIsDNSName(rd.Host) {
			errs = append(errs, Invalid(f+".redirect.host", rd.Host, "must be a DNS name"))
		}
	}
	if d := r.DirectResponse; d != nil {
		actions++
		if d.Status < 200 || d.Status > 599 {
			errs = append(errs, Invalid(f+".directResponse.status", d.Status, "must be between 200 and 599"))
		}
		if !dpValidHeaderValue(d.ContentType) {
			errs = append(errs, Invalid(f+".directResponse.contentType", d.ContentType, "must be a valid header value"))
		}
	}
	if actions > 1 {
		errs = append(errs, FieldError{Field: f, Reason: ReasonForbidden, Message: "only one of pool, redirect and directResponse may be set"})
	}
	if actions == 0 && !haveDefault {
		errs = append(errs, Required(f+".pool", "a route needs pool, redirect or directResponse when spec.defaultPool is not set"))
	}
	if r.PrefixRewrite != "" && !strings.HasPrefix(r.PrefixRewrite, "/") {
		errs = append(errs, Invalid(f+".prefixRewrite", r.PrefixRewrite, "must start with /"))
	}
	if r.HostRewrite != "" && !dpValidHeaderValue(r.HostRewrite) {
		errs = append(errs, Invalid(f+".hostRewrite", r.HostRewrite, "must be a valid host"))
	}
	errs = append(errs, r.RequestHeaders.validate(f+".requestHeaders")...)
	errs = append(errs, r.ResponseHeaders.validate(f+".responseHeaders")...)
	if rt := r.Retries; rt != nil {
		if rt.Attempts < 0 || rt.Attempts > 10 {
			errs = append(errs, Invalid(f+".retries.attempts", rt.Attempts, "must be between 0 and 10"))
		}
		for i, on := range rt.On {
			switch on {
			case RetryOnConnectFailure, RetryOnReset, RetryOn5xx, RetryOnGatewayError:
			default:
				if c, err := strconv.Atoi(string(on)); err != nil || c < 400 || c > 599 {
					errs = append(errs, NotSupported(fmt.Sprintf("%s.retries.on[%d]", f, i), on,
						[]string{RetryOnConnectFailure, RetryOnReset, RetryOn5xx, RetryOnGatewayError, "a status code 400-599"}))
				}
			}
		}
		if b := rt.Budget; b != nil {
			if b.Percent < 0 || b.Percent > 100 {
				errs = append(errs, Invalid(f+".retries.budget.percent", b.Percent, "must be between 0 and 100"))
			}
			if b.MinRetriesPerSecond < 0 {
				errs = append(errs, Invalid(f+".retries.budget.minRetriesPerSecond", b.MinRetriesPerSecond, "must not be negative"))
			}
		}
	}
	if mi := r.Mirror; mi != nil {
		if !IsDNS1123Label(mi.Pool) {
			errs = append(errs, Invalid(f+".mirror.pool", mi.Pool, "must be a DNS-1123 label"))
		}
		if mi.Percent < 0 || mi.Percent > 100 {
			errs = append(errs, Invalid(f+".mirror.percent", mi.Percent, "must be between 0 and 100"))
		}
	}
	if c := r.CORS; c != nil {
		if len(c.AllowOrigins) == 0 {
			errs = append(errs, Required(f+".cors.allowOrigins", "at least one origin (or \"*\") is required"))
		}
		if c.AllowCredentials && dpIn("*", c.AllowOrigins) {
			errs = append(errs, FieldError{Field: f + ".cors.allowCredentials", Reason: ReasonForbidden, Message: "credentials cannot be allowed for origin \"*\""})
		}
		for i, m := range c.AllowMethods {
			if !dpIsToken(m) {
				errs = append(errs, Invalid(fmt.Sprintf("%s.cors.allowMethods[%d]", f, i), m, "must be an HTTP method token"))
			}
		}
		for i, h := range c.AllowHeaders {
			if !dpIsToken(h) {
				errs = append(errs, Invalid(fmt.Sprintf("%s.cors.allowHeaders[%d]", f, i), h, "must be a header name"))
			}
		}
		for i, h := range c.ExposeHeaders {
			if !dpIsToken(h) {
				errs = append(errs, Invalid(fmt.Sprintf("%s.cors.exposeHeaders[%d]", f, i), h, "must be a header name"))
			}
		}
	}
	return errs
}

func (h *HTTPHeaderModifier) validate(f string) FieldErrors {
	if h == nil {
		return nil
	}
	var errs FieldErrors
	check := func(list []HTTPHeaderValue, kind string) {
		for i, v := range list {
			p := fmt.Sprintf("%s.%s[%d]", f, kind, i)
			if !dpIsToken(v.Name) {
				errs = append(errs, Invalid(p+".name", v.Name, "must be a header name"))
			} else if dpHopByHop(v.Name) {
				errs = append(errs, FieldError{Field: p + ".name", Reason: ReasonForbidden, Message: "hop-by-hop and framing headers cannot be set"})
			}
			if !dpValidHeaderValue(v.Value) {
				errs = append(errs, Invalid(p+".value", v.Value, "must not contain control characters"))
			}
		}
	}
	check(h.Add, "add")
	check(h.Set, "set")
	for i, n := range h.Remove {
		if !dpIsToken(n) {
			errs = append(errs, Invalid(fmt.Sprintf("%s.remove[%d]", f, i), n, "must be a header name"))
		}
	}
	return errs
}

func dpHopByHop(name string) bool {
	switch strings.ToLower(name) {
	case "connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade", "content-length", "host":
		return true
	}
	return false
}

func dpCheckValueMatch(f, name, exact, prefix, regex string, present, header bool) FieldErrors {
	var errs FieldErrors
	if name == "" {
		errs = append(errs, Required(f+".name", ""))
	} else if header && !dpIsToken(name) {
		errs = append(errs, Invalid(f+".name", name, "must be a header name"))
	}
	n := 0
	if exact != "" {
		n++
	}
	if prefix != "" {
		n++
	}
	if regex != "" {
		n++
		if _, err := regexp.Compile(regex); err != nil {
			errs = append(errs, Invalid(f+".regex", regex, err.Error()))
		}
	}
	if present {
		n++
	}
	if n != 1 {
		errs = append(errs, Invalid(f, name, "exactly one of exact, prefix, regex or present must be set"))
	}
	return errs
}

// dpCheckDomain returns "" when d is a valid domain pattern.
func dpCheckDomain(d string) string {
	if d == "*" {
		return ""
	}
	name := strings.TrimPrefix(d, "*.")
	if strings.Contains(name, "*") {
		return "a wildcard is allowed only as the whole first label (\"*.example.com\") or alone (\"*\")"
	}
	if !dpIsDNSName(name) {
		return "must be a DNS name"
	}
	return ""
}

func dpCheckListeners(n int, get func(int) (int, string)) FieldErrors {
	var errs FieldErrors
	seen := map[string]int{}
	for i := 0; i < n; i++ {
		port, addr := get(i)
		f := fmt.Sprintf("spec.listeners[%d]", i)
		if port < 1 || port > 65535 {
			errs = append(errs, Invalid(f+".port", port, "must be between 1 and 65535"))
		}
		if addr != "" && net.ParseIP(addr) == nil {
			errs = append(errs, Invalid(f+".address", addr, "must be an IP address"))
		}
		key := net.JoinHostPort(addr, strconv.Itoa(port))
		if j, dup := seen[key]; dup {
			errs = append(errs, FieldError{Field: f + ".port", Reason: ReasonDuplicate, Message: fmt.Sprintf("duplicate of spec.listeners[%d]", j)})
		}
		seen[key] = i
	}
	return errs
}

// References lists the objects this load balancer refers to.
func (lb *HTTPLoadBalancer) References() []Reference {
	s := &lb.Spec
	ns := lb.Metadata.Namespace
	var refs []Reference
	add := func(field, kind, name string) {
		if name != "" {
			refs = append(refs, Reference{Field: field, Kind: kind, Namespace: ns, Name: name})
		}
	}
	for i, l := range s.Listeners {
		if l.TLS == nil {
			continue
		}
		add(fmt.Sprintf("spec.listeners[%d].tls.certificateRef", i), "Certificate", l.TLS.CertificateRef)
		for j, c := range l.TLS.CertificateRefs {
			add(fmt.Sprintf("spec.listeners[%d].tls.certificateRefs[%d]", i, j), "Certificate", c)
		}
	}
	authRefs := func(f string, a *HTTPAuthentication) {
		if a != nil && a.MTLS != nil {
			add(f+".mtls.caRef", "Certificate", a.MTLS.CARef)
		}
	}
	for i, r := range s.Routes {
		f := fmt.Sprintf("spec.routes[%d]", i)
		add(f+".pool", "OriginPool", r.Pool)
		if r.Mirror != nil {
			add(f+".mirror.pool", "OriginPool", r.Mirror.Pool)
		}
		add(f+".appFirewall", "AppFirewall", r.AppFirewall)
		for j, p := range r.ServicePolicies {
			add(fmt.Sprintf("%s.servicePolicies[%d]", f, j), "ServicePolicy", p)
		}
		add(f+".rateLimiter", "RateLimiter", r.RateLimiter)
		authRefs(f+".authentication", r.Authentication)
	}
	add("spec.defaultPool", "OriginPool", s.DefaultPool)
	add("spec.appFirewall", "AppFirewall", s.AppFirewall)
	for i, p := range s.ServicePolicies {
		add(fmt.Sprintf("spec.servicePolicies[%d]", i), "ServicePolicy", p)
	}
	add("spec.rateLimiter", "RateLimiter", s.RateLimiter)
	authRefs("spec.authentication", s.Authentication)
	if s.Sites != nil && s.Sites.VirtualSite != "" {
		refs = append(refs, Reference{Field: "spec.sites.virtualSite", Kind: "VirtualSite", Name: s.Sites.VirtualSite})
	}
	return refs
}

// SecretFields returns the API keys of the load balancer's and its routes'
// authentication.
func (lb *HTTPLoadBalancer) SecretFields() []SecretField {
	out := lb.Spec.Authentication.secretFields("spec.authentication")
	for i := range lb.Spec.Routes {
		out = append(out, lb.Spec.Routes[i].Authentication.secretFields(fmt.Sprintf("spec.routes[%d].authentication", i))...)
	}
	return out
}

// TCPLoadBalancer forwards TCP connections to origin pools, optionally
// routing TLS connections by SNI without terminating them (passthrough).
type TCPLoadBalancer struct {
	Envelope
	Spec   TCPLoadBalancerSpec `json:"spec"`
	Status Status              `json:"status,omitempty"`
}

// TCPLoadBalancerSpec is the desired state of a TCPLoadBalancer.
type TCPLoadBalancerSpec struct {
	Listeners []TCPListener `json:"listeners"`
	// Routes send TLS connections whose SNI matches to a pool; the first
	// match wins. Connections no route matches (or without TLS) go to Pool.
	Routes []TCPRoute `json:"routes,omitempty"`
	Pool   string     `json:"pool,omitempty"`
	// MaxConnections bounds concurrent connections per listener
	// (default 10000).
	MaxConnections int `json:"maxConnections,omitempty"`
	// IdleTimeout closes connections without traffic in either direction
	// for this long (default 1h).
	IdleTimeout Duration     `json:"idleTimeout,omitempty"`
	Sites       *LBPlacement `json:"sites,omitempty"`
}

// TCPListener is a port the TCP load balancer accepts on.
type TCPListener struct {
	Port    int    `json:"port"`
	Address string `json:"address,omitempty"`
	// ProxyProtocol expects a PROXY protocol v1 or v2 header on input.
	ProxyProtocol bool `json:"proxyProtocol,omitempty"`
}

// TCPRoute routes TLS connections by SNI (exact names or "*.example.com").
type TCPRoute struct {
	SNI  []string `json:"sni"`
	Pool string   `json:"pool"`
}

// Default fills in defaults.
func (lb *TCPLoadBalancer) Default() {
	if lb.Spec.MaxConnections == 0 {
		lb.Spec.MaxConnections = 10000
	}
	if lb.Spec.IdleTimeout.Duration == 0 {
		lb.Spec.IdleTimeout.Duration = time.Hour
	}
}

// Validate checks the object.
func (lb *TCPLoadBalancer) Validate() FieldErrors {
	s := &lb.Spec
	var errs FieldErrors
	if len(s.Listeners) == 0 {
		errs = append(errs, Required("spec.listeners", "at least one listener is required"))
	}
	errs = append(errs, dpCheckListeners(len(s.Listeners), func(i int) (int, string) { return s.Listeners[i].Port, s.Listeners[i].Address })...)
	if s.Pool == "" && len(s.Routes) == 0 {
		errs = append(errs, Required("spec.pool", "a pool or at least one route is required"))
	}
	if s.Pool != "" && !IsDNS1123Label(s.Pool) {
		errs = append(errs, Invalid("spec.pool", s.Pool, "must be a DNS-1123 label"))
	}
	for i, r := range s.Routes {
		f := fmt.Sprintf("spec.routes[%d]", i)
		if len(r.SNI) == 0 {
			errs = append(errs, Required(f+".sni", "at least one server name is required"))
		}
		for j, n := range r.SNI {
			if n == "*" {
				errs = append(errs, Invalid(fmt.Sprintf("%s.sni[%d]", f, j), n, "use spec.pool for connections matching no route"))
			} else if msg := dpCheckDomain(n); msg != "" {
				errs = append(errs, Invalid(fmt.Sprintf("%s.sni[%d]", f, j), n, msg))
			}
		}
		if r.Pool == "" {
			errs = append(errs, Required(f+".pool", ""))
		} else if !IsDNS1123Label(r.Pool) {
			errs = append(errs, Invalid(f+".pool", r.Pool, "must be a DNS-1123 label"))
		}
	}
	if s.MaxConnections < 0 {
		errs = append(errs, Invalid("spec.maxConnections", s.MaxConnections, "must not be negative"))
	}
	if s.Sites != nil && s.Sites.VirtualSite != "" && !IsDNS1123Label(s.Sites.VirtualSite) {
		errs = append(errs, Invalid("spec.sites.virtualSite", s.Sites.VirtualSite, "must be a DNS-1123 label"))
	}
	return errs
}

// References lists the objects this load balancer refers to.
func (lb *TCPLoadBalancer) References() []Reference {
	ns := lb.Metadata.Namespace
	var refs []Reference
	for i, r := range lb.Spec.Routes {
		if r.Pool != "" {
			refs = append(refs, Reference{Field: fmt.Sprintf("spec.routes[%d].pool", i), Kind: "OriginPool", Namespace: ns, Name: r.Pool})
		}
	}
	if lb.Spec.Pool != "" {
		refs = append(refs, Reference{Field: "spec.pool", Kind: "OriginPool", Namespace: ns, Name: lb.Spec.Pool})
	}
	if s := lb.Spec.Sites; s != nil && s.VirtualSite != "" {
		refs = append(refs, Reference{Field: "spec.sites.virtualSite", Kind: "VirtualSite", Name: s.VirtualSite})
	}
	return refs
}
