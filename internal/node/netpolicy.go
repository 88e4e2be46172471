package node

import "github.com/meridian-platform/meridian/internal/secevents"

// Events is the sink of the node's security events, for the data plane's
// own verdicts (NetworkPolicy at accept time: dataplane.Options.SecurityEvents).
func (s *Security) Events() secevents.Sink { return s.events }
