package dataplane

import (
	"crypto/tls"
	"net"
	"time"

	"github.com/meridian-platform/meridian/internal/dataplane/h1"
)

// Lingering close for the goroutine engine's HTTP/1.1 connections, as
// the event loops do it (evloop's linger.go, which says why): after the
// last answer the engine closes the connection with, the client may
// still be sending (the rest of a body the engine did not read, the
// requests after a failed one), and a close with unread bytes resets the
// connection, which can discard the answer. The server shuts its side
// (close_notify first over TLS), reads and drops what comes until the
// client closes, for at most h1.LingerWait between reads and h1.LingerMax
// in all, and closes then.

// lingerBuf is the read size while lingering.
const lingerBuf = 4 << 10

// Close ends the connection the engine is done with. It lingers, as
// nginx does, only when the client may still be sending: the engine
// stopped inside a request (a head or a body: the head guard's view of
// what it read) or bytes it did not read wait in the socket. Else (a
// whole request answered with "Connection: close", the common case), and
// when the connection was idle between requests (the client's EOF, an
// idle timeout), the listener drains or the connection is to be reset
// (connMeta.reset), it closes at once: lingering after every answer cost
// the new-connection-per-request bench 18 µs of CPU per request.
func (c *metaConn) Close() error {
	m := c.meta
	raw := tcpConnOf(m.raw)
	if raw == nil || m.idle.Load() || m.reset.Load() || m.l != nil && m.l.draining.Load() ||
		m.guard.AtBoundary() && !unreadInput(raw) {
		return c.Conn.Close()
	}
	if tc := tlsConnOf(c.Conn); tc != nil {
		_ = tc.CloseWrite() // close_notify
	}
	if raw.CloseWrite() == nil {
		lingerRead(raw)
	}
	return c.Conn.Close()
}

// tlsConnOf is the *tls.Conn c is or wraps (bufConn), or nil.
func tlsConnOf(c net.Conn) *tls.Conn {
	if bc, ok := c.(*bufConn); ok {
		c = bc.Conn
	}
	tc, _ := c.(*tls.Conn)
	return tc
}

// tcpConnOf is the TCP connection c is or runs on (a *tls.Conn's), or nil.
func tcpConnOf(c net.Conn) *net.TCPConn {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	t, _ := c.(*net.TCPConn)
	return t
}

// lingerRead reads and drops what c's peer sends until it closes, an
// error, h1.LingerWait of silence or h1.LingerMax in all.
func lingerRead(c *net.TCPConn) {
	end := time.Now().Add(h1.LingerMax)
	var buf [lingerBuf]byte
	for {
		now := time.Now()
		if now.After(end) {
			return
		}
		if c.SetReadDeadline(minTime(now.Add(h1.LingerWait), end)) != nil {
			return
		}
		if _, err := c.Read(buf[:]); err != nil {
			return
		}
	}
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
