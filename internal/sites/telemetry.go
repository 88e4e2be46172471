package sites

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/meridian-platform/meridian/client"
)

// Subresources served by the console over the counters nodes report.
const (
	// TelemetrySubresource is GET /api/v1/sites/{name}/telemetry.
	TelemetrySubresource = "telemetry"
	// MetricsSubresource is GET /api/v1/namespaces/{ns}/httploadbalancers/{name}/metrics
	// (and tcploadbalancers).
	MetricsSubresource = "metrics"
)

// CounterRef names an object and carries its counters.
type CounterRef struct {
	Kind      string             `json:"kind"`
	Namespace string             `json:"namespace,omitempty"`
	Name      string             `json:"name"`
	Counters  map[string]float64 `json:"counters,omitempty"`
}

// Event is something that happened on a site's node.
type Event struct {
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
	Events []Event `json:"events,omitempty"`
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
	APIVersion string             `json:"apiVersion"`
	Kind       string             `json:"kind"`
	Object     CounterRef         `json:"object"`
	Sites      []SiteCounters     `json:"sites"`
	Total      map[string]float64 `json:"total"`
}

// SumCounters adds the sites' counters.
func SumCounters(sites []SiteCounters) map[string]float64 {
	out := map[string]float64{}
	for _, s := range sites {
		for k, v := range s.Counters {
			out[k] += v
		}
	}
	return out
}

// SortedCounterNames returns the names of counters, sorted.
func SortedCounterNames(c map[string]float64) []string {
	names := make([]string, 0, len(c))
	for k := range c {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// GetSiteTelemetry reads a site's telemetry.
func GetSiteTelemetry(ctx context.Context, c *client.Client, name string) (*SiteTelemetry, error) {
	var out SiteTelemetry
	if err := c.GetSubresource(ctx, "Site", "", name, TelemetrySubresource, &out); err != nil {
		return nil, fmt.Errorf("reading the telemetry of site %q: %w", name, err)
	}
	return &out, nil
}

// GetObjectMetrics reads the per-site counters of a load balancer.
func GetObjectMetrics(ctx context.Context, c *client.Client, kind, namespace, name string) (*ObjectMetrics, error) {
	var out ObjectMetrics
	if err := c.GetSubresource(ctx, kind, namespace, name, MetricsSubresource, &out); err != nil {
		return nil, fmt.Errorf("reading the metrics of %s %q: %w", kind, name, err)
	}
	return &out, nil
}
