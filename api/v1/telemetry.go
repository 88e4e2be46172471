package v1

import "time"

// CounterRef names an object of the tenant and carries its latest
// counters.
type CounterRef struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
	// Counters are the object's counters by name (requests, bytes, ...).
	Counters map[string]float64 `json:"counters,omitempty"`
}

// SiteEvent is something that happened on a site's node (a reload, a
// configuration refused, a certificate renewed).
type SiteEvent struct {
	Time    time.Time         `json:"time"`
	Type    string            `json:"type"`
	Message string            `json:"message,omitempty"`
	Attrs   map[string]string `json:"attrs,omitempty"`
}

// SiteTelemetry is the answer of GET /api/v1/sites/{name}/telemetry: what
// the site's node last reported, as the console holds it in memory (empty
// after a console restart until the node reports again).
type SiteTelemetry struct {
	APIVersion string     `json:"apiVersion"`
	Kind       string     `json:"kind"`
	Site       string     `json:"site"`
	Online     bool       `json:"online"`
	LastSeen   *time.Time `json:"lastSeen,omitempty"`
	// Counters are node-wide.
	Counters map[string]float64 `json:"counters,omitempty"`
	// Objects are the latest counters of the caller's tenant's objects on
	// the site (never another tenant's on a shared site).
	Objects []CounterRef `json:"objects,omitempty"`
	// Events are the most recent events of the node (security events are
	// not among them: they are listed, per tenant, by securityevents).
	Events []SiteEvent `json:"events,omitempty"`
	// DroppedEvents counts events lost on the node or the console.
	DroppedEvents int `json:"droppedEvents,omitempty"`
}

// SiteCounters are one object's counters on one site.
type SiteCounters struct {
	Site string `json:"site"`
	// Owner is the tenant that leased the site (absent for the tenant's
	// own sites).
	Owner    string             `json:"owner,omitempty"`
	Online   bool               `json:"online"`
	LastSeen *time.Time         `json:"lastSeen,omitempty"`
	Counters map[string]float64 `json:"counters"`
}

// ObjectMetrics is the answer of GET .../httploadbalancers/{name}/metrics
// (and tcploadbalancers): the object's latest counters on each site that
// reported them, and their sum.
type ObjectMetrics struct {
	APIVersion string         `json:"apiVersion"`
	Kind       string         `json:"kind"`
	Object     CounterRef     `json:"object"`
	Sites      []SiteCounters `json:"sites"`
	// Total is the sum of the sites' counters.
	Total map[string]float64 `json:"total"`
}
