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
