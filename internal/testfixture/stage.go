package testfixture

import (
	"strings"
	"sync"

	"github.com/meridian-platform/meridian/internal/secevents"
)

// Headers is a request's headers for stage tests (a dataplane.Headers):
// names are kept lower-case, one value each.
type Headers map[string]string

// Peek returns the value of n.
func (h Headers) Peek(n string) ([]byte, bool) { v, ok := h[strings.ToLower(n)]; return []byte(v), ok }

// Set sets n to v.
func (h Headers) Set(n, v string) { h[strings.ToLower(n)] = v }

// SetBytes sets n to v.
func (h Headers) SetBytes(n string, v []byte) { h[strings.ToLower(n)] = string(v) }

// Add sets n to v (one value per name).
func (h Headers) Add(n, v string) { h[strings.ToLower(n)] = v }

// Del removes n.
func (h Headers) Del(n string) { delete(h, strings.ToLower(n)) }

// VisitAll calls f for every header.
func (h Headers) VisitAll(f func(n, v []byte)) {
	for k, v := range h {
		f([]byte(k), []byte(v))
	}
}

// Sink keeps the security events a stage emits.
type Sink struct {
	mu     sync.Mutex
	events []*secevents.Event
}

// Emit keeps e.
func (s *Sink) Emit(e *secevents.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, e)
}

// Events returns the events emitted so far.
func (s *Sink) Events() []*secevents.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*secevents.Event(nil), s.events...)
}
