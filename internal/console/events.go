package console

// Security events from the sites, attributed to tenants and kept per tenant
// in a secevents.Store under DATA_DIR/events (why files and not the object
// store: see the secevents package documentation).

import (
	"context"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/meridian-platform/meridian/internal/distrib"
	"github.com/meridian-platform/meridian/internal/secevents"
)

// The intake queue holds at most eventQueueBatches batches and
// maxQueuedEvents events (each event is bounded by secevents.FromAttrs):
// what comes beyond is dropped and counted.
const (
	eventQueueBatches = 1024
	maxQueuedEvents   = 20000
)

// eventBatch is a tenant's records from one telemetry message.
type eventBatch struct {
	tenant  string
	records []secevents.Record
}

// EventStore is the console's intake of security events: it attributes
// them to tenants, queues them (bounded) and writes them to a
// secevents.Store under DATA_DIR/events.
type EventStore struct {
	files *secevents.Store
	log   *slog.Logger
	q     chan eventBatch

	dropped, unattributed, written atomic.Uint64
	queued                         atomic.Int64
}

// NewEventStore returns an intake writing under dir; Run writes what
// Intake queues.
func NewEventStore(dir string, opts secevents.StoreOptions, log *slog.Logger) *EventStore {
	if log == nil {
		log = slog.Default()
	}
	return &EventStore{files: secevents.NewStore(dir, opts), log: log, q: make(chan eventBatch, eventQueueBatches)}
}

// EventStats are the counters of an EventStore.
type EventStats struct {
	// Written records; Dropped because the queue was full or a write
	// failed; Unattributed because no tenant's load balancer matched or
	// the event was malformed.
	Written, Dropped, Unattributed uint64
}

// Stats returns the counters.
func (s *EventStore) Stats() EventStats {
	return EventStats{Written: s.written.Load(), Dropped: s.dropped.Load(), Unattributed: s.unattributed.Load()}
}

// SnapshotFunc returns the snapshot a site runs (to attribute objects
// named as the node sees them to their tenants).
type SnapshotFunc func(tenant, site string) (*distrib.Snapshot, error)

// Intake takes the security events of a telemetry message from site of
// owner, attributes each to the tenant owning its load balancer (on a
// shared site, a guest tenant's load balancers run under renamed
// namespaces) and queues them for writing. It never blocks: when the queue
// is full the events are dropped and counted.
func (s *EventStore) Intake(snapshot SnapshotFunc, owner, site string, t *distrib.Telemetry) {
	var snap *distrib.Snapshot
	if snapshot != nil {
		snap, _ = snapshot(owner, site)
	}
	byTenant := map[string][]secevents.Record{}
	for _, ev := range t.Events {
		if ev.Type != secevents.TelemetryType {
			continue
		}
		e, err := secevents.FromAttrs(ev.Time, ev.Message, ev.Attrs)
		if err != nil {
			s.unattributed.Add(1)
			continue
		}
		tenant, rec, ok := attribute(snap, owner, site, &e)
		if !ok {
			s.unattributed.Add(1)
			continue
		}
		byTenant[tenant] = append(byTenant[tenant], rec)
	}
	for tenant, recs := range byTenant {
		n := int64(len(recs))
		if s.queued.Add(n) > maxQueuedEvents {
			s.queued.Add(-n)
			s.dropped.Add(uint64(n))
			continue
		}
		select {
		case s.q <- eventBatch{tenant: tenant, records: recs}:
		default:
			s.queued.Add(-n)
			s.dropped.Add(uint64(n))
		}
	}
}

// attribute names the tenant and the load balancer of an event: through
// its load balancer, or for a NetworkPolicy event without one, through the
// policy (its Source, "namespace/name/rule"). An event of an object the
// site's current snapshot does not hold (deleted since) goes to the site's
// owner unless its namespace is a guest's renamed one: a guest's event is
// never shown to the owner.
func attribute(snap *distrib.Snapshot, owner, site string, e *secevents.Event) (string, secevents.Record, bool) {
	var kinds []string
	var wireNS, name string
	switch {
	case e.LoadBalancer != "":
		wireNS, name, _ = strings.Cut(e.LoadBalancer, "/")
		kinds = []string{"HTTPLoadBalancer", "TCPLoadBalancer"}
	case e.Kind == secevents.KindNetwork:
		parts := strings.SplitN(e.Source, "/", 3)
		if len(parts) >= 2 {
			wireNS, name = parts[0], parts[1]
		}
		kinds = []string{"NetworkPolicy"}
	}
	if wireNS == "" || name == "" {
		return "", secevents.Record{}, false
	}
	tenant, ns := "", wireNS
	if snap != nil {
		for _, k := range kinds {
			if t, orig, ok := snap.Origin(distrib.ObjectRef{Kind: k, Namespace: wireNS, Name: name}); ok {
				tenant, ns, name = t, orig.Namespace, orig.Name
				break
			}
		}
	}
	if tenant == "" {
		if strings.Contains(wireNS, "--") {
			return "", secevents.Record{}, false
		}
		tenant = owner
	}
	source, msg := e.Source, e.Message
	if ns != wireNS {
		// Names as the tenant knows them, never the renamed namespace.
		if strings.HasPrefix(source, wireNS+"/") {
			source = ns + source[len(wireNS):]
		}
		msg = strings.ReplaceAll(msg, wireNS+"/", ns+"/")
	}
	lb := name
	if e.LoadBalancer == "" {
		lb = ""
	}
	// The data plane names routes "namespace/loadbalancer#route": keep the
	// route's own name (the node's namespace may be a renamed one).
	route := strings.TrimPrefix(e.Route, e.LoadBalancer+"#")
	return tenant, secevents.Record{Time: e.Time, Type: e.Kind, Action: e.Action, RequestID: e.RequestID,
		Namespace: ns, LoadBalancer: lb, Route: route, Site: site, Client: e.Client, Method: e.Method,
		Host: e.Host, Path: e.Path, Status: e.Status, Source: source, Message: msg, Rules: e.Rules}, true
}

// Run writes queued batches until ctx ends, then writes what is queued.
// Once a minute it logs how many events were dropped or could not be
// attributed, when that grew.
func (s *EventStore) Run(ctx context.Context) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	var last EventStats
	for {
		select {
		case b := <-s.q:
			s.write(b)
		case <-t.C:
			if st := s.Stats(); st.Dropped > last.Dropped || st.Unattributed > last.Unattributed {
				s.log.Warn("security events lost at the console", "dropped", st.Dropped-last.Dropped,
					"unattributed", st.Unattributed-last.Unattributed, "written", st.Written-last.Written)
				last = st
			}
		case <-ctx.Done():
			for {
				select {
				case b := <-s.q:
					s.write(b)
				default:
					return
				}
			}
		}
	}
}

func (s *EventStore) write(b eventBatch) {
	defer s.queued.Add(-int64(len(b.records)))
	if err := s.files.Append(b.tenant, b.records); err != nil {
		s.dropped.Add(uint64(len(b.records)))
		s.log.Warn("writing security events", "tenant", b.tenant, "err", err)
		return
	}
	s.written.Add(uint64(len(b.records)))
}

// List returns tenant's records matching f, newest first (at most
// f.Limit, default 100, capped at secevents.MaxListLimit).
func (s *EventStore) List(ctx context.Context, tenant string, f secevents.Filter) ([]secevents.Record, error) {
	return s.files.List(ctx, tenant, f)
}

// eventsIntake is the distributor's OnTelemetry hook: security events go
// to the event store, attributed through the site's current snapshot.
func (c *Console) eventsIntake() func(tenant, site string, t *distrib.Telemetry) {
	return func(tenant, site string, t *distrib.Telemetry) {
		if c.events == nil || len(t.Events) == 0 {
			return
		}
		var snap SnapshotFunc
		if c.sites != nil && c.sites.dist != nil {
			snap = c.sites.dist.Snapshot
		}
		c.events.Intake(snap, tenant, site, t)
	}
}

// EventStats returns the counters of the security event intake.
func (c *Console) EventStats() EventStats { return c.events.Stats() }
