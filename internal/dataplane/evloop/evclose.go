//go:build linux

package evloop

import "golang.org/x/sys/unix"

// readAfterAccept reads a plain-text client's socket right after accept,
// without waiting for its first EPOLLIN, when the listener has
// TCP_DEFER_ACCEPT: the kernel hands over a connection once its request
// arrived, so the request is parsed and forwarded to the origin in the
// loop iteration that accepted the connection, saving a round of the loop
// (an epoll wait, often a park and a wake-up). Without TCP_DEFER_ACCEPT
// the loop wakes for the handshake, before the request, and the read
// would mostly end in EAGAIN (measured: more system calls and CPU per
// request, not fewer); the socket's edge-triggered registration reports
// the request then. dispatch gives the read the panic guard of every
// socket event.
func (l *loop) readAfterAccept(fd int, c *client) {
	if !l.deferAccept || c.ts != nil || c.closed {
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
