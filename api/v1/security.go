package v1

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
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
	// Countries match when the client address is located in one of these
	// countries (ISO 3166-1 alpha-2 codes such as DE). Needs a GeoIP
	// country (or city) database on the node (meridian node --geoip-db);
	// without one the policy does not compile. An address the database
	// does not know matches no country.
	Countries []string `json:"countries,omitempty"`
	// NotCountries match when the client address is located in none of
	// these countries (an unknown location is in none).
	NotCountries []string `json:"notCountries,omitempty"`
	// ASNs match when the client address belongs to one of these
	// autonomous systems. Needs a GeoIP ASN database on the node
	// (meridian node --geoip-asn-db).
	ASNs []uint32 `json:"asns,omitempty"`
	// NotASNs match when the client address belongs to none of these
	// autonomous systems.
	NotASNs []uint32 `json:"notASNs,omitempty"`
}

// UsesCountry reports whether the match needs a country database.
func (m *ServicePolicyMatch) UsesCountry() bool { return len(m.Countries)+len(m.NotCountries) > 0 }

// UsesASN reports whether the match needs an ASN database.
func (m *ServicePolicyMatch) UsesASN() bool { return len(m.ASNs)+len(m.NotASNs) > 0 }

// isCountryCode reports whether s is two upper-case ASCII letters.
func isCountryCode(s string) bool {
	return len(s) == 2 && s[0] >= 'A' && s[0] <= 'Z' && s[1] >= 'A' && s[1] <= 'Z'
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
		for j, c := range r.Match.Countries {
			r.Match.Countries[j] = strings.ToUpper(c)
		}
		for j, c := range r.Match.NotCountries {
			r.Match.NotCountries[j] = strings.ToUpper(c)
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
	for _, l := range []struct {
		name  string
		codes []string
	}{{"countries", m.Countries}, {"notCountries", m.NotCountries}} {
		for i, c := range l.codes {
			if !isCountryCode(c) {
				errs = append(errs, Invalid(idx(f+"."+l.name, i), c, "must be an ISO 3166-1 alpha-2 country code such as DE"))
			}
		}
	}
	for _, l := range []struct {
		name string
		asns []uint32
	}{{"asns", m.ASNs}, {"notASNs", m.NotASNs}} {
		for i, a := range l.asns {
			if a == 0 {
				errs = append(errs, Invalid(idx(f+"."+l.name, i), a, "must be an autonomous system number from 1 to 4294967295"))
			}
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

// HTTPAuthentication says how the requests of a load balancer (or of one
// of its routes) authenticate: at least one of the configured methods must
// succeed, else the client gets 401 (403 for an mTLS certificate whose
// name is not allowed). The identity is then usable by service policies
// (match.claims) and rate limiters (key jwtClaim or apiKey).
type HTTPAuthentication struct {
	// Disabled, on a route, exempts it from the load balancer's
	// authentication (for example /healthz). Not allowed on the load
	// balancer itself: remove spec.authentication instead.
	Disabled bool `json:"disabled,omitempty"`
	// JWT accepts signed bearer tokens checked against a JWKS.
	JWT *JWTAuthentication `json:"jwt,omitempty"`
	// APIKey accepts static API keys sent in a header.
	APIKey *APIKeyAuthentication `json:"apiKey,omitempty"`
	// MTLS accepts TLS client certificates issued by a CA.
	MTLS *MTLSAuthentication `json:"mtls,omitempty"`
	// ForwardClaims copies claims of the validated identity into request
	// headers for the origin. Headers of those names sent by the client
	// are always removed first.
	ForwardClaims []ForwardedClaim `json:"forwardClaims,omitempty"`
}

// JWTAuthentication validates bearer tokens. Exactly one of JWKSFile and
// JWKSURL is set.
type JWTAuthentication struct {
	// Issuer, when set, must equal the token's iss claim.
	Issuer string `json:"issuer,omitempty"`
	// Audiences, when set, must include one of the token's aud values.
	Audiences []string `json:"audiences,omitempty"`
	// Algorithms allowed (default RS256, ES256, EdDSA): RS256, RS384,
	// RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA. "none" and
	// HMAC algorithms are never accepted.
	Algorithms []string `json:"algorithms,omitempty"`
	// ClockSkew tolerated on exp, nbf and iat (default 60s, at most 1h).
	ClockSkew Duration `json:"clockSkew,omitempty"`
	// JWKSFile is an absolute path of a JWKS document on the node; for
	// standalone nodes only (a load balancer placed on sites uses jwksURL).
	JWKSFile string `json:"jwksFile,omitempty"`
	// JWKSURL is an http(s) URL the node fetches the JWKS from, cached and
	// refreshed (also when a token names an unknown key id: rotation).
	JWKSURL string `json:"jwksURL,omitempty"`
	// Refresh is how often keys are reloaded (default 10m).
	Refresh Duration `json:"refresh,omitempty"`
	// MinRefresh bounds reloads triggered by unknown key ids (default 30s).
	MinRefresh Duration `json:"minRefresh,omitempty"`
	// Header carrying the token (default Authorization, with the Bearer
	// scheme; any other header carries the bare token).
	Header string `json:"header,omitempty"`
}

// APIKeyAuthentication accepts static API keys.
type APIKeyAuthentication struct {
	// Header carrying the key (default X-API-Key).
	Header string `json:"header,omitempty"`
	// Keys are the accepted keys (at least one, at most 1024).
	Keys []APIKeyCredential `json:"keys"`
}

// APIKeyCredential is one accepted API key. Exactly one of Key and SHA256
// is set.
type APIKeyCredential struct {
	// Name identifies the key in events and rate-limit keys (a DNS-1123
	// label, unique in the list).
	Name string `json:"name"`
	// Key is the key itself (at least 16 characters); write-only,
	// encrypted at rest and sent only to the sites that run the load
	// balancer. Writing back "(set)" keeps the key stored at the same
	// position of the list.
	Key Secret `json:"key,omitempty"`
	// SHA256 is the hex SHA-256 digest of the key, as an alternative to
	// Key that keeps the key itself out of Meridian.
	SHA256 string `json:"sha256,omitempty"`
}

// MTLSAuthentication accepts client certificates that chain to a CA.
type MTLSAuthentication struct {
	// CARef names a Certificate (without private key) holding the CA
	// certificates client certificates must chain to.
	CARef string `json:"caRef"`
	// AllowedNames, when set, must contain one of the client
	// certificate's URI SANs (spiffe://...), DNS SANs or subject common
	// name.
	AllowedNames []string `json:"allowedNames,omitempty"`
}

// ForwardedClaim forwards one claim of the identity as a request header.
// For mTLS the claims are sub (the first name) and names (all names).
type ForwardedClaim struct {
	Claim  string `json:"claim"`
	Header string `json:"header"`
}

// JWTAlgorithms lists the JWT signature algorithms authentication accepts.
var JWTAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// Bounds of HTTPAuthentication.
const (
	MaxAPIKeys      = 1024
	MinAPIKeyLength = 16
)

// validate checks an authentication block at f. onRoute allows disabled;
// placed (the load balancer runs on console-managed sites) forbids
// jwksFile.
func (a *HTTPAuthentication) validate(f string, onRoute, placed bool) FieldErrors {
	if a == nil {
		return nil
	}
	var errs FieldErrors
	methods := 0
	if a.JWT != nil {
		methods++
	}
	if a.APIKey != nil {
		methods++
	}
	if a.MTLS != nil {
		methods++
	}
	switch {
	case a.Disabled && !onRoute:
		errs = append(errs, forbidden(f+".disabled", "only a route can disable authentication; remove spec.authentication instead"))
	case a.Disabled && (methods > 0 || len(a.ForwardClaims) > 0):
		errs = append(errs, forbidden(f+".disabled", "a route that disables authentication cannot also configure it"))
	case !a.Disabled && methods == 0:
		errs = append(errs, Required(f, "at least one of jwt, apiKey and mtls is required"))
	}
	if j := a.JWT; j != nil {
		jf := f + ".jwt"
		switch {
		case j.JWKSFile == "" && j.JWKSURL == "":
			errs = append(errs, Required(jf+".jwksURL", "jwksURL (or, on a standalone node, jwksFile) says where the keys are"))
		case j.JWKSFile != "" && j.JWKSURL != "":
			errs = append(errs, forbidden(jf, "only one of jwksFile and jwksURL may be set"))
		case j.JWKSFile != "":
			if placed {
				errs = append(errs, forbidden(jf+".jwksFile", "a file path is only meaningful on a standalone node; a load balancer placed on sites uses jwksURL"))
			} else if !strings.HasPrefix(j.JWKSFile, "/") || strings.ContainsAny(j.JWKSFile, "\x00\r\n") {
				errs = append(errs, Invalid(jf+".jwksFile", j.JWKSFile, "must be an absolute path"))
			}
		default:
			u, err := url.Parse(j.JWKSURL)
			if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || len(j.JWKSURL) > 4096 {
				errs = append(errs, Invalid(jf+".jwksURL", j.JWKSURL, "must be an http(s) URL with a host"))
			}
		}
		seen := map[string]bool{}
		for i, alg := range j.Algorithms {
			if !slices.Contains(JWTAlgorithms, alg) {
				errs = append(errs, NotSupported(idx(jf+".algorithms", i), alg, JWTAlgorithms))
			} else if seen[alg] {
				errs = append(errs, duplicate(idx(jf+".algorithms", i), alg))
			}
			seen[alg] = true
		}
		if d := j.ClockSkew.Duration; d < 0 || d > time.Hour {
			errs = append(errs, Invalid(jf+".clockSkew", j.ClockSkew.String(), "must be between 0 and 1h"))
		}
		if d := j.Refresh.Duration; d != 0 && (d < time.Second || d > 24*time.Hour) {
			errs = append(errs, Invalid(jf+".refresh", j.Refresh.String(), "must be between 1s and 24h"))
		}
		if d := j.MinRefresh.Duration; d != 0 && (d < time.Second || d > time.Hour) {
			errs = append(errs, Invalid(jf+".minRefresh", j.MinRefresh.String(), "must be between 1s and 1h"))
		}
		if j.Header != "" && !isHTTPToken(j.Header) {
			errs = append(errs, Invalid(jf+".header", j.Header, "must be an HTTP header name"))
		}
		for i, aud := range j.Audiences {
			if aud == "" || len(aud) > 1024 {
				errs = append(errs, Invalid(idx(jf+".audiences", i), aud, "must be 1 to 1024 characters"))
			}
		}
		if len(j.Issuer) > 1024 {
			errs = append(errs, tooLong(jf+".issuer", len(j.Issuer), 1024))
		}
	}
	if k := a.APIKey; k != nil {
		kf := f + ".apiKey"
		if k.Header != "" && !isHTTPToken(k.Header) {
			errs = append(errs, Invalid(kf+".header", k.Header, "must be an HTTP header name"))
		}
		if len(k.Keys) == 0 {
			errs = append(errs, Required(kf+".keys", "at least one key is required"))
		}
		if len(k.Keys) > MaxAPIKeys {
			errs = append(errs, FieldError{Field: kf + ".keys", Reason: ReasonTooLong,
				Message: fmt.Sprintf("at most %d keys are allowed, got %d", MaxAPIKeys, len(k.Keys))})
		}
		names := map[string]int{}
		for i, c := range k.Keys {
			cf := idx(kf+".keys", i)
			errs = append(errs, validateNameField(cf+".name", c.Name)...)
			if j, dup := names[c.Name]; dup && c.Name != "" {
				errs = append(errs, FieldError{Field: cf + ".name", Reason: ReasonDuplicate,
					Message: fmt.Sprintf("duplicate key name %q (also %s)", c.Name, idx(kf+".keys", j)+".name")})
			} else {
				names[c.Name] = i
			}
			switch {
			case c.Key != "" && c.SHA256 != "":
				errs = append(errs, forbidden(cf, "only one of key and sha256 may be set"))
			case c.Key == "" && c.SHA256 == "":
				errs = append(errs, Required(cf+".key", "key (or sha256, its hex SHA-256 digest) is required"))
			case c.Key != "" && c.Key != SecretRedacted && len(c.Key) < MinAPIKeyLength:
				errs = append(errs, Invalid(cf+".key", "(secret)", fmt.Sprintf("must be at least %d characters", MinAPIKeyLength)))
			case c.SHA256 != "" && !isHex(c.SHA256, 64):
				errs = append(errs, Invalid(cf+".sha256", c.SHA256, "must be 64 hex digits"))
			}
		}
	}
	if m := a.MTLS; m != nil {
		errs = append(errs, validateNameField(f+".mtls.caRef", m.CARef)...)
		for i, n := range m.AllowedNames {
			if n == "" || len(n) > 1024 || strings.ContainsAny(n, " \t\r\n") {
				errs = append(errs, Invalid(idx(f+".mtls.allowedNames", i), n, "must be a name without spaces, 1 to 1024 characters"))
			}
		}
	}
	seenHdr := map[string]int{}
	for i, c := range a.ForwardClaims {
		cf := idx(f+".forwardClaims", i)
		if c.Claim == "" {
			errs = append(errs, Required(cf+".claim", ""))
		} else if len(c.Claim) > 256 {
			errs = append(errs, tooLong(cf+".claim", len(c.Claim), 256))
		}
		switch h := strings.ToLower(c.Header); {
		case c.Header == "":
			errs = append(errs, Required(cf+".header", ""))
		case !isHTTPToken(c.Header):
			errs = append(errs, Invalid(cf+".header", c.Header, "must be an HTTP header name"))
		case dpHopByHop(c.Header) || h == "authorization" || h == "cookie":
			errs = append(errs, forbidden(cf+".header", "hop-by-hop, framing, Authorization and Cookie headers cannot carry claims"))
		default:
			if j, dup := seenHdr[h]; dup {
				errs = append(errs, FieldError{Field: cf + ".header", Reason: ReasonDuplicate,
					Message: fmt.Sprintf("header %q is also set by %s", c.Header, idx(f+".forwardClaims", j))})
			}
			seenHdr[h] = i
		}
	}
	return errs
}

// secretFields lists the API keys of an authentication block at f.
func (a *HTTPAuthentication) secretFields(f string) []SecretField {
	if a == nil || a.APIKey == nil {
		return nil
	}
	var out []SecretField
	for i := range a.APIKey.Keys {
		out = append(out, SecretField{Field: idx(f+".apiKey.keys", i) + ".key", Value: &a.APIKey.Keys[i].Key})
	}
	return out
}

func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// defaults fills in the defaults of an authentication block.
func (a *HTTPAuthentication) defaults() {
	if a == nil || a.Disabled {
		return
	}
	if j := a.JWT; j != nil {
		if len(j.Algorithms) == 0 {
			j.Algorithms = []string{"RS256", "ES256", "EdDSA"}
		}
		if j.ClockSkew.Duration == 0 {
			j.ClockSkew.Duration = time.Minute
		}
		if j.Refresh.Duration == 0 {
			j.Refresh.Duration = 10 * time.Minute
		}
		if j.MinRefresh.Duration == 0 {
			j.MinRefresh.Duration = 30 * time.Second
		}
		if j.Header == "" {
			j.Header = "Authorization"
		}
	}
	if k := a.APIKey; k != nil && k.Header == "" {
		k.Header = "X-API-Key"
	}
}
