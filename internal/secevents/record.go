package secevents

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	v1 "github.com/meridian-platform/meridian/api/v1"
)

// TelemetryType is the type of the telemetry events (distrib.Event.Type)
// that carry security events from a node to the console.
const TelemetryType = "security"

// Bounds applied to events received from nodes (outside input for the
// console).
const (
	maxField = 512 // bytes per string field
	maxRules = 32  // rule hits per event
)

// Record is a security event as the console keeps and serves it: the
// node's event attributed to a tenant's load balancer and a site.
type Record = v1.SecurityEvent

// Attrs flattens e into telemetry attributes (see FromAttrs); the path's
// credential-like query values are masked.
func (e *Event) Attrs() map[string]string {
	a := map[string]string{"kind": e.Kind, "action": e.Action}
	set := func(k, v string) {
		if v != "" {
			a[k] = v
		}
	}
	set("requestId", e.RequestID)
	set("loadBalancer", e.LoadBalancer)
	set("route", e.Route)
	set("client", e.Client)
	set("method", e.Method)
	set("host", e.Host)
	set("path", MaskPath(e.Path))
	set("source", e.Source)
	if e.Status != 0 {
		a["status"] = strconv.Itoa(e.Status)
	}
	if len(e.Rules) > 0 {
		if b, err := json.Marshal(e.Rules); err == nil {
			a["rules"] = string(b)
		}
	}
	return a
}

// FromAttrs rebuilds a node's event from telemetry attributes, bounding
// every field and masking matched data and the path again (the console
// does not trust a node to have done it). The load balancer stays as the
// node named it ("namespace/name").
func FromAttrs(t time.Time, message string, a map[string]string) (Event, error) {
	e := Event{Time: t.UTC(), Kind: clip(a["kind"]), Action: clip(a["action"]), RequestID: clip(a["requestId"]),
		LoadBalancer: clip(a["loadBalancer"]), Route: clip(a["route"]), Client: clip(a["client"]),
		Method: clip(a["method"]), Host: clip(a["host"]), Path: clip(MaskPath(a["path"])), Source: clip(a["source"]),
		Message: clip(message)}
	if e.Kind == "" {
		return Event{}, fmt.Errorf("security event: attribute kind is missing")
	}
	if s := a["status"]; s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n > 999 {
			return Event{}, fmt.Errorf("security event: attribute status %q is not an HTTP status", s)
		}
		e.Status = n
	}
	if r := a["rules"]; r != "" {
		var hits []RuleHit
		if err := json.Unmarshal([]byte(r), &hits); err != nil {
			return Event{}, fmt.Errorf("security event: attribute rules: %w", err)
		}
		if len(hits) > maxRules {
			hits = hits[:maxRules]
		}
		for i := range hits {
			h := &hits[i]
			h.Name, h.Message, h.Severity, h.Variable = clip(h.Name), clip(h.Message), clip(h.Severity), clip(h.Variable)
			h.Data = MaskMatched(h.Variable, h.Data)
		}
		e.Rules = hits
	}
	return e, nil
}

// clip cuts s to maxField bytes on a rune boundary.
func clip(s string) string {
	if len(s) <= maxField {
		return s
	}
	cut := maxField
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// MaskPath masks the values of credential-like query parameters and long
// digit runs in the query of a request path ("/a?token=x" -> "/a?token=****").
func MaskPath(p string) string {
	path, query, ok := strings.Cut(p, "?")
	if !ok || query == "" {
		return p
	}
	parts := strings.Split(query, "&")
	for i, kv := range parts {
		k, v, has := strings.Cut(kv, "=")
		if !has || v == "" {
			continue
		}
		if isSensitive(k) {
			parts[i] = k + "=****"
			continue
		}
		parts[i] = k + "=" + maskDigits(v)
	}
	return path + "?" + strings.Join(parts, "&")
}

// Filter selects records; zero fields select everything.
type Filter struct {
	// Namespaces limits records to these namespaces (nil: every one).
	Namespaces map[string]bool
	// LoadBalancer is a load balancer's name, or "namespace/name".
	LoadBalancer string
	Site         string
	// Rule matches a rule id (WAF) or a rule name (policy, authn).
	Rule string
	// Type is waf, policy, ratelimit, authn or network.
	Type         string
	Since, Until time.Time
	// Limit bounds the records returned (newest first).
	Limit int
}

// Match reports whether r passes f (every filter but Limit).
func (f *Filter) Match(r *Record) bool {
	if f.Namespaces != nil && !f.Namespaces[r.Namespace] {
		return false
	}
	if f.LoadBalancer != "" {
		if ns, n, ok := strings.Cut(f.LoadBalancer, "/"); ok {
			if r.Namespace != ns || r.LoadBalancer != n {
				return false
			}
		} else if r.LoadBalancer != f.LoadBalancer {
			return false
		}
	}
	if f.Site != "" && r.Site != f.Site {
		return false
	}
	if f.Type != "" && r.Type != f.Type {
		return false
	}
	if !f.Since.IsZero() && r.Time.Before(f.Since) {
		return false
	}
	if !f.Until.IsZero() && !r.Time.Before(f.Until) {
		return false
	}
	if f.Rule != "" {
		found := false
		for _, h := range r.Rules {
			if h.Name == f.Rule || (h.ID != 0 && strconv.Itoa(h.ID) == f.Rule) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}
