package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// SecurityEvent is one security verdict a site reported (a WAF block or
// detection, a policy deny, a rate-limit hit, an authentication failure),
// attributed to a load balancer of the tenant.
type SecurityEvent struct {
	Time time.Time `json:"time"`
	// Type is waf, policy, ratelimit, authn or network.
	Type string `json:"type"`
	// Action is blocked, detected, denied, limited or rejected.
	Action       string            `json:"action"`
	RequestID    string            `json:"requestId,omitempty"`
	Namespace    string            `json:"namespace,omitempty"`
	LoadBalancer string            `json:"loadBalancer,omitempty"`
	Route        string            `json:"route,omitempty"`
	Site         string            `json:"site,omitempty"`
	Client       string            `json:"client,omitempty"`
	Method       string            `json:"method,omitempty"`
	Host         string            `json:"host,omitempty"`
	Path         string            `json:"path,omitempty"`
	Status       int               `json:"status,omitempty"`
	Source       string            `json:"source,omitempty"`
	Message      string            `json:"message,omitempty"`
	Rules        []SecurityRuleHit `json:"rules,omitempty"`
}

// SecurityRuleHit is one rule that matched; Data is masked by the node.
type SecurityRuleHit struct {
	ID       int    `json:"id,omitempty"`
	Name     string `json:"name,omitempty"`
	Message  string `json:"message,omitempty"`
	Severity string `json:"severity,omitempty"`
	Variable string `json:"variable,omitempty"`
	Data     string `json:"data,omitempty"`
}

// SecurityEventList is the answer to a security event query (newest
// first).
type SecurityEventList struct {
	APIVersion string          `json:"apiVersion"`
	Kind       string          `json:"kind"`
	Items      []SecurityEvent `json:"items"`
}

// SecurityEventFilter selects security events; zero fields select all.
type SecurityEventFilter struct {
	// Namespace limits the query to one namespace ("": every namespace
	// the caller may read events in).
	Namespace string
	// LoadBalancer is a name, or NAMESPACE/NAME.
	LoadBalancer string
	Site         string
	// Rule is a rule id (WAF) or a rule name (policy, authn).
	Rule         string
	Type         string
	Since, Until time.Time
	Limit        int
}

// SecurityEvents lists the tenant's security events matching f, newest
// first.
func (c *Client) SecurityEvents(ctx context.Context, f SecurityEventFilter) (*SecurityEventList, error) {
	q := url.Values{}
	for k, v := range map[string]string{"loadBalancer": f.LoadBalancer, "site": f.Site, "rule": f.Rule, "type": f.Type} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if !f.Since.IsZero() {
		q.Set("since", f.Since.UTC().Format(time.RFC3339Nano))
	}
	if !f.Until.IsZero() {
		q.Set("until", f.Until.UTC().Format(time.RFC3339Nano))
	}
	if f.Limit > 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	path := "/api/v1/securityevents"
	if f.Namespace != "" {
		path = "/api/v1/namespaces/" + url.PathEscape(f.Namespace) + "/securityevents"
	}
	out := &SecurityEventList{}
	if err := c.call(ctx, request{method: http.MethodGet, path: path, query: q}, out); err != nil {
		return nil, err
	}
	return out, nil
}
