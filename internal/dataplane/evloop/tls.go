//go:build linux

package evloop

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/meridian-platform/meridian/internal/dataplane/h1"
)

// TLS on the loops. A connection of a listener with TLS (Config.TLS) is
// accepted by its loop like any other; its handshake then runs on a
// worker goroutine (reused from one handshake to the next), which reads
// and writes the socket while the loop, still watching it, tells it of
// each readiness event through a channel (and yields its P so that the
// worker runs at once). When the handshake is over the worker gives the
// connection back to the loop (hsDone and the loop's eventfd), which
// drives the crypto/tls.Conn itself: the Conn's transport is a tlsSock,
// whose Read gives it the ciphertext read from the socket one record at a
// time and answers a temporary error (which crypto/tls does not keep) when
// there is none, and whose Write queues the ciphertext for the loop to
// write in one system call. A connection that negotiated HTTP/2, or whose
// request the loop does not serve, goes to Handoff as the *tls.Conn, with
// its state (SNI, client certificates, ALPN). The one allocation per
// request left is crypto/tls's own (readFromUntil's reader).

// tlsLoop is a loop's part of the TLS machinery.
type tlsLoop struct {
	tlsCfg    func() *tls.Config
	hsTimeout time.Duration
	tlsErr    func()
	// hsMu guards hsDone (handshakes over, for the loop to take back) and
	// hsExited (the loop has ended: a handshake goroutine closes its
	// socket itself).
	hsMu     sync.Mutex
	hsDone   []*client
	hsSpare  []*client
	hsExited bool
	// freeIn keeps the ciphertext buffers of closed connections.
	freeIn [][]byte
	// hsJobs hands a handshake to an idle worker; hsStop, closed when the
	// loop ends, ends them.
	hsJobs chan hsJob
	hsStop chan struct{}
}

// tlsInSize is a tlsSock's read buffer: a record of the largest size.
const tlsInSize = 5 + 16<<10 + 256

func (l *loop) initTLS(cfg Config) {
	l.tlsCfg, l.tlsErr, l.hsTimeout = cfg.TLS, cfg.TLSError, cfg.HandshakeTimeout
	l.hsJobs, l.hsStop = make(chan hsJob), make(chan struct{})
	if l.hsTimeout <= 0 {
		l.hsTimeout = 10 * time.Second
	}
}

// tlsSock is the transport of a client's tls.Conn.
type tlsSock struct {
	fd          int
	tc          *tls.Conn
	peer, local netip.AddrPort

	// The handshake goroutine's (until it hands the connection back):
	// blocking makes Read and Write wait on sig for the loop's events.
	blocking bool
	sig      chan struct{}
	abort    atomic.Bool
	deadline time.Time
	timer    *time.Timer
	err      error  // the handshake's
	alpn     string // the protocol it negotiated
	// state is the connection's state once the handshake is over
	// (Request.TLS).
	state *tls.ConnectionState

	// in holds ciphertext read from the socket and not yet given to the
	// tls.Conn, which gets it one record at a time (never past the end
	// of the record it reads): once Read has returned plaintext with
	// room to spare, the Conn holds nothing more, and the loop need not
	// ask it again (an allocation of crypto/tls per empty read) until in
	// or the socket has bytes. hdr is the record header being given, rec
	// what is left of the record after it.
	in       []byte
	inR, inW int
	hdr      [5]byte
	hdrN     int
	rec      int

	// The loop's:
	hs    bool // the handshake goroutine owns the socket
	ready bool // the socket may have bytes (an event came since the last short read)
	hup   bool
	out   []byte // ciphertext not written yet
	off   int

	// After a handoff: the connection the goroutine engine reads; out
	// goes first.
	mu sync.Mutex
	nc net.Conn
}

// tempError is what Read answers when the socket has nothing: a temporary
// net.Error, which crypto/tls passes on without ending the connection.
type tempError struct{}

func (tempError) Error() string   { return "evloop: no data yet" }
func (tempError) Timeout() bool   { return false }
func (tempError) Temporary() bool { return true }

var (
	errWouldBlock       error = tempError{}
	errHandshakeTimeout       = errors.New("evloop: TLS handshake timed out")
	errAborted                = errors.New("evloop: loop stopped during the TLS handshake")
	problemNoH2               = &h1.Problem{Status: 505, Reason: "HTTP/2 needs the goroutine engine"}
)

func (s *tlsSock) Read(p []byte) (int, error) {
	if s.nc != nil {
		if err := s.flushDetached(); err != nil {
			return 0, err
		}
		if s.inR < s.inW {
			n := copy(p, s.in[s.inR:s.inW])
			s.inR += n
			return n, nil
		}
		return s.nc.Read(p)
	}
	if len(p) == 0 {
		return 0, nil
	}
	for s.inR == s.inW {
		if err := s.fill(); err != nil {
			return 0, err
		}
	}
	return s.give(p), nil
}

// fill reads the socket into in (empty): the handshake goroutine waits
// for the loop's events, the loop answers errWouldBlock.
func (s *tlsSock) fill() error {
	if s.blocking && s.abort.Load() {
		return errAborted
	}
	if !s.blocking && !s.ready {
		return errWouldBlock
	}
	s.inR, s.inW = 0, 0
	n, e := rawRead(s.fd, s.in)
	switch {
	case e == unix.EAGAIN:
		if s.blocking {
			return s.wait()
		}
		s.ready = false
		return errWouldBlock
	case e == unix.EINTR:
		return nil
	case e != 0:
		return fmt.Errorf("evloop: reading a TLS client: %w", e)
	case n == 0:
		return io.EOF
	}
	s.inW = n
	if !s.blocking && n < len(s.in) && !s.hup {
		// Edge-triggered: the socket is empty until the next event.
		s.ready = false
	}
	return nil
}

// give copies buffered ciphertext to p up to the end of the current
// record.
func (s *tlsSock) give(p []byte) int {
	n := 0
	for n < len(p) && s.inR < s.inW {
		if s.hdrN < len(s.hdr) {
			k := copy(p[n:], s.in[s.inR:min(s.inW, s.inR+len(s.hdr)-s.hdrN)])
			copy(s.hdr[s.hdrN:], s.in[s.inR:s.inR+k])
			s.hdrN += k
			s.inR += k
			n += k
			if s.hdrN == len(s.hdr) {
				s.rec = int(s.hdr[3])<<8 | int(s.hdr[4])
			} else {
				continue
			}
		} else {
			k := copy(p[n:], s.in[s.inR:min(s.inW, s.inR+s.rec)])
			s.rec -= k
			s.inR += k
			n += k
		}
		if s.rec == 0 {
			s.hdrN = 0 // the record is whole: the tls.Conn reads it before asking more
			break
		}
	}
	return n
}

// more says whether the tls.Conn may have plaintext to give once a Read
// left room in its buffer: not unless ciphertext is buffered or the socket
// may have some.
func (s *tlsSock) more() bool { return s.inR < s.inW || s.ready }

func (s *tlsSock) Write(p []byte) (int, error) {
	if s.blocking {
		return s.writeBlocking(p)
	}
	if s.nc != nil {
		if err := s.flushDetached(); err != nil {
			return 0, err
		}
		return s.nc.Write(p)
	}
	s.out = append(s.out, p...)
	return len(p), nil
}

func (s *tlsSock) writeBlocking(p []byte) (int, error) {
	done := 0
	for done < len(p) {
		if s.abort.Load() {
			return done, errAborted
		}
		n, e := rawWrite(s.fd, p[done:])
		switch {
		case e == unix.EAGAIN:
			if err := s.wait(); err != nil {
				return done, err
			}
			continue
		case e == unix.EINTR:
			continue
		case e != 0:
			return done, fmt.Errorf("evloop: writing a TLS handshake: %w", e)
		}
		done += n
	}
	return done, nil
}

// wait waits for the loop's next event on the socket, or the handshake's
// deadline.
func (s *tlsSock) wait() error {
	if s.timer == nil {
		s.timer = time.NewTimer(time.Until(s.deadline))
	}
	select {
	case <-s.sig:
		return nil
	case <-s.timer.C:
		return errHandshakeTimeout
	}
}

// signal tells the handshake goroutine of an event (never blocks); false:
// it has not taken the last one yet.
func (s *tlsSock) signal() bool {
	select {
	case s.sig <- struct{}{}:
		return true
	default:
		return false
	}
}

// flush writes the queued ciphertext; EAGAIN leaves the rest queued.
func (s *tlsSock) flush() unix.Errno {
	for s.off < len(s.out) {
		n, e := rawWrite(s.fd, s.out[s.off:])
		if e != 0 {
			return e
		}
		s.off += n
	}
	s.out, s.off = s.out[:0], 0
	return 0
}

func (s *tlsSock) pending() bool { return s.off < len(s.out) }

// detach makes nc (the socket in Go's poller) the transport and returns
// the tls.Conn for Handoff.
func (s *tlsSock) detach(nc net.Conn) net.Conn {
	s.nc = nc
	return s.tc
}

// flushDetached writes, once handed off, what the loop had queued.
func (s *tlsSock) flushDetached() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.off < len(s.out) {
		if _, err := s.nc.Write(s.out[s.off:]); err != nil {
			return err
		}
	}
	s.out, s.off = nil, 0
	return nil
}

func (s *tlsSock) Close() error {
	if s.nc != nil {
		return s.nc.Close()
	}
	return nil // the loop closes the socket
}

func (s *tlsSock) LocalAddr() net.Addr {
	if s.nc != nil {
		return s.nc.LocalAddr()
	}
	return net.TCPAddrFromAddrPort(s.local)
}

func (s *tlsSock) RemoteAddr() net.Addr {
	if s.nc != nil {
		return s.nc.RemoteAddr()
	}
	return net.TCPAddrFromAddrPort(s.peer)
}

// The loop bounds its connections' time itself: deadlines count only once
// handed off.
func (s *tlsSock) SetDeadline(t time.Time) error {
	if s.nc != nil {
		return s.nc.SetDeadline(t)
	}
	return nil
}

func (s *tlsSock) SetReadDeadline(t time.Time) error {
	if s.nc != nil {
		return s.nc.SetReadDeadline(t)
	}
	return nil
}

func (s *tlsSock) SetWriteDeadline(t time.Time) error {
	if s.nc != nil {
		return s.nc.SetWriteDeadline(t)
	}
	return nil
}

// startTLS begins the handshake of a client just accepted (and
// registered) on a listener with TLS.
func (l *loop) startTLS(c *client, cfg *tls.Config) {
	s := &tlsSock{fd: c.fd, peer: c.peerAP, local: l.local, blocking: true, hs: true,
		sig: make(chan struct{}, 1), deadline: time.Now().Add(l.hsTimeout)}
	if !s.local.Addr().IsValid() || s.local.Addr().IsUnspecified() {
		if sa, err := unix.Getsockname(c.fd); err == nil {
			s.local = addrPortOf(sa)
		}
	}
	if n := len(l.freeIn); n > 0 {
		s.in = l.freeIn[n-1]
		l.freeIn = l.freeIn[:n-1]
	} else {
		s.in = make([]byte, tlsInSize)
	}
	s.tc = tls.Server(s, cfg)
	c.ts = s
	c.deadline = 0 // the handshake has its own
	select {
	case l.hsJobs <- hsJob{c, s}:
	default:
		go l.hsWorker(hsJob{c, s})
	}
	// A busy loop keeps its P: the handshake would wait for the loop to
	// park or be preempted (up to 10ms). It runs now, until it waits for
	// the client.
	runtime.Gosched()
}

// hsJob is a handshake for a worker.
type hsJob struct {
	c *client
	s *tlsSock
}

// hsWorkerIdle is how long a handshake worker waits for the next
// handshake before it ends. Reusing workers saves growing a new
// goroutine's stack to the depth of a handshake (runtime.newstack and
// copystack were 6% of the CPU with a new connection per request).
const hsWorkerIdle = 10 * time.Second

// hsWorker makes handshakes one after another until none comes for
// hsWorkerIdle or the loop ends.
func (l *loop) hsWorker(j hsJob) {
	var idle *time.Timer
	for {
		l.handshake(j.c, j.s)
		if idle == nil {
			idle = time.NewTimer(hsWorkerIdle)
		} else {
			idle.Reset(hsWorkerIdle)
		}
		select {
		case j = <-l.hsJobs:
		case <-idle.C:
			return
		case <-l.hsStop:
			idle.Stop()
			return
		}
	}
}

// handshake runs on its own goroutine; it touches nothing of c but hands
// it back to the loop.
func (l *loop) handshake(c *client, s *tlsSock) {
	s.err = s.tc.Handshake()
	if s.timer != nil {
		s.timer.Stop()
	}
	if s.err == nil {
		cs := s.tc.ConnectionState()
		s.state, s.alpn = &cs, cs.NegotiatedProtocol
	}
	l.hsMu.Lock()
	defer l.hsMu.Unlock()
	if l.hsExited {
		unix.Close(s.fd)
		return
	}
	l.hsDone = append(l.hsDone, c)
	// Under hsMu: the eventfd stays open until the loop has ended, and
	// it ends only after setting hsExited.
	l.wake()
}

// tlsCompleted takes back the connections whose handshake is over.
func (l *loop) tlsCompleted() {
	l.hsMu.Lock()
	done := l.hsDone
	l.hsDone = l.hsSpare[:0]
	l.hsMu.Unlock()
	for i, c := range done {
		done[i] = nil
		s := c.ts
		s.hs, s.blocking = false, false
		if s.err != nil {
			if l.tlsErr != nil {
				l.tlsErr()
			}
			l.closeClient(c)
			continue
		}
		if s.alpn == "h2" {
			if l.handoffFn == nil {
				l.reject(c, problemNoH2)
			} else {
				l.handoffOr(c, problemNoH2)
			}
			continue
		}
		c.state = csIdle
		c.deadline = l.now + l.headerTO
		s.ready, c.readable = true, true
		l.clientRead(c)
		if l.drainStarted && !c.closed && c.state == csIdle && c.r == c.w {
			l.closeClient(c) // draining: no request came with the handshake
		}
	}
	l.hsSpare = done[:0]
}

// tlsExit, when the loop ends, stops the handshakes in progress: their
// goroutines close their sockets (the loop closes the others).
func (l *loop) tlsExit() {
	l.hsMu.Lock()
	if !l.hsExited {
		close(l.hsStop)
	}
	l.hsExited = true
	done := l.hsDone
	l.hsDone = nil
	l.hsMu.Unlock()
	for _, c := range done {
		c.ts.hs = false
	}
	for fd := range l.socks {
		if c := l.socks[fd].c; c != nil && c.ts != nil && c.ts.hs {
			c.ts.abort.Store(true)
			c.ts.signal()
			l.socks[fd] = sock{}
		}
	}
}

// tlsEvent handles a TLS client's event before clientEvent: during the
// handshake it only wakes the goroutine (0: nothing more to do); after
// it, it notes that the socket may be read and writes queued ciphertext
// when the socket can take it (the EPOLLOUT bit stays only once all of it
// is written).
func (l *loop) tlsEvent(c *client, ev uint32) uint32 {
	s := c.ts
	if s.hs {
		if s.signal() {
			runtime.Gosched() // as in startTLS
		}
		return 0
	}
	if ev&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP) != 0 {
		s.ready = true
	}
	if ev&unix.EPOLLOUT != 0 && s.pending() {
		if e := s.flush(); e != 0 && e != unix.EAGAIN {
			l.closeClient(c)
			return 0
		}
		if s.pending() {
			ev &^= unix.EPOLLOUT
		}
	}
	return ev
}

// readClient reads the client: the socket, or its tls.Conn (EAGAIN when
// neither the Conn nor the socket has anything).
func (l *loop) readClient(c *client, b []byte) (int, unix.Errno) {
	s := c.ts
	if s == nil {
		return rawRead(c.fd, b)
	}
	s.hup = c.hup
	n, err := s.tc.Read(b)
	switch {
	case n > 0:
		return n, 0
	case err == errWouldBlock:
		return 0, unix.EAGAIN
	case err == io.EOF:
		return 0, 0
	case err == nil:
		return 0, unix.EAGAIN
	}
	return 0, unix.EIO
}

// writeClient writes to the client: to the socket, or through its
// tls.Conn, whose ciphertext is written at once as far as the socket
// takes it; the rest waits (c.blocked) for EPOLLOUT.
func (l *loop) writeClient(c *client, b []byte) (int, unix.Errno) {
	s := c.ts
	if s == nil {
		return rawWrite(c.fd, b)
	}
	if _, err := s.tc.Write(b); err != nil {
		return 0, unix.EPIPE
	}
	if e := s.flush(); e != 0 && e != unix.EAGAIN {
		return 0, e
	}
	if s.pending() {
		c.blocked = true
	}
	return len(b), 0
}

// tlsClose ends a TLS client's session: close_notify, written if the
// socket takes it.
func (l *loop) tlsClose(c *client) {
	s := c.ts
	if s.tc.CloseWrite() == nil {
		s.flush()
	}
	s.out, s.off = s.out[:0], 0
	if len(l.freeIn) < 256 {
		l.freeIn = append(l.freeIn, s.in)
	}
	s.in = nil
}

// markHTTPS turns the "X-Forwarded-Proto: http" that appendRequestHead
// ends a request head with into "https".
func markHTTPS(b []byte) []byte {
	const tail = "\r\n\r\n"
	if len(b) < len(tail) {
		return b
	}
	return append(b[:len(b)-len(tail)], "s\r\n\r\n"...)
}
