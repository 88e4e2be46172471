//go:build linux

package evloop

// maxQueuedAnswers bounds the ciphertext of a TLS client's answers that
// its socket has not taken yet: a client that sends requests the loop
// answers itself and does not read the answers loses the connection once
// more waits (as a plaintext client does once its socket buffer is full).
const maxQueuedAnswers = 256 << 10

// selfAnswer answers the client's request (its head is the first end
// bytes of what is buffered) with t.Answer, and goes on with the requests
// buffered after it. A request with a body goes to Handoff instead. A TLS
// client's answer goes through its tls.Conn (writeClient): records of the
// connection's session, what the socket does not take at once written on
// EPOLLOUT; the connection stays open for the next request unless the
// answer closes it, and then ends with close_notify (closeClient).
func (l *loop) selfAnswer(c *client, t Target, rh *reqHead, end int) {
	if rh.chunked || rh.contentLength > 0 {
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
	n, e := l.writeClient(c, b)
	l.scratch = b[:0]
	if e != 0 || n < len(b) || closing || c.ts != nil && len(c.ts.out)-c.ts.off > maxQueuedAnswers {
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
