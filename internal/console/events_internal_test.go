package console

import (
	"context"
	"testing"
	"time"

	"github.com/meridian-platform/meridian/internal/distrib"
	"github.com/meridian-platform/meridian/internal/secevents"
)

// TestEventIntakeIsBounded: while the writer is stalled, the intake keeps
// at most maxQueuedEvents events and counts the rest as dropped; what was
// queued is written once the writer runs.
func TestEventIntakeIsBounded(t *testing.T) {
	s := NewEventStore(t.TempDir(), secevents.StoreOptions{}, nil)
	batch := make([]distrib.Event, 1000)
	for i := range batch {
		e := &secevents.Event{Time: time.Now().UTC(), Kind: secevents.KindRateLimit, Action: secevents.ActionLimited, LoadBalancer: "retail/shop"}
		batch[i] = distrib.Event{Time: e.Time, Type: secevents.TelemetryType, Attrs: e.Attrs()}
	}
	for i := 0; i < 30; i++ {
		s.Intake(nil, "acme", "s1", &distrib.Telemetry{Events: batch})
	}
	if q, st := s.queued.Load(), s.Stats(); q > maxQueuedEvents || st.Dropped != 30*1000-uint64(q) {
		t.Fatalf("queued %d, stats %+v", q, st)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s.Run(ctx) // drains the queue, then returns
	if st := s.Stats(); st.Written != maxQueuedEvents || s.queued.Load() != 0 {
		t.Fatalf("after the writer ran: %+v, %d queued", st, s.queued.Load())
	}
	got, err := s.List(context.Background(), "acme", secevents.Filter{Limit: secevents.MaxListLimit})
	if err != nil || len(got) != secevents.MaxListLimit {
		t.Fatalf("%v, %d events listed", err, len(got))
	}
}
