//go:build linux

package evloop

// selfAnswer answers the client's request (its head is the first end
// bytes of what is buffered) with t.Answer, and goes on with the requests
// buffered after it. A request with a body, and a TLS client's, go to
// Handoff instead.
func (l *loop) selfAnswer(c *client, t Target, rh *reqHead, end int) {
	if c.ts != nil || rh.chunked || rh.contentLength > 0 {
		l.handoffOr(c, problemNoRoute)
		return
	}
	l.nReqs.Add(1)
	c.inExchange, c.tag, c.start, c.status, c.sent, c.headSent = true, t.Tag, l.now, 0, 0, 0
	c.in = int64(len(rh.headers)) + 2
	l.exchangeBegin(c, t)
	closing := rh.close || l.drainStarted
	b, status, body := t.Answer.Answer(l.scratch[:0], &l.req, closing)
	c.r += end
	c.scanned = 0
	c.status = status
	c.sent, c.headSent = int64(len(b)), int64(len(b)-body)
	l.observe(c, status)
	n, e := rawWrite(c.fd, b)
	l.scratch = b[:0]
	if e != 0 || n < len(b) || closing {
		// (A short answer fits an idle connection's socket buffer; a
		// client that does not read its answers loses the connection.)
		l.closeClient(c)
		return
	}
	c.state = csIdle
	c.deadline = l.now + l.idleTO
	if c.r < c.w {
		c.deadline = l.now + l.headerTO
		l.clientProgress(c) // pipelined requests
	}
}
