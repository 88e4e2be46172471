package v1

import (
	"fmt"
	"net/url"
	"strings"
)

// AppFirewall is a web application firewall profile (Coraza with the OWASP
// Core Rule Set) that load balancers refer to by name (namespaced).
type AppFirewall struct {
	Envelope
	Spec   AppFirewallSpec `json:"spec"`
	Status Status          `json:"status,omitempty"`
}

// AppFirewall modes.
const (
	AppFirewallBlock   = "block"
	AppFirewallMonitor = "monitor"
)

// AppFirewallSpec is the desired state of an AppFirewall.
type AppFirewallSpec struct {
	// Mode is block (default: requests over the anomaly threshold are
	// refused) or monitor (they are logged only).
	Mode string `json:"mode,omitempty" enum:"block,monitor"`
	// ParanoiaLevel is the CRS paranoia level, 1 (default) to 4.
	ParanoiaLevel int `json:"paranoiaLevel,omitempty"`
	// AnomalyThreshold is the CRS anomaly score at which a request or a
	// response is blocked.
	AnomalyThreshold AnomalyThreshold `json:"anomalyThreshold,omitempty"`
	// Exclusions turn rules off for some requests (false positives).
	Exclusions []WAFExclusion `json:"exclusions,omitempty"`
	// CustomRules are extra rules in SecLang, evaluated after the CRS setup.
	CustomRules string `json:"customRules,omitempty"`
	// DetectionParanoiaLevel runs the rules of higher paranoia levels (up
	// to 4) that only log, never block (default: paranoiaLevel).
	DetectionParanoiaLevel int `json:"detectionParanoiaLevel,omitempty"`
	// RequestBody says how request bodies are inspected.
	RequestBody WAFRequestBody `json:"requestBody,omitempty"`
	// ResponseInspection turns on inspection of response bodies.
	ResponseInspection WAFResponseInspection `json:"responseInspection,omitempty"`
	// BlockResponse is what a blocked client receives.
	BlockResponse WAFBlockResponse `json:"blockResponse,omitempty"`
}

// WAF request body processors.
const (
	WAFBodyJSON       = "json"
	WAFBodyURLEncoded = "urlencoded"
	WAFBodyMultipart  = "multipart"
	WAFBodyXML        = "xml"

	WAFOnLimitReject         = "reject"
	WAFOnLimitProcessPartial = "processPartial"
)

// WAFRequestBody configures request body inspection.
type WAFRequestBody struct {
	// Disabled turns request body inspection off.
	Disabled bool `json:"disabled,omitempty"`
	// Limit is the largest body inspected, in bytes (default 131072, at
	// most 13107200).
	Limit int `json:"limit,omitempty"`
	// OnLimit is reject (default: a larger body is refused with 413) or
	// processPartial (the first limit bytes are inspected).
	OnLimit string `json:"onLimit,omitempty" enum:"reject,processPartial"`
	// Processors are the body formats parsed into arguments: json,
	// urlencoded, multipart, xml (default: all four). Other bodies are
	// inspected as raw bytes.
	Processors []string `json:"processors,omitempty"`
	// JSONDepthLimit bounds the nesting of JSON bodies (default 256).
	JSONDepthLimit int `json:"jsonDepthLimit,omitempty"`
}

// WAFResponseInspection configures response body inspection.
type WAFResponseInspection struct {
	// Enabled turns response body inspection on (default off).
	Enabled bool `json:"enabled,omitempty"`
	// Limit is the largest response body inspected, in bytes (default
	// 524288); the rest passes uninspected.
	Limit int `json:"limit,omitempty"`
	// MimeTypes are the content types inspected (default text/plain,
	// text/html, text/xml, application/json).
	MimeTypes []string `json:"mimeTypes,omitempty"`
}

// WAFBlockResponse is the answer to a blocked request.
type WAFBlockResponse struct {
	// Status (default 403).
	Status int `json:"status,omitempty"`
	// ContentType of Body (default text/html; charset=utf-8).
	ContentType string `json:"contentType,omitempty"`
	// Body of the answer (default: a short page naming the request id).
	Body string `json:"body,omitempty"`
}

// WAF body limits.
const (
	DefaultWAFBodyLimit         = 128 * 1024
	MaxWAFBodyLimit             = 13107200
	DefaultWAFResponseBodyLimit = 512 * 1024
	MaxWAFBlockBody             = 64 * 1024
)

// AnomalyThreshold holds the CRS inbound and outbound anomaly thresholds.
type AnomalyThreshold struct {
	// Inbound (default 5).
	Inbound int `json:"inbound,omitempty"`
	// Outbound (default 4).
	Outbound int `json:"outbound,omitempty"`
}

// WAFExclusion removes rules (by id or tag) for requests matching all of
// the given conditions (path, host, argument name), or everywhere when no
// condition is given.
type WAFExclusion struct {
	// RuleIDs are the CRS or custom rule ids to remove.
	RuleIDs []int `json:"ruleIds,omitempty"`
	// Tags remove every rule with one of these tags (e.g. attack-sqli).
	Tags []string `json:"tags,omitempty"`
	// Path is a path prefix the exclusion applies to.
	Path string `json:"path,omitempty"`
	// Host is the request host the exclusion applies to.
	Host string `json:"host,omitempty"`
	// ArgName limits the exclusion to one request argument.
	ArgName string `json:"argName,omitempty"`
}

// AppFirewall bounds.
const (
	MaxCustomRulesBytes = 256 * 1024
	MaxAnomalyThreshold = 10000
)

// Default fills in mode, paranoia level and thresholds.
func (a *AppFirewall) Default() {
	s := &a.Spec
	if s.Mode == "" {
		s.Mode = AppFirewallBlock
	}
	if s.ParanoiaLevel == 0 {
		s.ParanoiaLevel = 1
	}
	if s.AnomalyThreshold.Inbound == 0 {
		s.AnomalyThreshold.Inbound = 5
	}
	if s.AnomalyThreshold.Outbound == 0 {
		s.AnomalyThreshold.Outbound = 4
	}
	if s.DetectionParanoiaLevel == 0 {
		s.DetectionParanoiaLevel = s.ParanoiaLevel
	}
	b := &s.RequestBody
	if b.Limit == 0 {
		b.Limit = DefaultWAFBodyLimit
	}
	if b.OnLimit == "" {
		b.OnLimit = WAFOnLimitReject
	}
	if b.Processors == nil {
		b.Processors = []string{WAFBodyJSON, WAFBodyURLEncoded, WAFBodyMultipart, WAFBodyXML}
	}
	if b.JSONDepthLimit == 0 {
		b.JSONDepthLimit = 256
	}
	r := &s.ResponseInspection
	if r.Enabled {
		if r.Limit == 0 {
			r.Limit = DefaultWAFResponseBodyLimit
		}
		if r.MimeTypes == nil {
			r.MimeTypes = []string{"text/plain", "text/html", "text/xml", "application/json"}
		}
	}
	if s.BlockResponse.Status == 0 {
		s.BlockResponse.Status = 403
	}
	if s.BlockResponse.ContentType == "" && s.BlockResponse.Body != "" {
		s.BlockResponse.ContentType = "text/html; charset=utf-8"
	}
}

// Validate checks the spec.
func (a *AppFirewall) Validate() FieldErrors {
	s := &a.Spec
	errs := oneOf("spec.mode", s.Mode, []string{AppFirewallBlock, AppFirewallMonitor})
	if s.ParanoiaLevel < 1 || s.ParanoiaLevel > 4 {
		errs = append(errs, Invalid("spec.paranoiaLevel", s.ParanoiaLevel, "must be between 1 and 4"))
	}
	if t := s.AnomalyThreshold.Inbound; t < 1 || t > MaxAnomalyThreshold {
		errs = append(errs, Invalid("spec.anomalyThreshold.inbound", t, fmt.Sprintf("must be between 1 and %d", MaxAnomalyThreshold)))
	}
	if t := s.AnomalyThreshold.Outbound; t < 1 || t > MaxAnomalyThreshold {
		errs = append(errs, Invalid("spec.anomalyThreshold.outbound", t, fmt.Sprintf("must be between 1 and %d", MaxAnomalyThreshold)))
	}
	for i, e := range s.Exclusions {
		f := idx("spec.exclusions", i)
		if len(e.RuleIDs) == 0 && len(e.Tags) == 0 {
			errs = append(errs, Required(f, "ruleIds or tags must name the rules to exclude"))
		}
		for j, id := range e.RuleIDs {
			if id < 1 || id > 99_999_999 {
				errs = append(errs, Invalid(idx(f+".ruleIds", j), id, "must be a rule id between 1 and 99999999"))
			}
		}
		for j, tag := range e.Tags {
			if tag == "" || len(tag) > 256 || strings.ContainsAny(tag, " \t\r\n\"'") {
				errs = append(errs, Invalid(idx(f+".tags", j), tag, "must be a non-empty rule tag without spaces or quotes"))
			}
		}
		if e.Path != "" {
			errs = append(errs, validatePath(f+".path", e.Path)...)
		}
		if e.Host != "" && !isHostPattern(e.Host) {
			errs = append(errs, Invalid(f+".host", e.Host, "must be a host name, optionally starting with \"*.\""))
		}
		if e.ArgName != "" && (len(e.ArgName) > 256 || strings.ContainsAny(e.ArgName, " \t\r\n\"'")) {
			errs = append(errs, Invalid(f+".argName", e.ArgName, "must be an argument name without spaces or quotes"))
		}
	}
	if len(s.CustomRules) > MaxCustomRulesBytes {
		errs = append(errs, tooLong("spec.customRules", len(s.CustomRules), MaxCustomRulesBytes))
	}
	if d := s.DetectionParanoiaLevel; d < s.ParanoiaLevel || d > 4 {
		errs = append(errs, Invalid("spec.detectionParanoiaLevel", d, "must be between paranoiaLevel and 4"))
	}
	b := &s.RequestBody
	if b.Limit < 1 || b.Limit > MaxWAFBodyLimit {
		errs = append(errs, Invalid("spec.requestBody.limit", b.Limit, fmt.Sprintf("must be between 1 and %d", MaxWAFBodyLimit)))
	}
	errs = append(errs, oneOf("spec.requestBody.onLimit", b.OnLimit, []string{WAFOnLimitReject, WAFOnLimitProcessPartial})...)
	seen := map[string]bool{}
	for i, p := range b.Processors {
		f := idx("spec.requestBody.processors", i)
		errs = append(errs, oneOf(f, p, []string{WAFBodyJSON, WAFBodyURLEncoded, WAFBodyMultipart, WAFBodyXML})...)
		if seen[p] {
			errs = append(errs, duplicate(f, p))
		}
		seen[p] = true
	}
	if b.JSONDepthLimit < 1 || b.JSONDepthLimit > 10000 {
		errs = append(errs, Invalid("spec.requestBody.jsonDepthLimit", b.JSONDepthLimit, "must be between 1 and 10000"))
	}
	if r := &s.ResponseInspection; r.Enabled {
		if r.Limit < 1 || r.Limit > MaxWAFBodyLimit {
			errs = append(errs, Invalid("spec.responseInspection.limit", r.Limit, fmt.Sprintf("must be between 1 and %d", MaxWAFBodyLimit)))
		}
		for i, m := range r.MimeTypes {
			if !isMimeType(m) {
				errs = append(errs, Invalid(idx("spec.responseInspection.mimeTypes", i), m, "must be a media type such as text/html"))
			}
		}
	}
	br := &s.BlockResponse
	if br.Status < 400 || br.Status > 599 {
		errs = append(errs, Invalid("spec.blockResponse.status", br.Status, "must be between 400 and 599"))
	}
	if len(br.Body) > MaxWAFBlockBody {
		errs = append(errs, tooLong("spec.blockResponse.body", len(br.Body), MaxWAFBlockBody))
	}
	if strings.ContainsAny(br.ContentType, "\r\n") || len(br.ContentType) > 256 {
		errs = append(errs, Invalid("spec.blockResponse.contentType", br.ContentType, "must be a single-line media type"))
	}
	return errs
}

// isMimeType reports whether s looks like type/subtype.
func isMimeType(s string) bool {
	t, sub, ok := strings.Cut(s, "/")
	return ok && isHTTPToken(t) && isHTTPToken(sub)
}

// ServicePolicy is an ordered list of allow/deny/redirect rules evaluated
// for the requests of the load balancers that refer to it (namespaced).
type ServicePolicy struct {
	Envelope
	Spec   ServicePolicySpec `json:"spec"`
	Status Status            `json:"status,omitempty"`
}

// ServicePolicy enumerations.
const (
	PolicyModeEnforce = "enforce"
	PolicyModeDryRun  = "dryRun"

	PolicyActionAllow    = "allow"
	PolicyActionDeny     = "deny"
	PolicyActionRedirect = "redirect"
	PolicyActionNext     = "next"

	PolicyFirstMatch     = "firstMatch"
	PolicyAllowOverrides = "allowOverrides"
	PolicyDenyOverrides  = "denyOverrides"
)

// ServicePolicySpec is the desired state of a ServicePolicy.
type ServicePolicySpec struct {
	// Mode is enforce (default) or dryRun (evaluate and count, never act).
	Mode  string              `json:"mode,omitempty" enum:"enforce,dryRun"`
	Rules []ServicePolicyRule `json:"rules,omitempty"`
	// DefaultAction applies when no rule matches: next (default: leave the
	// decision to the next policy), allow or deny.
	DefaultAction string `json:"defaultAction,omitempty" enum:"allow,deny,next"`
	// Algorithm combines matching rules: firstMatch (default),
	// allowOverrides (any matching allow wins) or denyOverrides (any
	// matching deny wins).
	Algorithm string `json:"algorithm,omitempty" enum:"firstMatch,allowOverrides,denyOverrides"`
}

// ServicePolicyRule is one rule of a ServicePolicy.
type ServicePolicyRule struct {
	// Name identifies the rule in counters and events (a DNS-1123 label).
	Name string `json:"name"`
	// Action is allow, deny or redirect.
	Action string `json:"action" enum:"allow,deny,redirect"`
	// Status is the HTTP status answered by deny (default 403) and
	// redirect (default 302).
	Status int `json:"status,omitempty"`
	// RedirectURL is where redirect sends the client.
	RedirectURL string `json:"redirectURL,omitempty"`
	// Match holds the conditions; all given conditions must hold. An empty
	// match matches every request.
	Match ServicePolicyMatch `json:"match,omitempty"`
}

// ServicePolicyMatch is the condition of a rule.
type ServicePolicyMatch struct {
	// ClientCIDRs match when the client address is in one of them (a bare
	// address is a single host).
	ClientCIDRs []string `json:"clientCIDRs,omitempty"`
	// NotClientCIDRs match when the client address is in none of them.
	NotClientCIDRs []string `json:"notClientCIDRs,omitempty"`
	// Hosts match the request host: exact names, "*.example.com" or "*".
	Hosts []string `json:"hosts,omitempty"`
	// PathExact, PathPrefix and PathRegex match the path; at most one is set.
	PathExact  string `json:"pathExact,omitempty"`
	PathPrefix string `json:"pathPrefix,omitempty"`
	// PathRegex is an RE2 regular expression.
	PathRegex string `json:"pathRegex,omitempty"`
	// Methods match the request method (upper-cased by default).
	Methods []string `json:"methods,omitempty"`
	// Headers must all match.
	Headers []ValueMatcher `json:"headers,omitempty"`
	// QueryParams must all match.
	QueryParams []ValueMatcher `json:"queryParams,omitempty"`
	// Claims must all match the claims of the JWT that authenticated the
	// request (string, number and boolean claims compare as text; a list
	// claim matches when one of its elements matches). A request without a
	// validated JWT has no claims.
	Claims []ValueMatcher `json:"claims,omitempty"`
	// SNI matches the TLS server name the client sent: exact names,
	// "*.example.com" or "*". A plaintext request has no server name.
	SNI []string `json:"sni,omitempty"`
}

// ValueMatcher matches a named header or query parameter: by exact value,
// by regular expression, or by presence (present: false matches when it is
// absent). At most one of Exact, Regex and Present is set; with none, the
// name must be present.
type ValueMatcher struct {
	// Name of the header (case-insensitive) or query parameter.
	Name string `json:"name"`
	// Exact value.
	Exact string `json:"exact,omitempty"`
	// Regex is an RE2 regular expression the value must match.
	Regex string `json:"regex,omitempty"`
	// Present, when set, matches on presence (true) or absence (false).
	Present *bool `json:"present,omitempty"`
}

// MaxPolicyRules bounds the rules of one ServicePolicy.
const MaxPolicyRules = 1024

// Default fills in mode, default action, algorithm and rule statuses.
func (p *ServicePolicy) Default() {
	s := &p.Spec
	if s.Mode == "" {
		s.Mode = PolicyModeEnforce
	}
	if s.DefaultAction == "" {
		s.DefaultAction = PolicyActionNext
	}
	if s.Algorithm == "" {
		s.Algorithm = PolicyFirstMatch
	}
	for i := range s.Rules {
		r := &s.Rules[i]
		if r.Status == 0 {
			switch r.Action {
			case PolicyActionDeny:
				r.Status = 403
			case PolicyActionRedirect:
				r.Status = 302
			}
		}
		for j, m := range r.Match.Methods {
			r.Match.Methods[j] = strings.ToUpper(m)
		}
	}
}

// Validate checks the spec: enumerations, CIDRs, regular expressions.
func (p *ServicePolicy) Validate() FieldErrors {
	s := &p.Spec
	errs := oneOf("spec.mode", s.Mode, []string{PolicyModeEnforce, PolicyModeDryRun})
	errs = append(errs, oneOf("spec.defaultAction", s.DefaultAction, []string{PolicyActionAllow, PolicyActionDeny, PolicyActionNext})...)
	errs = append(errs, oneOf("spec.algorithm", s.Algorithm, []string{PolicyFirstMatch, PolicyAllowOverrides, PolicyDenyOverrides})...)
	if len(s.Rules) > MaxPolicyRules {
		errs = append(errs, FieldError{Field: "spec.rules", Reason: ReasonTooLong,
			Message: fmt.Sprintf("at most %d rules are allowed, got %d", MaxPolicyRules, len(s.Rules))})
	}
	names := map[string]int{}
	for i, r := range s.Rules {
		f := idx("spec.rules", i)
		errs = append(errs, validateNameField(f+".name", r.Name)...)
		if j, dup := names[r.Name]; dup && r.Name != "" {
			errs = append(errs, FieldError{Field: f + ".name", Reason: ReasonDuplicate,
				Message: fmt.Sprintf("duplicate rule name %q (also spec.rules[%d].name)", r.Name, j)})
		} else {
			names[r.Name] = i
		}
		errs = append(errs, oneOf(f+".action", r.Action, []string{PolicyActionAllow, PolicyActionDeny, PolicyActionRedirect})...)
		switch r.Action {
		case PolicyActionAllow:
			if r.Status != 0 {
				errs = append(errs, forbidden(f+".status", "only deny and redirect rules answer with a status"))
			}
		case PolicyActionDeny:
			if r.Status < 400 || r.Status > 599 {
				errs = append(errs, Invalid(f+".status", r.Status, "a deny status must be between 400 and 599"))
			}
		case PolicyActionRedirect:
			if r.Status != 301 && r.Status != 302 && r.Status != 303 && r.Status != 307 && r.Status != 308 {
				errs = append(errs, NotSupported(f+".status", r.Status, []string{"301", "302", "303", "307", "308"}))
			}
			if r.RedirectURL == "" {
				errs = append(errs, Required(f+".redirectURL", "a redirect rule needs redirectURL"))
			}
		}
		if r.RedirectURL != "" {
			if r.Action != PolicyActionRedirect {
				errs = append(errs, forbidden(f+".redirectURL", "only redirect rules have a redirectURL"))
			} else if msg := checkRedirectURL(r.RedirectURL); msg != "" {
				errs = append(errs, Invalid(f+".redirectURL", r.RedirectURL, msg))
			}
		}
		errs = append(errs, r.Match.validate(f+".match")...)
	}
	return errs
}

func checkRedirectURL(s string) string {
	if len(s) > 4096 {
		return "longer than 4096 bytes"
	}
	u, err := url.Parse(s)
	if err != nil {
		return "does not parse as a URL"
	}
	if strings.ContainsAny(s, " \t\r\n") {
		return "must not contain white space"
	}
	if u.IsAbs() {
		if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
			return "must be an http(s) URL with a host, or a path starting with '/'"
		}
		return ""
	}
	if !strings.HasPrefix(s, "/") || strings.HasPrefix(s, "//") {
		return "must be an http(s) URL with a host, or a path starting with '/'"
	}
	return ""
}

func (m *ServicePolicyMatch) validate(f string) FieldErrors {
	errs := validateCIDRs(f+".clientCIDRs", m.ClientCIDRs)
	errs = append(errs, validateCIDRs(f+".notClientCIDRs", m.NotClientCIDRs)...)
	for i, h := range m.Hosts {
		if !isHostPattern(h) {
			errs = append(errs, Invalid(idx(f+".hosts", i), h, "must be a host name, optionally starting with \"*.\", or \"*\""))
		}
	}
	n := 0
	if m.PathExact != "" {
		n++
		errs = append(errs, validatePath(f+".pathExact", m.PathExact)...)
	}
	if m.PathPrefix != "" {
		n++
		errs = append(errs, validatePath(f+".pathPrefix", m.PathPrefix)...)
	}
	if m.PathRegex != "" {
		n++
		errs = append(errs, validateRegex(f+".pathRegex", m.PathRegex)...)
	}
	if n > 1 {
		errs = append(errs, forbidden(f, "only one of pathExact, pathPrefix and pathRegex may be set"))
	}
	for i, meth := range m.Methods {
		if !isHTTPToken(meth) {
			errs = append(errs, Invalid(idx(f+".methods", i), meth, "must be an HTTP method"))
		}
	}
	for i, h := range m.Headers {
		errs = append(errs, h.validate(idx(f+".headers", i), true)...)
	}
	for i, q := range m.QueryParams {
		errs = append(errs, q.validate(idx(f+".queryParams", i), false)...)
	}
	for i, c := range m.Claims {
		errs = append(errs, c.validate(idx(f+".claims", i), false)...)
	}
	for i, h := range m.SNI {
		if !isHostPattern(h) {
			errs = append(errs, Invalid(idx(f+".sni", i), h, "must be a host name, optionally starting with \"*.\", or \"*\""))
		}
	}
	return errs
}

func (v *ValueMatcher) validate(f string, header bool) FieldErrors {
	var errs FieldErrors
	switch {
	case v.Name == "":
		errs = append(errs, Required(f+".name", ""))
	case header && !isHTTPToken(v.Name):
		errs = append(errs, Invalid(f+".name", v.Name, "must be an HTTP header name"))
	case len(v.Name) > 256:
		errs = append(errs, tooLong(f+".name", len(v.Name), 256))
	}
	n := 0
	if v.Exact != "" {
		n++
	}
	if v.Regex != "" {
		n++
		errs = append(errs, validateRegex(f+".regex", v.Regex)...)
	}
	if v.Present != nil {
		n++
	}
	if n > 1 {
		errs = append(errs, forbidden(f, "only one of exact, regex and present may be set"))
	}
	return errs
}

// RateLimiter limits the request rate per key (client IP, header, JWT claim
// or API key) for the load balancers that refer to it (namespaced).
type RateLimiter struct {
	Envelope
	Spec   RateLimiterSpec `json:"spec"`
	Status Status          `json:"status,omitempty"`
}

// RateLimiter enumerations.
const (
	RatePerSecond = "second"
	RatePerMinute = "minute"
	RatePerHour   = "hour"

	RateKeyClientIP = "clientIP"
	RateKeyHeader   = "header"
	RateKeyJWTClaim = "jwtClaim"
	RateKeyAPIKey   = "apiKey"
)

// RateLimiterSpec is the desired state of a RateLimiter: a token bucket of
// Burst tokens refilled at Rate per Per, one bucket per key.
type RateLimiterSpec struct {
	// Rate is the number of requests allowed per period.
	Rate int `json:"rate"`
	// Burst is the bucket size (default: Rate).
	Burst int `json:"burst,omitempty"`
	// Per is second (default), minute or hour.
	Per string `json:"per,omitempty" enum:"second,minute,hour"`
	// Key says what a bucket is kept for (default: the client IP).
	Key RateLimitKey `json:"key,omitempty"`
}

// RateLimitKey selects the request attribute requests are counted by.
type RateLimitKey struct {
	// Type is clientIP, header (Name is the header), jwtClaim (Name is the
	// claim) or apiKey (the authenticated API key).
	Type string `json:"type,omitempty" enum:"clientIP,header,jwtClaim,apiKey"`
	// Name is the header or claim name.
	Name string `json:"name,omitempty"`
}

// MaxRate bounds spec.rate and spec.burst.
const MaxRate = 100_000_000

// Default fills in burst, period and key.
func (r *RateLimiter) Default() {
	s := &r.Spec
	if s.Burst == 0 {
		s.Burst = s.Rate
	}
	if s.Per == "" {
		s.Per = RatePerSecond
	}
	if s.Key.Type == "" {
		s.Key.Type = RateKeyClientIP
	}
}

// Validate checks the spec.
func (r *RateLimiter) Validate() FieldErrors {
	s := &r.Spec
	var errs FieldErrors
	if s.Rate < 1 || s.Rate > MaxRate {
		errs = append(errs, Invalid("spec.rate", s.Rate, fmt.Sprintf("must be between 1 and %d", MaxRate)))
	}
	if s.Burst < 1 || s.Burst > MaxRate {
		errs = append(errs, Invalid("spec.burst", s.Burst, fmt.Sprintf("must be between 1 and %d", MaxRate)))
	}
	errs = append(errs, oneOf("spec.per", s.Per, []string{RatePerSecond, RatePerMinute, RatePerHour})...)
	errs = append(errs, oneOf("spec.key.type", s.Key.Type, []string{RateKeyClientIP, RateKeyHeader, RateKeyJWTClaim, RateKeyAPIKey})...)
	switch s.Key.Type {
	case RateKeyHeader:
		if s.Key.Name == "" {
			errs = append(errs, Required("spec.key.name", "the header to count requests by"))
		} else if !isHTTPToken(s.Key.Name) {
			errs = append(errs, Invalid("spec.key.name", s.Key.Name, "must be an HTTP header name"))
		}
	case RateKeyJWTClaim:
		if s.Key.Name == "" {
			errs = append(errs, Required("spec.key.name", "the JWT claim to count requests by"))
		} else if len(s.Key.Name) > 256 {
			errs = append(errs, tooLong("spec.key.name", len(s.Key.Name), 256))
		}
	case RateKeyClientIP, RateKeyAPIKey:
		if s.Key.Name != "" {
			errs = append(errs, forbidden("spec.key.name", "only header and jwtClaim keys have a name"))
		}
	}
	return errs
}
