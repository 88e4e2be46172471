package secevents

import (
	"strings"
	"time"
	"unicode/utf8"

	v1 "github.com/meridian-platform/meridian/api/v1"
)

// Event kinds.
const (
	KindWAF       = "waf"
	KindPolicy    = "policy"
	KindRateLimit = "ratelimit"
	KindAuthn     = "authn"
	// KindNetwork events are NetworkPolicy verdicts on connections (no
	// request: no request id, route or status).
	KindNetwork = "network"
)

// Event actions.
const (
	ActionBlocked  = "blocked"  // the request was refused
	ActionDetected = "detected" // a rule matched; monitor or dry-run mode let it pass
	ActionDenied   = "denied"   // a policy refused the request
	ActionLimited  = "limited"  // a rate limiter refused the request
	ActionRejected = "rejected" // authentication failed
)

// Event is one security verdict about one request. Every string is owned by
// the event (copied from the request view), so an event may outlive the
// request.
type Event struct {
	Time         time.Time `json:"time"`
	Kind         string    `json:"kind"`
	Action       string    `json:"action"`
	RequestID    string    `json:"requestId,omitempty"`
	LoadBalancer string    `json:"loadBalancer,omitempty"` // "namespace/name"
	Route        string    `json:"route,omitempty"`
	Client       string    `json:"client,omitempty"`
	Method       string    `json:"method,omitempty"`
	Host         string    `json:"host,omitempty"`
	Path         string    `json:"path,omitempty"`
	// Status is the status answered to the client (0 when the request
	// went on).
	Status int `json:"status,omitempty"`
	// Source names the object that decided: an AppFirewall, a
	// ServicePolicy rule ("policy/rule"), a RateLimiter.
	Source  string    `json:"source,omitempty"`
	Message string    `json:"message,omitempty"`
	Rules   []RuleHit `json:"rules,omitempty"`
}

// RuleHit is one rule that matched.
type RuleHit = v1.SecurityRuleHit

// MaxMatchedData bounds the matched data kept in an event.
const MaxMatchedData = 64

// sensitive lists fragments of variable names whose values are never shown.
var sensitive = []string{"authorization", "cookie", "password", "passwd", "pwd", "secret", "token", "api-key", "apikey", "api_key", "session"}

// MaskMatched returns matched data safe to store in an event: values of
// variables whose names suggest credentials are replaced entirely, runs of
// eight or more digits (card and account numbers) are masked, and the
// result is cut to MaxMatchedData bytes on a rune boundary.
func MaskMatched(variable, data string) string {
	if isSensitive(variable) {
		if data == "" {
			return ""
		}
		return "****"
	}
	out := maskDigits(data)
	if len(out) > MaxMatchedData {
		cut := MaxMatchedData
		for cut > 0 && !utf8.RuneStart(out[cut]) {
			cut--
		}
		out = out[:cut] + "…"
	}
	return out
}

// isSensitive reports whether a variable or parameter name suggests a
// credential.
func isSensitive(name string) bool {
	ln := strings.ToLower(name)
	for _, s := range sensitive {
		if strings.Contains(ln, s) {
			return true
		}
	}
	return false
}

// maskDigits replaces runs of eight or more digits with asterisks.
func maskDigits(data string) string {
	var b strings.Builder
	run := 0
	start := 0
	flush := func(end int) {
		if run >= 8 {
			b.WriteString(strings.Repeat("*", run))
		} else {
			b.WriteString(data[start:end])
		}
	}
	for i := 0; i < len(data); i++ {
		c := data[i]
		if c >= '0' && c <= '9' {
			if run == 0 {
				start = i
			}
			run++
			continue
		}
		if run > 0 {
			flush(i)
			run = 0
		}
		b.WriteByte(c)
	}
	if run > 0 {
		flush(len(data))
	}
	return b.String()
}
