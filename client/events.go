package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"

	v1 "github.com/meridian-platform/meridian/api/v1"
)

// SecurityEvent, SecurityRuleHit and SecurityEventList are the API's
// types (api/v1).
type (
	SecurityEvent     = v1.SecurityEvent
	SecurityRuleHit   = v1.SecurityRuleHit
	SecurityEventList = v1.SecurityEventList
)

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
