package agent

import (
	"context"
	"time"

	"github.com/meridian-platform/meridian/internal/distrib"
)

// telemetry buffers counters and events for the console: events wait on
// the node, within MaxBufferedEvents (oldest dropped first and counted),
// while the console is away.
type telemetry struct {
	counters map[string]float64
	changed  bool
	events   []distrib.Event
	dropped  int
}

// SetCounter records the latest value of a counter; it goes to the console
// with the next telemetry report.
func (a *Agent) SetCounter(name string, v float64) {
	a.telMu.Lock()
	defer a.telMu.Unlock()
	if a.tel.counters == nil {
		a.tel.counters = map[string]float64{}
	}
	a.tel.counters[name] = v
	a.tel.changed = true
}

// RecordEvent queues an event for the console.
func (a *Agent) RecordEvent(ev distrib.Event) {
	if ev.Time.IsZero() {
		ev.Time = a.opts.Now().UTC()
	}
	a.telMu.Lock()
	a.tel.events = append(a.tel.events, ev)
	a.trimEventsLocked()
	a.telMu.Unlock()
	select {
	case a.telKick <- struct{}{}:
	default:
	}
}

func (a *Agent) trimEventsLocked() {
	if over := len(a.tel.events) - a.opts.MaxBufferedEvents; over > 0 {
		a.tel.dropped += over
		a.tel.events = append([]distrib.Event(nil), a.tel.events[over:]...)
	}
}

// BufferedEvents returns how many events wait for the console.
func (a *Agent) BufferedEvents() int {
	a.telMu.Lock()
	defer a.telMu.Unlock()
	return len(a.tel.events)
}

// takeTelemetry empties the buffer into a message (nil when there is
// nothing new).
func (a *Agent) takeTelemetry() *distrib.Telemetry {
	a.telMu.Lock()
	defer a.telMu.Unlock()
	if !a.tel.changed && len(a.tel.events) == 0 && a.tel.dropped == 0 {
		return nil
	}
	t := &distrib.Telemetry{Events: a.tel.events, Dropped: a.tel.dropped}
	if a.tel.changed {
		t.Counters = make(map[string]float64, len(a.tel.counters))
		for k, v := range a.tel.counters {
			t.Counters[k] = v
		}
	}
	a.tel.events, a.tel.dropped, a.tel.changed = nil, 0, false
	return t
}

// putBack returns an unsent report to the buffer (its events first).
func (a *Agent) putBack(t *distrib.Telemetry) {
	a.telMu.Lock()
	defer a.telMu.Unlock()
	a.tel.events = append(t.Events, a.tel.events...)
	a.tel.dropped += t.Dropped
	if t.Counters != nil {
		a.tel.changed = true
	}
	a.trimEventsLocked()
}

// telemetryLoop sends reports on the stream until ctx ends: at once when
// events are queued (at most one report per 100ms), and every
// TelemetryInterval for counters.
func (a *Agent) telemetryLoop(ctx context.Context, send func(*distrib.NodeMessage) error) {
	t := time.NewTicker(a.opts.TelemetryInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-a.telKick:
		}
		if rep := a.takeTelemetry(); rep != nil {
			if err := send(&distrib.NodeMessage{Telemetry: rep}); err != nil {
				a.putBack(rep)
				return
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}
