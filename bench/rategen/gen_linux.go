package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Connection states.
const (
	cDown       = iota // closed; dialled again at retryAt
	cConnecting        // non-blocking connect in progress
	cIdle              // connected, waiting for a request
	cBusy              // a request in flight
)

// housekeeping is how often the loop looks for requests past their
// timeout and connections to dial again; it is also the longest the loop
// waits in one epoll_pwait2.
const housekeeping = 10 * time.Millisecond

const readBuf = 32 << 10

type gconn struct {
	idx      int32
	fd       int
	state    uint8
	inRing   bool
	measured bool  // the request in flight is in the measured window
	out      bool  // EPOLLOUT is armed
	wpos     int   // request bytes written
	intended int64 // the request in flight: its intended send time
	sent     int64 // and when it went out
	retryAt  int64
	rr       respReader
}

// gen is one run: a single loop, on a thread of its own, that sends every
// request at its intended time on an idle connection (the connections
// taken in turn) and reads the answers, all with non-blocking sockets
// and epoll. A request that finds no idle connection waits for one and
// its wait counts in its latency, which is measured from the intended
// time: the generator's own delays and the target's queueing show as
// latency instead of as a lower rate (no coordinated omission).
type gen struct {
	cfg      config
	tgt      target
	sa       unix.Sockaddr
	family   int
	epfd     int
	conns    []gconn
	ring     []int32 // idle connections in the order they became idle
	head     int
	ringLen  int
	idle     int // connections in cIdle
	inflight int
	events   []unix.EpollEvent
	ts       unix.Timespec
	sharedP  bool // the process has one P: wait the scheduler's way
	base     time.Time
	start    int64 // intended send time of request 0
	interval float64
	next     uint64 // next request to send
	total    uint64
	warmupN  uint64
	lastDone int64
	res      *result
}

func (g *gen) now() int64 { return int64(time.Since(g.base)) }

func (g *gen) intended(k uint64) int64 { return g.start + int64(float64(k)*g.interval) }

// run sends the requests of cfg to tgt and measures them; ctx ends it
// early (what was measured so far is returned with ctx's error).
func run(ctx context.Context, cfg config, tgt target) (*result, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	// The kernel lets a thread's timers fire up to its timer slack (50 µs
	// by default) late, which would delay every send: 1 ns for the loop's
	// thread (it keeps it when the run ends: harmless).
	if err := unix.Prctl(unix.PR_SET_TIMERSLACK, 1, 0, 0, 0); err != nil {
		return nil, fmt.Errorf("setting the timer slack: %w", err)
	}
	g := &gen{cfg: cfg, tgt: tgt, base: time.Now(), res: &result{url: cfg.url, rate: cfg.rate, conns: cfg.conns, window: cfg.duration},
		sharedP: runtime.GOMAXPROCS(0) == 1}
	if ip4 := tgt.addr.IP.To4(); ip4 != nil {
		sa := &unix.SockaddrInet4{Port: tgt.addr.Port}
		copy(sa.Addr[:], ip4)
		g.sa, g.family = sa, unix.AF_INET
	} else {
		sa := &unix.SockaddrInet6{Port: tgt.addr.Port}
		copy(sa.Addr[:], tgt.addr.IP.To16())
		g.sa, g.family = sa, unix.AF_INET6
	}
	var err error
	if g.epfd, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		return nil, fmt.Errorf("creating the epoll instance: %w", err)
	}
	defer unix.Close(g.epfd)
	g.conns = make([]gconn, cfg.conns)
	g.ring = make([]int32, cfg.conns)
	g.events = make([]unix.EpollEvent, min(cfg.conns+1, 1024))
	defer g.closeAll()
	if err := g.connectAll(ctx); err != nil {
		return nil, err
	}

	g.interval = 1e9 / cfg.rate
	g.total = uint64(math.Round(float64(cfg.warmup+cfg.duration) * cfg.rate / 1e9))
	g.warmupN = uint64(math.Round(float64(cfg.warmup) * cfg.rate / 1e9))
	var ru0 unix.Rusage
	unix.Getrusage(unix.RUSAGE_SELF, &ru0)
	g.start = g.now()
	windowStart := g.intended(g.warmupN)
	err = g.loop(ctx)
	var ru1 unix.Rusage
	unix.Getrusage(unix.RUSAGE_SELF, &ru1)
	g.res.cpu = time.Duration(ru1.Utime.Nano() + ru1.Stime.Nano() - ru0.Utime.Nano() - ru0.Stime.Nano())
	g.res.span = max(cfg.duration, time.Duration(g.lastDone-windowStart))
	return g.res, err
}

// connectAll dials every connection and waits until all are up.
func (g *gen) connectAll(ctx context.Context) error {
	for i := range g.conns {
		g.conns[i].idx = int32(i)
		g.conns[i].rr = newRespReader(readBuf)
		g.conns[i].fd = -1
		if err := g.dial(i); err != nil {
			return fmt.Errorf("connecting to %s: %w", g.tgt.addr, err)
		}
	}
	deadline := g.now() + int64(g.cfg.timeout)
	for g.idle < len(g.conns) {
		if err := ctx.Err(); err != nil {
			return err
		}
		now := g.now()
		if now >= deadline {
			return fmt.Errorf("connecting to %s: %d of %d connections up after %v", g.tgt.addr, g.idle, len(g.conns), g.cfg.timeout)
		}
		n, e := epollWait(g.epfd, g.events, min(deadline-now, int64(housekeeping)), &g.ts, g.sharedP)
		if e != 0 && e != unix.EINTR {
			return fmt.Errorf("waiting for connections: %w", e)
		}
		for _, ev := range g.events[:max(n, 0)] {
			c := &g.conns[ev.Fd]
			if c.state != cConnecting {
				continue
			}
			if err := g.connected(int(ev.Fd)); err != nil {
				return fmt.Errorf("connecting to %s: %w", g.tgt.addr, err)
			}
		}
	}
	return nil
}

// dial starts a non-blocking connect for connection i.
func (g *gen) dial(i int) error {
	c := &g.conns[i]
	fd, err := unix.Socket(g.family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1); err != nil {
		unix.Close(fd)
		return fmt.Errorf("TCP_NODELAY: %w", err)
	}
	if err := unix.Connect(fd, g.sa); err != nil && !errors.Is(err, unix.EINPROGRESS) {
		unix.Close(fd)
		return err
	}
	if err := epollCtl(g.epfd, unix.EPOLL_CTL_ADD, fd, unix.EPOLLIN|unix.EPOLLOUT|unix.EPOLLRDHUP|unix.EPOLLET, i); err != nil {
		unix.Close(fd)
		return fmt.Errorf("epoll_ctl: %w", err)
	}
	c.fd, c.state, c.out, c.retryAt = fd, cConnecting, true, 0
	c.rr.clear()
	return nil
}

// connected finishes connection i's connect when epoll reports it.
func (g *gen) connected(i int) error {
	c := &g.conns[i]
	soerr, err := unix.GetsockoptInt(c.fd, unix.SOL_SOCKET, unix.SO_ERROR)
	if err == nil && soerr != 0 {
		err = syscall.Errno(soerr)
	}
	if err == nil {
		err = g.arm(c, false)
	}
	if err != nil {
		g.closeConn(c)
		return err
	}
	g.setIdle(i)
	return nil
}

// arm sets whether epoll reports c's socket writable: only while a
// connect or a write waits, or every ACK would wake the loop.
func (g *gen) arm(c *gconn, out bool) error {
	if c.out == out {
		return nil
	}
	ev := uint32(unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLET)
	if out {
		ev |= unix.EPOLLOUT
	}
	if err := epollCtl(g.epfd, unix.EPOLL_CTL_MOD, c.fd, ev, int(c.idx)); err != nil {
		return fmt.Errorf("epoll_ctl: %w", err)
	}
	c.out = out
	return nil
}

func (g *gen) setIdle(i int) {
	c := &g.conns[i]
	c.state = cIdle
	g.idle++
	if !c.inRing {
		c.inRing = true
		g.ring[(g.head+g.ringLen)%len(g.ring)] = int32(i)
		g.ringLen++
	}
}

// popIdle takes the connection idle the longest (so that every
// connection carries requests, as many clients would); -1 if none.
func (g *gen) popIdle() int {
	for g.idle > 0 && g.ringLen > 0 {
		i := int(g.ring[g.head])
		g.head = (g.head + 1) % len(g.ring)
		g.ringLen--
		c := &g.conns[i]
		c.inRing = false
		if c.state == cIdle {
			g.idle--
			return i
		}
	}
	return -1
}

func (g *gen) closeConn(c *gconn) {
	if c.fd >= 0 {
		unix.Close(c.fd) // also leaves the epoll set
	}
	if c.state == cIdle {
		g.idle--
	}
	c.fd, c.state, c.out = -1, cDown, false
}

func (g *gen) closeAll() {
	for i := range g.conns {
		g.closeConn(&g.conns[i])
	}
}

// loop runs until every request was sent and answered (or failed).
func (g *gen) loop(ctx context.Context) error {
	nextHouse := g.now() + int64(housekeeping)
	for {
		now := g.now()
		for g.next < g.total {
			t := g.intended(g.next)
			if t > now {
				break
			}
			i := g.popIdle()
			if i < 0 {
				break
			}
			g.send(i, t, now)
			g.next++
		}
		if now >= nextHouse {
			if err := ctx.Err(); err != nil {
				return err
			}
			g.housekeep(now)
			nextHouse = now + int64(housekeeping)
		}
		if g.next < g.total && now > g.intended(g.total-1)+int64(g.cfg.timeout) {
			g.abandon()
		}
		wait := nextHouse - now
		if g.next < g.total && g.idle > 0 {
			wait = min(wait, g.intended(g.next)-now)
		} else if g.next >= g.total && g.inflight == 0 {
			return nil
		}
		n, e := epollWait(g.epfd, g.events, max(wait, 0), &g.ts, g.sharedP)
		if e != 0 && e != unix.EINTR {
			return fmt.Errorf("epoll_pwait2: %w", e)
		}
		if n <= 0 {
			continue
		}
		now = g.now()
		for _, ev := range g.events[:n] {
			g.event(int(ev.Fd), ev.Events, now)
		}
	}
}

// abandon gives up the requests not sent a timeout after the last was
// due (no connection could be made for them): they count as errors.
func (g *gen) abandon() {
	first := max(g.next, g.warmupN)
	if g.total > first {
		g.res.errors += g.total - first
		if g.res.firstErr == "" {
			g.res.firstErr = fmt.Sprintf("%d requests never sent: no connection", g.total-first)
		}
	}
	g.next = g.total
}

func (g *gen) event(i int, events uint32, now int64) {
	c := &g.conns[i]
	switch c.state {
	case cConnecting:
		if err := g.connected(i); err != nil {
			g.connFailed(c, now, err)
		}
	case cBusy:
		if c.wpos < len(g.tgt.req) && events&(unix.EPOLLOUT|unix.EPOLLERR|unix.EPOLLHUP) != 0 && !g.write(c, now) {
			return
		}
		if events&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
			g.read(c, now)
		}
	case cIdle:
		// The server closed an idle connection, or spoke unasked.
		g.read(c, now)
	}
}

// send puts request g.next, intended at t, on connection i.
func (g *gen) send(i int, t, now int64) {
	c := &g.conns[i]
	c.state, c.wpos, c.intended, c.sent = cBusy, 0, t, now
	c.measured = g.next >= g.warmupN
	g.inflight++
	g.res.all++
	if c.measured {
		g.res.sent++
		g.res.lag.record(now - t)
	}
	g.write(c, now)
}

// write writes what is left of c's request; false if c failed.
func (g *gen) write(c *gconn, now int64) bool {
	for c.wpos < len(g.tgt.req) {
		n, e := rawWrite(c.fd, g.tgt.req[c.wpos:])
		switch e {
		case 0:
			c.wpos += n
		case unix.EINTR:
		case unix.EAGAIN:
			if err := g.arm(c, true); err != nil {
				g.fail(c, now, err)
				return false
			}
			return true
		default:
			g.fail(c, now, fmt.Errorf("writing the request: %w", e))
			return false
		}
	}
	if err := g.arm(c, false); err != nil {
		g.fail(c, now, err)
		return false
	}
	return true
}

// read reads what c's socket holds (edge-triggered: until a short read).
func (g *gen) read(c *gconn, now int64) {
	for {
		space := c.rr.space()
		n, e := rawRead(c.fd, space)
		switch {
		case e == unix.EAGAIN:
			return
		case e == unix.EINTR:
			continue
		case e != 0:
			g.fail(c, now, fmt.Errorf("reading the response: %w", e))
			return
		case n == 0:
			g.closed(c, now)
			return
		case c.state != cBusy:
			g.fail(c, now, errTrailing)
			return
		}
		done, err := c.rr.advance(n)
		if err != nil {
			g.fail(c, now, fmt.Errorf("parsing the response: %w", err))
			return
		}
		if done {
			g.complete(c, now)
			return
		}
		if n < len(space) {
			return
		}
	}
}

// closed handles the end of c's input.
func (g *gen) closed(c *gconn, now int64) {
	switch {
	case c.state == cBusy && c.rr.p.ended():
		g.complete(c, now)
	case c.state == cBusy:
		g.fail(c, now, errors.New("connection closed before the response ended"))
	default:
		g.closeConn(c)
		g.redial(c, now)
	}
}

// complete counts c's answered request and makes c ready for another.
func (g *gen) complete(c *gconn, now int64) {
	g.inflight--
	if c.measured {
		g.res.lat.record(now - c.intended)
		g.res.svc.record(now - c.sent)
		if s := c.rr.p.status; s >= 200 && s < 300 {
			g.res.ok++
		} else {
			g.res.non2xx++
		}
		g.lastDone = now
	}
	// A connection that answered before it had the whole request (or
	// that says it closes) carries no other.
	if c.rr.p.close || c.wpos < len(g.tgt.req) {
		g.closeConn(c)
		g.redial(c, now)
		return
	}
	c.rr.next()
	g.setIdle(int(c.idx))
}

// fail ends c after an error, counting its request if it had one.
func (g *gen) fail(c *gconn, now int64, err error) {
	if c.state == cBusy {
		g.inflight--
		if c.measured {
			g.res.errors++
		}
	}
	if g.res.firstErr == "" {
		g.res.firstErr = err.Error()
	}
	g.closeConn(c)
	g.redial(c, now)
}

// connFailed counts a connection that could not be made; it is tried
// again after a pause.
func (g *gen) connFailed(c *gconn, now int64, err error) {
	g.res.connErrs++
	if g.res.firstErr == "" {
		g.res.firstErr = fmt.Sprintf("connecting to %s: %v", g.tgt.addr, err)
	}
	g.closeConn(c)
	c.retryAt = now + int64(housekeeping)*5
}

func (g *gen) redial(c *gconn, now int64) {
	if err := g.dial(int(c.idx)); err != nil {
		g.connFailed(c, now, err)
	}
}

// housekeep times out requests and dials closed connections again.
func (g *gen) housekeep(now int64) {
	for i := range g.conns {
		c := &g.conns[i]
		switch {
		case c.state == cBusy && now-c.sent > int64(g.cfg.timeout):
			if c.measured {
				g.res.timeouts++
			}
			g.fail(c, now, fmt.Errorf("no response within %v", g.cfg.timeout))
		case c.state == cConnecting && c.retryAt == 0:
			c.retryAt = now + int64(g.cfg.timeout) // connect timeout
		case c.state == cConnecting && now >= c.retryAt:
			g.connFailed(c, now, fmt.Errorf("no connection within %v", g.cfg.timeout))
		case c.state == cDown && now >= c.retryAt:
			g.redial(c, now)
		}
	}
}
