//go:build linux

package evloop

import (
	"golang.org/x/sys/unix"

	"github.com/meridian-platform/meridian/internal/dataplane/h1"
)

// Lingering close (RFC 9112 section 9.6): a loop that ends a connection
// right after an answer, while the client may still be sending (the rest
// of a request body, pipelined requests), must not close the socket with
// unread bytes in it. That close sends a TCP reset instead of a FIN, and
// the reset can make the client's system drop the answer before the
// client read it: a client that sent a 70 KB request head got the first
// bytes of its 431 and then "connection reset". The loop shuts down its
// side instead (a FIN after the answer), reads and drops what comes
// until the client closes, and closes then, or when the client has sent
// nothing for h1.LingerWait, or after h1.LingerMax in all.

// closeAfterAnswer ends the client connection after an answer that closes
// it. It lingers, as nginx does, only when the client may still be
// sending: the request's body or head was not all read, bytes after the
// request are buffered, or the last read filled the buffer; else (a
// whole request, "Connection: close": the common case) and when the
// client's EOF was read, the answer has not all gone out, or the loop
// drains, it closes at once. A lingering connection's exchange ends at
// once and a draining loop does not wait for it, but it counts among the
// open connections (Config.MaxConnections, Conns) until it is closed. A
// TLS client gets its close_notify first; what it sends then is dropped
// undecrypted.
func (l *loop) closeAfterAnswer(c *client) {
	sending := c.state == csBody || c.r < c.w || c.readable
	if !sending || c.closed || c.eof || c.blocked || c.ts != nil && c.ts.hs || l.drainStarted {
		l.closeClient(c)
		return
	}
	l.releaseClient(c)
	if c.ts != nil {
		l.tlsClose(c)
		c.ts = nil
	}
	if e := unix.Shutdown(c.fd, unix.SHUT_WR); e != nil {
		l.closeSocket(c)
		return
	}
	c.lingering = true
	c.lingerEnd = l.now + int64(h1.LingerMax)
	c.deadline = min(l.now+int64(h1.LingerWait), c.lingerEnd)
	l.lingerRead(c) // what is already there
}

// lingerRead drops what a lingering client sent and closes the
// connection on its EOF, an error, or when its time is up.
func (l *loop) lingerRead(c *client) {
	for {
		n, e := rawRead(c.fd, c.buf)
		switch {
		case e == unix.EAGAIN:
			return
		case e == unix.EINTR:
			continue
		case e != 0 || n == 0:
			l.endLinger(c)
			return
		}
		c.deadline = min(l.now+int64(h1.LingerWait), c.lingerEnd)
		if l.now > c.lingerEnd {
			l.endLinger(c)
			return
		}
	}
}

// endLinger closes a lingering client's socket.
func (l *loop) endLinger(c *client) {
	if !c.lingering {
		return
	}
	c.lingering = false
	l.closeSocket(c)
}
