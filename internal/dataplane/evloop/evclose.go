//go:build linux

package evloop

import "golang.org/x/sys/unix"

// readAfterAccept reads a plain-text client's socket right after accept,
// without waiting for its first EPOLLIN: a client that opens a connection
// per request has usually sent its request by the time the loop accepts
// it (always, with TCP_DEFER_ACCEPT on the listener), so the request is
// parsed and forwarded to the origin in the loop iteration that accepted
// the connection, saving a round of the loop (an epoll wait, often a park
// and a wake-up). When nothing is there yet the read ends in EAGAIN and
// the socket's edge-triggered registration reports the request later.
// dispatch gives the read the panic guard of every socket event.
func (l *loop) readAfterAccept(fd int, c *client) {
	if c.ts != nil || c.closed {
		return
	}
	l.dispatch(fd, unix.EPOLLIN)
}

// deferAccept sets TCP_DEFER_ACCEPT on a listening socket: the kernel
// hands a connection to accept only once its first bytes arrived (or,
// for a client that sends nothing, after about a second and a
// retransmitted SYN-ACK), so the loop wakes once per new connection, not
// once for the handshake and again for the request, and readAfterAccept
// finds the request there.
func deferAccept(lfd int) error {
	if e := rawSetsockoptInt(lfd, unix.IPPROTO_TCP, unix.TCP_DEFER_ACCEPT, 1); e != 0 {
		return e
	}
	return nil
}
