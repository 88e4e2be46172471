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
// with the origin's status when it answered; a 502 of the loop's own
// (nothing answered: the connection could not be made, or broke before an
// answer) counts as a connect failure; anything else (a timeout, the
// client gone before an answer) as neither.
func (l *loop) endpointEnd(c *client, status int) {
	e := c.ep
	c.ep = nil
	res := lb.Result{Status: c.status, Duration: time.Duration(l.now - c.start)}
	if c.status == 0 && status == 502 {
		res.ConnectFailed = true
	}
	e.End(res)
}
