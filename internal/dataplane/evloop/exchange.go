//go:build linux

package evloop

// exchangeBegin starts what the loop keeps for the client's exchange, just
// routed to t: its timeouts, the count on its pool endpoint, its
// access-log record.
func (l *loop) exchangeBegin(c *client, t Target) {
	c.originTO, c.connectTO, c.bodyTO, c.connFailed = int64(t.Timeout), int64(t.ConnectTimeout), int64(t.BodyTimeout), false
	if t.Endpoint != nil {
		l.endpointBegin(c, t.Endpoint)
	}
	l.beginID(&t)
	if l.xl.log != nil {
		l.logBegin(c, t)
	}
}

// originTimeout is the time the origin connection o may stay silent: its
// exchange's (Target.Timeout) or the loop's.
func (l *loop) originTimeout(o *origin) int64 {
	if c := o.c; c != nil && c.originTO > 0 {
		return c.originTO
	}
	return l.originTO
}

// bodyTimeout is the time the client may pause while it sends the
// request body: its exchange's (Target.BodyTimeout) or the loop's.
func (l *loop) bodyTimeout(c *client) int64 {
	if c.bodyTO > 0 {
		return c.bodyTO
	}
	return l.bodyTO
}

// armOrigin sets the deadline of o, just given to c's exchange: the
// connect timeout while it connects, else the origin timeout. A new
// connection is counted on the exchange's endpoint (its open connections)
// until it closes.
func (l *loop) armOrigin(o *origin, c *client) {
	if o.ep == nil && !o.reused && c.ep != nil && c.ep.ConnOpened() == nil {
		o.ep = c.ep
	}
	switch {
	case !o.connecting:
		o.deadline = l.now + l.originTimeout(o)
	case c.connectTO > 0:
		o.deadline = l.now + c.connectTO
	default:
		o.deadline = l.now + l.connectTO
	}
}
