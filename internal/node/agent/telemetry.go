package agent

import (
	"context"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/meridian-platform/meridian/internal/distrib"
)

// telemetry buffers counters and events for the console: events wait on
// the node, within MaxBufferedEvents (oldest dropped first and counted),
// while the console is away.
type telemetry struct {
	counters map[string]float64
	// objects are per-object counters, by ref key.
	objects map[string]distrib.ObjectCounters
	changed bool
	events  []distrib.Event
	dropped int
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

// SetObjectCounter records the latest value of a counter of one object
// (named as the console sent it); on a shared site the console shows it
// only to the object's tenant.
func (a *Agent) SetObjectCounter(ref distrib.ObjectRef, name string, v float64) {
	a.telMu.Lock()
	defer a.telMu.Unlock()
	if a.tel.objects == nil {
		a.tel.objects = map[string]distrib.ObjectCounters{}
	}
	k := refKeyOf(ref)
	oc, ok := a.tel.objects[k]
	if !ok {
		oc = distrib.ObjectCounters{ObjectRef: ref, Counters: map[string]float64{}}
		a.tel.objects[k] = oc
	}
	if cur, ok := oc.Counters[name]; ok && cur == v {
		return
	}
	oc.Counters[name] = v
	a.tel.changed = true
}

// objectMetrics are the data plane's per-load-balancer metric families
// reported as object counters: family -> counter name.
var objectMetrics = map[string]string{
	"meridian_http_requests_total":            "requests_total",
	"meridian_http_request_bytes_total":       "request_bytes_total",
	"meridian_http_response_body_bytes_total": "response_body_bytes_total",
	"meridian_tcp_sessions_total":             "sessions_total",
}

// ListenerOwners is implemented by appliers that know which load
// balancers use each listener ("address:port"); the agent then reports the
// open connections of a listener as listener_connections of each of them.
type ListenerOwners interface {
	ListenerOwners() map[string][]distrib.ObjectRef
}

// gatherObjectCounters reads the data plane's per-load-balancer counters
// from Options.ObjectMetrics (summed over routes and pools) into object
// counters: requests_total and, per status class, requests_1xx ..
// requests_5xx and requests_other; the byte counters; sessions_total for
// TCP; and listener_connections, the connections open on the object's
// listeners (shared with the other load balancers on the same listener).
func (a *Agent) gatherObjectCounters() {
	if a.opts.ObjectMetrics == nil {
		return
	}
	mfs, err := a.opts.ObjectMetrics.Gather()
	if err != nil {
		a.log.Warn("gathering data-plane metrics", "err", err)
		return
	}
	type key struct {
		ref  distrib.ObjectRef
		name string
	}
	sums := map[key]float64{}
	var owners map[string][]distrib.ObjectRef
	if lo, ok := a.opts.Applier.(ListenerOwners); ok {
		owners = lo.ListenerOwners()
	}
	for _, mf := range mfs {
		if mf.GetName() == "meridian_active_connections" {
			for _, m := range mf.GetMetric() {
				if m.GetGauge() == nil {
					continue
				}
				for _, lp := range m.GetLabel() {
					if lp.GetName() != "listener" {
						continue
					}
					for _, ref := range owners[lp.GetValue()] {
						sums[key{ref, "listener_connections"}] += m.GetGauge().GetValue()
					}
				}
			}
			continue
		}
		name, ok := objectMetrics[mf.GetName()]
		if !ok {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, lp := range m.GetLabel() {
				labels[lp.GetName()] = lp.GetValue()
			}
			ref := distrib.ObjectRef{Kind: "HTTPLoadBalancer", Namespace: labels["namespace"], Name: labels["loadbalancer"]}
			if mf.GetName() == "meridian_tcp_sessions_total" {
				ns, n, _ := strings.Cut(labels["loadbalancer"], "/")
				ref = distrib.ObjectRef{Kind: "TCPLoadBalancer", Namespace: ns, Name: n}
			}
			if ref.Name == "" || m.GetCounter() == nil {
				continue
			}
			sums[key{ref, name}] += m.GetCounter().GetValue()
			if code := labels["code"]; code != "" && name == "requests_total" {
				sums[key{ref, "requests_" + code}] += m.GetCounter().GetValue()
			}
		}
	}
	// Objects whose listeners closed report zero open connections.
	a.telMu.Lock()
	for _, oc := range a.tel.objects {
		if _, ok := oc.Counters["listener_connections"]; ok {
			if _, now := sums[key{oc.ObjectRef, "listener_connections"}]; !now {
				sums[key{oc.ObjectRef, "listener_connections"}] = 0
			}
		}
	}
	a.telMu.Unlock()
	for k, v := range sums {
		a.SetObjectCounter(k.ref, k.name, v)
	}
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
	a.kickTelemetry()
}

// kickTelemetry has the telemetry loop send what is queued at once.
func (a *Agent) kickTelemetry() {
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
		keys := make([]string, 0, len(a.tel.objects))
		for k := range a.tel.objects {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		t.Objects = make([]distrib.ObjectCounters, 0, len(keys))
		for _, k := range keys {
			oc := a.tel.objects[k]
			c := make(map[string]float64, len(oc.Counters))
			for n, v := range oc.Counters {
				c[n] = v
			}
			t.Objects = append(t.Objects, distrib.ObjectCounters{ObjectRef: oc.ObjectRef, Counters: c})
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
// TelemetryInterval for counters. Reports are numbered; acked is the last
// one the console confirmed. The events of reports left unconfirmed when
// the loop ends go back to the queue, when the console confirms reports
// at all (a report written on a stream whose console just went away is
// lost otherwise).
func (a *Agent) telemetryLoop(ctx context.Context, send func(*distrib.NodeMessage) error, acked *atomic.Uint64) {
	t := time.NewTicker(a.opts.TelemetryInterval)
	defer t.Stop()
	var seq uint64
	var unconfirmed []*distrib.Telemetry // sent with events, oldest first
	confirmed := func() {
		n := acked.Load()
		for len(unconfirmed) > 0 && unconfirmed[0].Seq <= n {
			unconfirmed = unconfirmed[1:]
		}
	}
	defer func() {
		confirmed()
		if len(unconfirmed) == 0 || !a.telAcks.Load() {
			return
		}
		var evs []distrib.Event
		for _, r := range unconfirmed {
			evs = append(evs, r.Events...)
		}
		a.putBack(&distrib.Telemetry{Events: evs})
		a.kickTelemetry()
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			a.gatherObjectCounters()
		case <-a.telKick:
		}
		confirmed()
		if rep := a.takeTelemetry(); rep != nil {
			seq++
			rep.Seq = seq
			if err := send(&distrib.NodeMessage{Telemetry: rep}); err != nil {
				a.putBack(rep)
				a.kickTelemetry()
				return
			}
			if len(rep.Events) > 0 {
				unconfirmed = append(unconfirmed, &distrib.Telemetry{Seq: rep.Seq, Events: rep.Events})
				// Bounded as the queue is: the oldest reports go first.
				total := 0
				for _, r := range unconfirmed {
					total += len(r.Events)
				}
				for len(unconfirmed) > 1 && total > a.opts.MaxBufferedEvents {
					total -= len(unconfirmed[0].Events)
					unconfirmed = unconfirmed[1:]
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}
