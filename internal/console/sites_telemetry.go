package console

import (
	"context"
	"sort"
	"time"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/internal/apiserver"
	"github.com/meridian-platform/meridian/internal/distrib"
	"github.com/meridian-platform/meridian/internal/secevents"
	"github.com/meridian-platform/meridian/internal/sites"
)

// serveTelemetry mounts the read-only subresources over the counters
// nodes report: GET /api/v1/sites/{name}/telemetry and
// GET .../{httploadbalancers,tcploadbalancers}/{name}/metrics. The API
// server checks "get" on the kind first; each answer holds only the
// caller's tenant's objects.
func (c *Console) serveTelemetry() {
	d := c.sites.dist
	c.api.HandleSubresource("Site", sites.TelemetrySubresource, func(_ context.Context, r apiserver.SubresourceRequest) (any, error) {
		return siteTelemetry(d, r.Tenant, r.Object.GetMetadata().Name), nil
	})
	for _, kind := range []string{"HTTPLoadBalancer", "TCPLoadBalancer"} {
		c.api.HandleSubresource(kind, sites.MetricsSubresource, func(_ context.Context, r apiserver.SubresourceRequest) (any, error) {
			md := r.Object.GetMetadata()
			return objectMetrics(d, r.Tenant, distrib.ObjectRef{Kind: kind, Namespace: md.Namespace, Name: md.Name}), nil
		})
	}
}

func siteTelemetry(d *distrib.Distributor, tenant, site string) *sites.SiteTelemetry {
	out := &sites.SiteTelemetry{APIVersion: v1.APIVersion, Kind: "SiteTelemetry", Site: site}
	if st, ok := d.State(tenant, site); ok {
		out.Online = st.Online
		out.LastSeen = timePtr(st.LastSeen)
	}
	tel := d.Telemetry(tenant, site)
	if len(tel.Counters) > 0 {
		out.Counters = tel.Counters
	}
	out.DroppedEvents = tel.Dropped
	for _, ev := range tel.Events {
		if ev.Type == secevents.TelemetryType {
			// Security events belong to the tenant of their load
			// balancer (a guest's on a shared site): they are served,
			// attributed, by GET .../securityevents.
			continue
		}
		out.Events = append(out.Events, sites.Event{Time: ev.Time, Type: ev.Type, Message: ev.Message, Attrs: ev.Attrs})
	}
	for ref, c := range d.ObjectTelemetry(tenant, tenant, site) {
		out.Objects = append(out.Objects, sites.CounterRef{Kind: ref.Kind, Namespace: ref.Namespace, Name: ref.Name, Counters: c})
	}
	sortRefs(out.Objects)
	return out
}

func objectMetrics(d *distrib.Distributor, tenant string, ref distrib.ObjectRef) *sites.ObjectMetrics {
	out := &sites.ObjectMetrics{APIVersion: v1.APIVersion, Kind: "ObjectMetrics",
		Object: sites.CounterRef{Kind: ref.Kind, Namespace: ref.Namespace, Name: ref.Name}, Sites: []sites.SiteCounters{}}
	for _, sc := range d.ObjectSites(tenant, ref) {
		s := sites.SiteCounters{Site: sc.Site, Online: sc.Online, LastSeen: timePtr(sc.LastSeen), Counters: sc.Counters}
		if sc.Owner != tenant {
			s.Owner = sc.Owner
		}
		out.Sites = append(out.Sites, s)
	}
	out.Total = sites.SumCounters(out.Sites)
	return out
}

func sortRefs(refs []sites.CounterRef) {
	key := func(r sites.CounterRef) string { return r.Kind + "/" + r.Namespace + "/" + r.Name }
	sort.Slice(refs, func(i, j int) bool { return key(refs[i]) < key(refs[j]) })
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}
