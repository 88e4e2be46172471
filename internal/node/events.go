package node

import (
	"github.com/meridian-platform/meridian/internal/distrib"
	"github.com/meridian-platform/meridian/internal/node/agent"
	"github.com/meridian-platform/meridian/internal/secevents"
)

// ForwardToAgent also queues every security event in a console-managed
// node's telemetry buffer (bounded; events wait there while the console
// is away). Use it as agent.NodeOptions.OnAgent:
//
//	o.OnAgent = sec.ForwardToAgent
func (s *Security) ForwardToAgent(a *agent.Agent) {
	s.ForwardEvents(func(e *secevents.Event) { a.RecordEvent(TelemetryEvent(e)) })
}

// TelemetryEvent is a security event as the telemetry channel carries it.
func TelemetryEvent(e *secevents.Event) distrib.Event {
	return distrib.Event{Time: e.Time, Type: secevents.TelemetryType, Message: e.Message, Attrs: e.Attrs()}
}
