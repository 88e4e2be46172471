package v1

import "time"

// SecurityEvent is one security verdict a site reported (a WAF block or
// detection, a policy deny, a rate-limit hit, an authentication failure,
// a connection refused by a NetworkPolicy), attributed to an object of
// the tenant. It is what GET /api/v1/[namespaces/NS/]securityevents
// lists (SecurityEventList); it is not an object of the store.
type SecurityEvent struct {
	Time time.Time `json:"time"`
	// Type is waf, policy, ratelimit, authn or network.
	Type string `json:"type"`
	// Action is blocked, detected, denied, limited or rejected.
	Action    string `json:"action"`
	RequestID string `json:"requestId,omitempty"`
	// Namespace and LoadBalancer name the load balancer (or, for network
	// events, the NetworkPolicy) in the tenant.
	Namespace    string `json:"namespace,omitempty"`
	LoadBalancer string `json:"loadBalancer,omitempty"`
	Route        string `json:"route,omitempty"`
	Site         string `json:"site,omitempty"`
	Client       string `json:"client,omitempty"`
	Method       string `json:"method,omitempty"`
	Host         string `json:"host,omitempty"`
	Path         string `json:"path,omitempty"`
	Status       int    `json:"status,omitempty"`
	// Source names the object that decided ("namespace/name" of an
	// AppFirewall, ServicePolicy, RateLimiter or NetworkPolicy).
	Source  string            `json:"source,omitempty"`
	Message string            `json:"message,omitempty"`
	Rules   []SecurityRuleHit `json:"rules,omitempty"`
}

// SecurityRuleHit is one rule that matched.
type SecurityRuleHit struct {
	ID       int    `json:"id,omitempty"`
	Name     string `json:"name,omitempty"`
	Message  string `json:"message,omitempty"`
	Severity string `json:"severity,omitempty"`
	// Variable is where the rule matched (e.g. ARGS:id).
	Variable string `json:"variable,omitempty"`
	// Data is the matched data, masked by the node.
	Data string `json:"data,omitempty"`
}

// SecurityEventList is the answer to a security-event query, newest
// first.
type SecurityEventList struct {
	APIVersion string          `json:"apiVersion"`
	Kind       string          `json:"kind"`
	Items      []SecurityEvent `json:"items"`
}
