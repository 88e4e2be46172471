//go:build !linux

package dataplane

import (
	"net"

	"github.com/meridian-platform/meridian/internal/dataplane/config"
)

// evloopSupported says whether this build has the event-loop engine (the
// goroutine engine serves every listener elsewhere).
const evloopSupported = false

type evEngine struct{}

func (e *evEngine) addr() net.Addr              { return nil }
func (e *evEngine) setTimeouts(config.Timeouts) {}
func (e *evEngine) shutdown(*listener)          {}
func (e *evEngine) forceClose()                 {}

func (s *Server) startEvloop(*listener, *config.HTTPListener) error { return errNoEvloop }
