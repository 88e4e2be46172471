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

// deferAcceptBatch bounds the connections a loop takes per listener event
// on a TCP_DEFER_ACCEPT listener. Each one comes with its request, read
// and forwarded at once (readAfterAccept), so a batch is a batch of
// requests handled per wake-up: measured on the close bench case with
// two loops, 1.4 epoll waits per request instead of 1.9, a little less
// CPU per request and a lower p99, for 0.2 accepts per request that end
// in EAGAIN.
const deferAcceptBatch = 8

// acceptLimit is the number of connections accept takes per listener
// event.
func (l *loop) acceptLimit() int {
	if l.deferAccept {
		return deferAcceptBatch
	}
	return acceptBatch
}
