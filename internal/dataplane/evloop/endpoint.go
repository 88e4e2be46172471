//go:build linux

package evloop

import (
	"time"

	"github.com/meridian-platform/meridian/internal/lb"
)

// endpointBegin counts the client's exchange, just routed, on the pool
// endpoint it goes to.
func (l *loop) endpointBegin(c *client, e *lb.Endpoint) {
	c.ep = e
	e.Begin()
}

// endpointEnd ends the count of the client's exchange on its endpoint:
// with the origin's status when it answered, as a connect failure when
// the connection could not be made (refused, timed out), else (a reset,
// a timeout, the client gone before an answer) as neither.
func (l *loop) endpointEnd(c *client, _ int) {
	e := c.ep
	c.ep = nil
	e.End(lb.Result{Status: c.status, ConnectFailed: c.connFailed && c.status == 0, Duration: time.Duration(l.now - c.start)})
}

// dropCounts ends what a socket counts on its endpoint when the loop
// stops with it open: the exchange in flight (as neither a success nor a
// failure), the origin connection.
func (l *loop) dropCounts(s sock) {
	if c := s.c; c != nil && c.ep != nil {
		c.ep.End(lb.Result{})
		c.ep = nil
	}
	if o := s.o; o != nil && o.ep != nil {
		o.ep.ConnClosed()
		o.ep = nil
	}
}
