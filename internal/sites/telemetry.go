package sites

import (
	"context"
	"fmt"
	"sort"

	v1 "github.com/meridian-platform/meridian/api/v1"
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

// The telemetry answers are the API's types (api/v1).
type (
	CounterRef    = v1.CounterRef
	Event         = v1.SiteEvent
	SiteTelemetry = v1.SiteTelemetry
	SiteCounters  = v1.SiteCounters
	ObjectMetrics = v1.ObjectMetrics
)

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
