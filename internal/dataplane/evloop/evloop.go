//go:build linux

package evloop

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/meridian-platform/meridian/internal/dataplane/h1"
	"github.com/meridian-platform/meridian/internal/lb"
)

// Config is one proxy: a listener and the origin every request goes to.
type Config struct {
	// Listen is the address to listen on ("127.0.0.1:0" for any port).
	Listen string
	// Origin is the origin's address (IP:port) when there is no Router.
	Origin string
	// Router picks each request's origin, or hands the connection to
	// Handoff (nil: every request goes to Origin).
	Router Router
	// Handoff takes over connections whose next request the loop does not
	// serve itself (the Router said so, an upgrade, a request target not
	// in origin form), with the bytes already read from them. It is
	// called on the loop and must not block: it starts the goroutine that
	// serves the connection. Nil: such requests are answered with an error.
	Handoff func(conn net.Conn, buffered []byte)
	// Loops is the number of event loops, each with its own SO_REUSEPORT
	// listener and epoll instance (default GOMAXPROCS).
	Loops int
	// MaxIdlePerLoop bounds the idle origin connections each loop keeps
	// (default 64).
	MaxIdlePerLoop int
	// Limits bound request heads (default h1.DefaultLimits).
	Limits h1.Limits
	// RawBlock makes idle loops wait in epoll_wait without releasing
	// their P to the scheduler: no hand-off and no sysmon polling while
	// they wait, but the loops then hold Loops of the GOMAXPROCS Ps.
	RawBlock bool
	// Admit, when set, decides at accept whether a peer may connect to
	// the local address (the node's NetworkPolicy check and connection
	// limit); refused connections are closed, with a reset when reset is
	// true.
	Admit func(peer, local netip.AddrPort) (ok, reset bool)
	// Conns, when set, is told of every client connection the loops take
	// (+1) and let go (-1: closed or handed off), for a gauge. It must not
	// block.
	Conns func(delta int)
	// RequestID, when set, appends a request id to b: it is sent to the
	// origin as X-Request-Id, replacing any the client sent.
	RequestID func(b []byte) []byte
	// HeaderTimeout bounds reading a request head (default 10s; 408 when
	// it runs out).
	HeaderTimeout time.Duration
	// BodyTimeout bounds each pause while reading a request body (default
	// HeaderTimeout; 408 when it runs out).
	BodyTimeout time.Duration
	// IdleTimeout closes keep-alive client connections without a request
	// and idle origin connections (default 60s).
	IdleTimeout time.Duration
	// OriginTimeout bounds connecting to the origin, waiting for its
	// answer and each pause in it (default 60s; 504 when nothing was
	// answered yet).
	OriginTimeout time.Duration
	// ConnectTimeout bounds connecting to the origin (default
	// OriginTimeout; 502 when it runs out).
	ConnectTimeout time.Duration
	// Observe, when set, is called on the loop when an exchange ends, with
	// the Router's Tag, the status sent (499 when the client went away
	// before an answer), the time since the request head was read (to
	// the loop's clock, read once per clockEvery events), the request's
	// size (its header block and its Content-Length) and the response
	// body bytes sent to the client (heads not counted). It must not
	// block.
	Observe func(tag any, status int, elapsed time.Duration, bytesIn, bytesOut int64)
	// ListenerPerLoop gives every loop its own SO_REUSEPORT listener (the
	// kernel spreads connections by address hash) instead of one listener
	// all loops accept from (EPOLLEXCLUSIVE: whichever loop is awake takes
	// the connection, which keeps a busy or descheduled loop from holding
	// new connections back).
	ListenerPerLoop bool
	// DeferAccept sets TCP_DEFER_ACCEPT on the listeners (nginx's
	// "deferred"): a connection is accepted once its request arrived, so
	// a loop wakes once per new connection and reads the request at once.
	// A connection that sends nothing is accepted only after about a
	// second (its header timeout starts then) and does not count against
	// MaxConnections until then.
	DeferAccept bool
	// MaxConnections bounds the client connections of all loops together
	// (0: unlimited); more are closed at accept.
	MaxConnections int
	// KernelWait makes idle loops wait in epoll_wait as a system call the
	// scheduler knows about, instead of parking in the network poller (the
	// fallback too when the epoll descriptor cannot go there): the kernel
	// wakes each loop's thread itself, as it wakes an nginx worker, where a
	// parked loop is woken by the one thread blocked in the poller, which
	// wakes another thread when two loops are ready at once, and which
	// nobody replaces while the loop it woke runs (see park.go). The P
	// stays the loop's while the runtime has an idle one, so give the
	// process at least one P more than Loops: with none idle, the
	// runtime's sysmon takes the P of every loop that waits longer than
	// 20 µs and keeps polling every 20 µs.
	KernelWait bool
	// yieldEvery (tests) replaces the package's yieldEvery; negative: a
	// busy loop never yields.
	yieldEvery time.Duration
	// AccessLog, when set with a Router, makes each loop's ExchangeLog,
	// which records the exchanges the loop forwards.
	AccessLog func() ExchangeLog
	// TLS, when set, is asked at each accept for the listener's TLS
	// configuration (nil: plain HTTP): the loop serves HTTP/1.1 over TLS
	// and hands HTTP/2 (ALPN "h2") connections off as *tls.Conn (see
	// tls.go).
	TLS func() *tls.Config
	// HandshakeTimeout bounds a TLS handshake (default 10s).
	HandshakeTimeout time.Duration
	// TLSError, when set, is told of each failed TLS handshake.
	TLSError func()
}

// sweepEvery is how often a loop looks for connections past their
// deadline; timeouts are accurate to this much.
const sweepEvery = 250 * time.Millisecond

// yieldEvery is how often a busy loop gives its P to other goroutines.
// Loop system calls do not enter the scheduler, so a saturated loop never
// yields on its own, and a goroutine waiting for a P (another loop woken
// by the network poller, a timer, the metrics endpoint) would wait for
// sysmon's 10 ms preemption: the requests of that loop wait with it.
const yieldEvery = 500 * time.Microsecond

// Proxy is a running event-loop proxy.
type Proxy struct {
	loops  []*loop
	addr   netip.AddrPort
	wg     sync.WaitGroup
	once   sync.Once
	active atomic.Int64 // client connections the loops hold
	done   chan struct{}
	// mu guards waking the loops against closing their eventfds.
	mu         sync.Mutex
	efdsClosed bool
	// lfds are the listeners: one the loops share, or one per loop
	// (ListenerPerLoop). The Proxy closes them once every loop has ended,
	// so that StopAccepting can shut them down at any time.
	lfds     []int
	timeouts atomic.Pointer[timeouts]
}

// wakeAll sets a flag on every loop and interrupts its epoll_wait.
func (p *Proxy) wakeAll(flag func(*loop) *atomic.Bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.efdsClosed {
		return
	}
	for _, l := range p.loops {
		flag(l).Store(true)
		l.wake()
	}
}

// Stats sums the loops' counters.
func (p *Proxy) Stats() Stats {
	var st Stats
	for _, l := range p.loops {
		st.Connections += l.nConns.Load()
		st.Requests += l.nReqs.Load()
		st.Rejected += l.nRejected.Load()
		st.Handoffs += l.nHandoffs.Load()
		st.OriginConnects += l.nConnects.Load()
		st.Panics += l.nPanics.Load()
	}
	return st
}

const (
	clientBufSize = 8 << 10
	originBufSize = 64 << 10
	// headroom is free space kept before an origin response head so that a
	// "Connection: close" line can be inserted in place.
	headroom = 64
	// maxPendingBody bounds request-body bytes queued for the origin
	// before the loop stops reading the client.
	maxPendingBody = 256 << 10
	epollEvents    = 256
)

// Start opens the listeners and runs the loops until Close.
func Start(cfg Config) (*Proxy, error) {
	lap, err := netip.ParseAddrPort(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("evloop: listen address %q: %w", cfg.Listen, err)
	}
	var oap netip.AddrPort
	if cfg.Router == nil {
		if oap, err = netip.ParseAddrPort(cfg.Origin); err != nil {
			return nil, fmt.Errorf("evloop: origin address %q: %w", cfg.Origin, err)
		}
	}
	if cfg.Loops <= 0 {
		cfg.Loops = runtime.GOMAXPROCS(0)
	}
	if cfg.MaxIdlePerLoop <= 0 {
		cfg.MaxIdlePerLoop = 64
	}
	if cfg.HeaderTimeout <= 0 {
		cfg.HeaderTimeout = 10 * time.Second
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 60 * time.Second
	}
	if cfg.OriginTimeout <= 0 {
		cfg.OriginTimeout = 60 * time.Second
	}
	if cfg.BodyTimeout <= 0 {
		cfg.BodyTimeout = cfg.HeaderTimeout
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = cfg.OriginTimeout
	}
	if cfg.Limits.MaxURI == 0 {
		cfg.Limits = h1.DefaultLimits
	}
	p := &Proxy{done: make(chan struct{})}
	p.timeouts.Store(&timeouts{header: int64(cfg.HeaderTimeout), body: int64(cfg.BodyTimeout), idle: int64(cfg.IdleTimeout), origin: int64(cfg.OriginTimeout)})
	for i := 0; i < cfg.Loops; i++ {
		if i == 0 || cfg.ListenerPerLoop {
			if i == 0 && cfg.ListenerPerLoop && lap.Port() != 0 {
				// The first of the loops' SO_REUSEPORT listeners would
				// bind beside another group's (another node's loops on
				// the port) and share its connections, where the bind of
				// a listener without the option fails as with
				// net.Listen: a socket without it binds only to a free
				// address.
				if err := probeFree(lap); err != nil {
					return nil, fmt.Errorf("evloop: listening on %s: %w", lap, err)
				}
			}
			lfd, err := listenFD(lap, cfg.ListenerPerLoop)
			if err != nil {
				p.closeAll()
				return nil, fmt.Errorf("evloop: listening on %s: %w", lap, err)
			}
			p.lfds = append(p.lfds, lfd)
			if cfg.DeferAccept {
				if err := deferAccept(lfd); err != nil {
					p.closeAll()
					return nil, fmt.Errorf("evloop: TCP_DEFER_ACCEPT on %s: %w", lap, err)
				}
			}
		}
		lfd := p.lfds[len(p.lfds)-1]
		if i == 0 {
			sa, err := unix.Getsockname(lfd)
			if err != nil {
				p.closeAll()
				return nil, fmt.Errorf("evloop: listener address: %w", err)
			}
			lap = addrPortOf(sa)
			p.addr = lap
		}
		l, err := newLoop(lfd, !cfg.ListenerPerLoop, oap, cfg, &p.active)
		if err == nil {
			l.local, l.timeouts = lap, &p.timeouts
			l.deferAccept = cfg.DeferAccept
		}
		if err != nil {
			p.closeAll()
			return nil, err
		}
		p.loops = append(p.loops, l)
	}
	for _, l := range p.loops {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			l.run()
		}()
	}
	go func() {
		p.wg.Wait()
		p.mu.Lock()
		for _, l := range p.loops {
			unix.Close(l.efd)
		}
		for _, fd := range p.lfds {
			unix.Close(fd)
		}
		p.efdsClosed = true
		p.mu.Unlock()
		close(p.done)
	}()
	return p, nil
}

// Addr is the listening address.
func (p *Proxy) Addr() netip.AddrPort { return p.addr }

// Close stops the loops and closes every connection.
func (p *Proxy) Close() error {
	p.once.Do(func() {
		p.wakeAll(func(l *loop) *atomic.Bool { return &l.stop })
		<-p.done
	})
	return nil
}

// Shutdown stops accepting, closes idle connections, lets the requests in
// flight finish (their answers say "Connection: close") and returns when
// every connection is closed, or closes the rest when ctx ends first.
func (p *Proxy) Shutdown(ctx context.Context) error {
	p.StopAccepting()
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
		p.Close()
		return fmt.Errorf("evloop: shutting down: %w", ctx.Err())
	}
}

// timeouts are the loops' timeouts in nanoseconds.
type timeouts struct{ header, body, idle, origin int64 }

// SetTimeouts changes the timeouts (zero: keep that one) for what the
// loops start from now on: deadlines already set run out as they were.
func (p *Proxy) SetTimeouts(header, body, idle, origin time.Duration) {
	old := p.timeouts.Load()
	t := *old
	if header > 0 {
		t.header = int64(header)
	}
	if body > 0 {
		t.body = int64(body)
	}
	if idle > 0 {
		t.idle = int64(idle)
	}
	if origin > 0 {
		t.origin = int64(origin)
	}
	p.timeouts.Store(&t)
	p.wakeAll(func(l *loop) *atomic.Bool { return &l.reconf })
}

// StopAccepting starts what Shutdown does without waiting: the listener
// stops listening at once (new connections are refused and another socket
// may bind the address), idle connections are closed and the answers in
// flight end with "Connection: close".
func (p *Proxy) StopAccepting() {
	p.wakeAll(func(l *loop) *atomic.Bool { return &l.draining })
	p.mu.Lock()
	if !p.efdsClosed {
		// The descriptors stay open until the loops have ended.
		for _, fd := range p.lfds {
			unix.Shutdown(fd, unix.SHUT_RD)
		}
	}
	p.mu.Unlock()
}

// Active is the number of client connections the loops hold.
func (p *Proxy) Active() int64 { return p.active.Load() }

func (p *Proxy) closeAll() {
	for _, l := range p.loops {
		l.closeFDs()
		unix.Close(l.efd)
	}
	for _, fd := range p.lfds {
		unix.Close(fd)
	}
}

// listenFD opens a listening socket; reusePort lets the loops' listeners
// share the address (without it, as with net.Listen, a second listener on
// the address, of this process or another, fails to bind).
func listenFD(ap netip.AddrPort, reusePort bool) (int, error) {
	fam, sa := sockaddr(ap)
	fd, err := unix.Socket(fam, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	opts := []int{unix.SO_REUSEADDR}
	if reusePort {
		opts = append(opts, unix.SO_REUSEPORT)
	}
	for _, o := range opts {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, o, 1); err != nil {
			unix.Close(fd)
			return -1, err
		}
	}
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return -1, err
	}
	if err := unix.Listen(fd, 4096); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// probeFree binds (and closes) a socket without SO_REUSEPORT to ap: it
// fails with EADDRINUSE when anything listens there already.
func probeFree(ap netip.AddrPort) error {
	fam, sa := sockaddr(ap)
	fd, err := unix.Socket(fam, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		return err
	}
	return unix.Bind(fd, sa)
}

func sockaddr(ap netip.AddrPort) (int, unix.Sockaddr) {
	if ap.Addr().Is4() || ap.Addr().Is4In6() {
		return unix.AF_INET, &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().Unmap().As4()}
	}
	return unix.AF_INET6, &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ap.Addr().As16()}
}

func addrPortOf(sa unix.Sockaddr) netip.AddrPort {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port))
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(a.Addr).Unmap(), uint16(a.Port))
	}
	return netip.AddrPort{}
}

// loop is one epoll instance with its listener, client connections and
// idle origin connections. Everything in it runs on its own goroutine.
type loop struct {
	epfd, lfd, efd int
	events         []unix.EpollEvent
	socks          []sock
	idle           map[netip.AddrPort][]*origin
	maxIdle        int
	origin         netip.AddrPort
	router         Router
	handoffFn      func(net.Conn, []byte)
	admit          func(peer, local netip.AddrPort) (bool, bool)
	local          netip.AddrPort // the listener's address; unspecified: ask each connection
	requestID      func([]byte) []byte
	connsFn        func(delta int)
	timeouts       *atomic.Pointer[timeouts]
	reconf         atomic.Bool
	observeFn      func(any, int, time.Duration, int64, int64)
	// now is the loop's clock (monotonic nanoseconds), read once per
	// batch of events; deadlines are in the same unit.
	now       int64
	lastSweep int64
	// lastYield is when the loop last gave its P to other goroutines
	// (see yieldEvery).
	lastYield                  int64
	yieldNs                    int64 // yieldEvery in nanoseconds; 0: never
	yields                     int   // times the loop yielded (read by tests once it ended)
	headerTO, idleTO, originTO int64
	connectTO, bodyTO          int64
	req                        Request
	lim                        h1.Limits
	nConns                     atomic.Uint64
	nReqs                      atomic.Uint64
	nRejected                  atomic.Uint64
	nHandoffs                  atomic.Uint64
	nConnects                  atomic.Uint64
	nPanics                    atomic.Uint64
	rawBlock                   bool
	deferAccept                bool    // the listener has TCP_DEFER_ACCEPT: a new connection's request is there (readAfterAccept)
	park                       *parker // nil: blocking epoll_wait (RawBlock, or no poller)
	maxConns                   int64
	active                     *atomic.Int64
	clients                    int // client connections of this loop
	stop                       atomic.Bool
	draining                   atomic.Bool
	drainStarted               bool
	freeClients                []*client
	freeOrigins                []*origin
	scratch                    []byte
	xl                         logState
	tlsLoop
}

// sock is what a file descriptor belongs to.
type sock struct {
	c *client
	o *origin
}

type clientState uint8

const (
	csIdle     clientState = iota // waiting for a request head
	csBody                        // forwarding the request body
	csWaitResp                    // request sent, waiting for the answer
)

type client struct {
	fd        int
	buf       []byte
	r, w      int
	scanned   int
	readable  bool
	hup       bool // the peer's FIN was seen: reads go on until EOF
	eof       bool // read returned EOF while an answer was due
	blocked   bool // a write to the client is waiting for EPOLLOUT
	nodelay   bool // TCP_NODELAY is set (see noDelay)
	wrote     bool // an answer's bytes were written to the client
	closed    bool
	lingering bool  // closed, its socket read until the client closes (closeAfterAnswer)
	lingerEnd int64 // when a lingering close ends at the latest
	state     clientState
	close     bool // close after this answer
	isHead    bool
	retryable bool
	chunked   bool
	bodyLeft  int64
	cf        chunkFramer
	o         *origin
	peer      []byte
	peerAP    netip.AddrPort
	deadline  int64
	// the exchange in progress, for Observe
	inExchange bool
	tag        any
	start      int64
	status     int
	sent       int64
	headSent   int64        // the part of sent that was response heads
	in         int64        // the request's size for Observe
	rec        []byte       // the exchange's access-log record (ExchangeLog.Begin)
	ep         *lb.Endpoint // the exchange's pool endpoint (Target.Endpoint)
	// originTO, connectTO and bodyTO are the exchange's timeouts
	// (Target; 0: the loop's).
	originTO, connectTO, bodyTO int64
	// connFailed says the exchange's origin connection could not be made.
	connFailed bool

	ts *tlsSock // TLS clients: the tls.Conn's transport
}

type origin struct {
	fd         int
	ep         *lb.Endpoint // counts the connection (ConnOpened) when set
	buf        []byte
	r, w       int
	sendFrom   int
	scanned    int
	readable   bool
	hup        bool
	connecting bool
	reused     bool
	gotResp    bool
	headDone   bool
	done       bool
	keep       bool
	chunked    bool
	untilClose bool
	bodyLeft   int64
	cf         chunkFramer
	out        []byte
	outOff     int
	c          *client
	addr       netip.AddrPort
	deadline   int64
}

func newLoop(lfd int, sharedLFD bool, oap netip.AddrPort, cfg Config, active *atomic.Int64) (*loop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("evloop: epoll_create: %w", err)
	}
	efd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("evloop: eventfd: %w", err)
	}
	l := &loop{idle: map[netip.AddrPort][]*origin{}, origin: oap, router: cfg.Router, handoffFn: cfg.Handoff, admit: cfg.Admit, observeFn: cfg.Observe, requestID: cfg.RequestID, connsFn: cfg.Conns,
		maxConns: int64(cfg.MaxConnections), active: active,
		headerTO: int64(cfg.HeaderTimeout), idleTO: int64(cfg.IdleTimeout), originTO: int64(cfg.OriginTimeout), connectTO: int64(cfg.ConnectTimeout), bodyTO: int64(cfg.BodyTimeout), epfd: epfd, lfd: lfd, efd: efd, events: make([]unix.EpollEvent, epollEvents),
		maxIdle: cfg.MaxIdlePerLoop, lim: cfg.Limits, rawBlock: cfg.RawBlock,
		scratch: make([]byte, 0, 4096)}
	switch {
	case cfg.yieldEvery == 0:
		l.yieldNs = int64(yieldEvery)
	case cfg.yieldEvery > 0:
		l.yieldNs = int64(cfg.yieldEvery)
	}
	l.initTLS(cfg)
	l.initLog(&cfg)
	for _, fd := range []int{lfd, efd} {
		ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}
		if fd == lfd && sharedLFD {
			ev.Events |= unix.EPOLLEXCLUSIVE
		}
		if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
			unix.Close(epfd)
			unix.Close(efd)
			return nil, fmt.Errorf("evloop: epoll_ctl: %w", err)
		}
	}
	if !l.rawBlock && !cfg.KernelWait {
		// Without the network poller the loop waits in epoll_wait.
		l.park, _ = newParker(l)
	}
	return l, nil
}

// closeFDs closes the loop's descriptors except its eventfd and listener,
// which the Proxy closes once every loop has ended.
func (l *loop) closeFDs() {
	l.tlsExit()
	unix.Close(l.epfd)
	if l.park != nil {
		l.park.close()
	}
	for fd := range l.socks {
		if l.socks[fd].c != nil || l.socks[fd].o != nil {
			l.dropCounts(l.socks[fd])
			unix.Close(fd)
		}
	}
	l.socks = nil
}

func (l *loop) run() {
	if l.rawBlock {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
	}
	defer l.closeFDs()
	for {
		// Look for ready events without telling the scheduler first; only
		// a loop with nothing to do parks in the network poller (or,
		// without it, blocks in a system call that the runtime knows
		// about and may hand the P to another thread).
		var n int
		var err error
		rested := false // the loop gave its P up while it waited
		if l.park != nil {
			n, err = l.park.wait(l.lastSweep + int64(sweepEvery))
			rested = l.park.parked
		} else if n, err = l.pollNow(0); n == 0 && err == nil {
			wait := int(sweepEvery / time.Millisecond)
			if l.rawBlock {
				n, err = l.pollNow(wait)
			} else {
				n, err = unix.EpollWait(l.epfd, l.events, wait)
				rested = true
			}
		}
		if rested {
			// Other goroutines had the P while the loop waited: its
			// next yield is due yieldEvery from now. Yielding at once
			// put every wake-up after more than yieldEvery of rest (most
			// of them at a moderate rate) behind the goroutines ready at
			// that moment, the other loops first.
			l.now = int64(time.Since(clockBase))
			l.lastYield = l.now
		} else {
			l.tick()
		}
		if l.now-l.lastSweep >= int64(sweepEvery) {
			l.lastSweep = l.now
			l.sweep()
		}
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return
		}
		if l.drainStarted && l.clients == 0 {
			return
		}
		for i := 0; i < n; i++ {
			if i > 0 && i%clockEvery == 0 {
				l.tick() // a long batch yields too
			}
			ev := &l.events[i]
			fd := int(ev.Fd)
			switch fd {
			case l.lfd:
				l.accept()
				continue
			case l.efd:
				var b [8]byte
				unix.Read(l.efd, b[:])
				if l.stop.Load() {
					return
				}
				l.tlsCompleted()
				if l.reconf.CompareAndSwap(true, false) {
					t := l.timeouts.Load()
					l.headerTO, l.idleTO, l.originTO, l.bodyTO = t.header, t.idle, t.origin, t.body
				}
				if l.draining.Load() && !l.drainStarted {
					l.startDrain()
				}
				continue
			}
			if fd >= len(l.socks) {
				continue
			}
			l.dispatch(fd, ev.Events)
		}
	}
}

// clockEvery is how many events a loop handles between readings of its
// clock (and chances to yield) within one batch of events.
const clockEvery = 16

// tick reads the loop's clock and yields the P when yieldEvery has passed
// since the last time.
func (l *loop) tick() {
	l.now = int64(time.Since(clockBase))
	if l.yieldNs > 0 && l.now-l.lastYield >= l.yieldNs {
		l.lastYield = l.now
		l.yields++
		runtime.Gosched()
	}
}

// dispatch handles one socket's event. A panic (a bug) ends the
// connection it happened on, not the loop and its other connections.
func (l *loop) dispatch(fd int, events uint32) {
	s := l.socks[fd]
	defer func() {
		if r := recover(); r != nil {
			l.nPanics.Add(1)
			if s.o != nil && s.o.c != nil {
				s.c = s.o.c
			}
			if s.c != nil {
				l.closeClient(s.c)
			}
			if s.o != nil {
				l.closeOrigin(s.o)
			}
		}
	}()
	switch {
	case s.c != nil:
		l.clientEvent(s.c, events)
	case s.o != nil:
		l.originEvent(s.o, events)
	}
}

// pollNow is epoll_wait without telling the scheduler: with a zero timeout
// it never blocks; with -1 (RawBlock) the loop keeps its P while it waits,
// and the runtime's preemption signal (EINTR) is what lets a
// stop-the-world go ahead.
func (l *loop) pollNow(timeout int) (int, error) {
	n, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(l.epfd), uintptr(unsafe.Pointer(&l.events[0])), uintptr(len(l.events)), uintptr(timeout), 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// Raw read and write: the sockets are non-blocking, so the scheduler need
// not be told about these system calls.
func rawRead(fd int, b []byte) (int, unix.Errno) {
	n, _, e := unix.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	return int(n), e
}

func rawWrite(fd int, b []byte) (int, unix.Errno) {
	n, _, e := unix.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	return int(n), e
}

func (l *loop) register(fd int, s sock) error {
	for fd >= len(l.socks) {
		l.socks = append(l.socks, make([]sock, len(l.socks)+64)...)
	}
	l.socks[fd] = s
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLET, Fd: int32(fd)}
	if e := rawEpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &ev); e != 0 {
		l.socks[fd] = sock{}
		return e
	}
	return nil
}

// clockBase makes time.Since a monotonic clock reading.
var clockBase = time.Now()

// sweep ends connections past their deadline.
func (l *loop) sweep() {
	for fd := range l.socks {
		s := l.socks[fd]
		switch {
		case s.c != nil && s.c.deadline != 0 && l.now > s.c.deadline:
			c := s.c
			if c.lingering {
				l.endLinger(c)
			} else if c.state == csIdle && c.r == c.w {
				l.closeClient(c) // idle keep-alive connection
			} else {
				l.reject(c, problemTimeout)
			}
		case s.o != nil && s.o.deadline != 0 && l.now > s.o.deadline:
			o := s.o
			c := o.c
			if c == nil {
				l.closeOrigin(o)
				continue
			}
			o.c, c.o = nil, nil
			connecting := o.connecting
			l.closeOrigin(o)
			if connecting {
				// As the goroutine engine answers a connect timeout.
				c.connFailed = true
				l.reject(c, problemGatewayTimeout)
			} else if o.sendFrom == headroom && !o.headDone && !o.gotResp {
				l.reject(c, problemGatewayTimeout)
			} else {
				l.closeClient(c)
			}
		}
	}
}

// rawAccept is accept4 with the peer's address decoded here: unix.Accept4
// allocates the address and asks the socket's protocol with one more
// system call.
func rawAccept(lfd int) (int, netip.AddrPort, unix.Errno) {
	var rsa unix.RawSockaddrAny
	n := uint32(unix.SizeofSockaddrAny)
	fd, _, e := unix.RawSyscall6(unix.SYS_ACCEPT4, uintptr(lfd), uintptr(unsafe.Pointer(&rsa)), uintptr(unsafe.Pointer(&n)),
		unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0, 0)
	if e != 0 {
		return -1, netip.AddrPort{}, e
	}
	var ap netip.AddrPort
	switch rsa.Addr.Family {
	case unix.AF_INET:
		a := (*unix.RawSockaddrInet4)(unsafe.Pointer(&rsa))
		port := (*[2]byte)(unsafe.Pointer(&a.Port))
		ap = netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(port[0])<<8|uint16(port[1]))
	case unix.AF_INET6:
		a := (*unix.RawSockaddrInet6)(unsafe.Pointer(&rsa))
		port := (*[2]byte)(unsafe.Pointer(&a.Port))
		ap = netip.AddrPortFrom(netip.AddrFrom16(a.Addr).Unmap(), uint16(port[0])<<8|uint16(port[1]))
	}
	return int(fd), ap, 0
}

// acceptBatch bounds the connections one loop takes per listener event
// (the listener is level-triggered, so more wait for the next round): one,
// like nginx's default, spreads a shared listener's connections over the
// loops and saves the accept that would end in EAGAIN.
const acceptBatch = 1

func (l *loop) accept() {
	for i, n := 0, l.acceptLimit(); i < n; i++ {
		fd, peer, e := rawAccept(l.lfd)
		if e != 0 {
			return // EAGAIN, or a transient error (EMFILE, ECONNABORTED)
		}
		if l.admit != nil {
			local := l.local
			if !local.Addr().IsValid() || local.Addr().IsUnspecified() {
				if sa, err := unix.Getsockname(fd); err == nil {
					local = addrPortOf(sa)
				}
			}
			if ok, reset := l.admit(peer, local); !ok {
				if reset {
					unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
				}
				unix.Close(fd)
				continue
			}
		}
		if l.maxConns > 0 && l.active.Load() >= l.maxConns {
			rawClose(fd)
			continue
		}
		var c *client
		if n := len(l.freeClients); n > 0 {
			c = l.freeClients[n-1]
			l.freeClients = l.freeClients[:n-1]
			*c = client{buf: c.buf[:cap(c.buf)], peer: c.peer[:0], rec: c.rec[:0]}
		} else {
			c = &client{buf: make([]byte, clientBufSize), peer: make([]byte, 0, 48)}
		}
		c.fd = fd
		c.peerAP = peer
		if l.tlsCfg != nil {
			l.noDelay(c) // a TLS handshake writes several flights
		}
		c.deadline = l.now + l.headerTO
		c.peer = c.peerAP.Addr().AppendTo(c.peer)
		l.nConns.Add(1)
		if err := l.register(fd, sock{c: c}); err != nil {
			rawClose(fd)
			continue
		}
		l.clients++
		l.active.Add(1)
		if l.connsFn != nil {
			l.connsFn(1)
		}
		if l.tlsCfg != nil {
			if cfg := l.tlsCfg(); cfg != nil {
				l.startTLS(c, cfg)
			}
		}
		l.readAfterAccept(fd, c)
	}
}

// noDelay sets TCP_NODELAY on a client's socket. The loop sets it before
// the second write to a client, not at accept: the first write of a
// connection never waits for Nagle's algorithm (nothing is unacknowledged
// yet), and a connection answered in one write and closed, as with
// "Connection: close", saves the system call; a later write (the next
// answer on a kept-alive connection, or more of a streamed one) must not
// wait for the client's acknowledgement.
func (l *loop) noDelay(c *client) {
	c.nodelay = true
	rawSetsockoptInt(c.fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
}

// wake interrupts the loop's epoll_wait.
func (l *loop) wake() {
	var one [8]byte
	one[0] = 1
	unix.Write(l.efd, one[:])
}

// startDrain stops accepting and closes the connections without a request.
func (l *loop) startDrain() {
	l.drainStarted = true
	unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, l.lfd, nil)
	l.lfd = -1
	for fd := range l.socks {
		if c := l.socks[fd].c; c != nil && c.lingering {
			l.endLinger(c)
		} else if c != nil && c.state == csIdle && c.r == c.w {
			l.closeClient(c)
		}
	}
}

// dropClient ends the count of a client connection the loop no longer
// serves: at once among the clients a drain waits for (l.clients), and
// once its socket is closed or handed off (dropOpen) among the open
// connections (the limit's count, Conns).
func (l *loop) dropClient() {
	l.clients--
}

func (l *loop) dropOpen() {
	l.active.Add(-1)
	if l.connsFn != nil {
		l.connsFn(-1)
	}
}

// observe reports the end of the client's exchange to Observe.
func (l *loop) observe(c *client, status int) {
	if !c.inExchange {
		return
	}
	c.inExchange = false
	if l.observeFn != nil {
		l.observeFn(c.tag, status, time.Duration(l.now-c.start), c.in, max(c.sent-c.headSent, 0))
	}
	if c.ep != nil {
		l.endpointEnd(c, status)
	}
	if l.xl.log != nil {
		l.logEnd(c, Ended{Status: status, Elapsed: time.Duration(l.now - c.start), BytesIn: c.in, BytesOut: max(c.sent-c.headSent, 0)})
	}
	c.tag = nil
}

func (l *loop) closeClient(c *client) {
	if c.closed || c.ts != nil && c.ts.hs {
		return // a handshake goroutine owns the socket: it ends on its own
	}
	l.releaseClient(c)
	if c.ts != nil {
		l.tlsClose(c)
	}
	l.closeSocket(c)
}

// closeSocket closes a released client's socket.
func (l *loop) closeSocket(c *client) {
	l.socks[c.fd] = sock{}
	rawClose(c.fd)
	l.dropOpen()
	if len(c.buf) == clientBufSize {
		l.freeClients = append(l.freeClients, c)
	}
}

// releaseClient ends what an open client connection counts and holds
// (its exchange, its origin connection, its place among the loop's
// clients); closeClient closes its socket then, closeAfterAnswer may
// linger first.
func (l *loop) releaseClient(c *client) {
	if c.status == 0 {
		l.observe(c, 499)
	} else {
		l.observe(c, c.status)
	}
	c.closed = true
	l.dropClient()
	if o := c.o; o != nil {
		c.o, o.c = nil, nil
		l.closeOrigin(o)
	}
}

func (l *loop) closeOrigin(o *origin) {
	if o.fd < 0 {
		return
	}
	if o.ep != nil {
		o.ep.ConnClosed()
		o.ep = nil
	}
	if o.c != nil {
		o.c.o = nil
		o.c = nil
	}
	idle := l.idle[o.addr]
	for i, x := range idle {
		if x == o {
			l.idle[o.addr] = append(idle[:i], idle[i+1:]...)
			break
		}
	}
	l.socks[o.fd] = sock{}
	rawClose(o.fd)
	o.fd = -1
	l.freeOrigins = append(l.freeOrigins, o)
}

func (l *loop) clientEvent(c *client, ev uint32) {
	if c.lingering {
		l.lingerRead(c)
		return
	}
	if c.ts != nil {
		if ev = l.tlsEvent(c, ev); ev == 0 {
			return
		}
	}
	if ev&unix.EPOLLERR != 0 {
		l.closeClient(c)
		return
	}
	if ev&unix.EPOLLOUT != 0 && c.blocked {
		c.blocked = false
		if o := c.o; o != nil {
			l.pump(o)
		}
	}
	if c.closed {
		return
	}
	if ev&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP) != 0 {
		c.readable = true
		c.hup = c.hup || ev&(unix.EPOLLRDHUP|unix.EPOLLHUP) != 0
		l.clientRead(c)
	}
}

// clientRead reads while the client has data and the loop can take it.
func (l *loop) clientRead(c *client) {
	for c.readable && !c.closed {
		if c.w == len(c.buf) {
			switch {
			case c.r > 0:
				c.w = copy(c.buf, c.buf[c.r:c.w])
				c.scanned -= c.r
				c.r = 0
			case c.state != csIdle:
				return // backpressure: read again once this exchange moves on
			case len(c.buf) < l.lim.MaxURI+l.lim.MaxHeaderBytes+1024:
				nb := make([]byte, l.lim.MaxURI+l.lim.MaxHeaderBytes+1024)
				copy(nb, c.buf[:c.w])
				c.buf = nb
			default:
				l.reject(c, headTooLarge(c.buf[c.r:c.w]))
				return
			}
		}
		space := len(c.buf) - c.w
		fresh := c.r == c.w && c.state == csIdle
		n, e := l.readClient(c, c.buf[c.w:])
		if e == unix.EAGAIN {
			c.readable = false
			return
		}
		if e == 0 && n == 0 && c.state == csWaitResp {
			// The client half-closed after a whole request: it still
			// gets the answer, and those of the requests buffered after
			// it, then the connection closes.
			c.eof, c.readable = true, false
			return
		}
		if e != 0 || n == 0 {
			l.closeClient(c)
			return
		}
		c.w += n
		if fresh {
			c.deadline = l.now + l.headerTO
		} else if c.state == csBody {
			c.deadline = l.now + l.bodyTimeout(c)
		}
		if n < space && !c.hup && (c.ts == nil || !c.ts.more()) {
			// Edge-triggered: a short read emptied the socket; new data
			// brings a new event, so no read that would fail with EAGAIN.
			// (A TLS client's: see tlsSock.more.)
			c.readable = false
		}
		l.clientProgress(c)
	}
}

var (
	problemHeadTooLarge   = &h1.Problem{Status: 431, Reason: "request header fields too large"}
	problemLineTooLong    = &h1.Problem{Status: 414, Reason: "request target too long"}
	problemUpgrade        = &h1.Problem{Status: 501, Reason: "upgrade is not supported by the event-loop engine"}
	problemForm           = &h1.Problem{Status: 400, Reason: "only origin-form request targets are supported by the event-loop engine"}
	problemChunk          = &h1.Problem{Status: 400, Reason: "invalid chunked body"}
	problemBadGateway     = &h1.Problem{Status: 502, Reason: "bad gateway"}
	problemNoRoute        = &h1.Problem{Status: 404, Reason: "no route"}
	problemTimeout        = &h1.Problem{Status: 408, Reason: "request timeout"}
	problemBareLF         = &h1.Problem{Status: 400, Reason: "bare LF"}
	problemGatewayTimeout = &h1.Problem{Status: 504, Reason: "origin timeout"}
)

// headTooLarge is the answer to a request head that does not fit the
// client's buffer: 414 while its request line has not ended (as nginx
// answers a request line longer than its buffers), else 431.
func headTooLarge(head []byte) *h1.Problem {
	if bytes.IndexByte(head, '\n') < 0 {
		return problemLineTooLong
	}
	return problemHeadTooLarge
}

// clientProgress acts on the bytes buffered from the client.
func (l *loop) clientProgress(c *client) {
	switch c.state {
	case csIdle:
		if c.r == c.w {
			c.r, c.w, c.scanned = 0, 0, 0
			return
		}
		end := findHeadEnd(c.buf[c.r:c.w], c.scanned)
		if end < 0 {
			if bareLF(c.buf[c.r:c.w], c.scanned) {
				// A head with a line ending in LF alone is refused at once
				// (it may never see a CRLFCRLF).
				l.handoffOr(c, problemBareLF)
				return
			}
			c.scanned = c.w - c.r
			if c.w-c.r > l.lim.MaxURI+l.lim.MaxHeaderBytes+1024 {
				l.reject(c, headTooLarge(c.buf[c.r:c.w]))
			}
			return
		}
		head := c.buf[c.r : c.r+end]
		rh, p := parseRequest(head, l.lim)
		if p != nil {
			// The fallback engine, when there is one, answers malformed
			// requests in its own words.
			l.handoffOr(c, p)
			return
		}
		if rh.upgrade {
			l.handoffOr(c, problemUpgrade)
			return
		}
		if rh.target[0] != '/' {
			l.handoffOr(c, problemForm)
			return
		}
		dst := Target{Origin: l.origin}
		if l.router != nil {
			r := &l.req
			*r = Request{Method: rh.method, Target: rh.target, Host: rh.host, Headers: rh.headers, Peer: c.peerAP, HTTP10: !rh.http11}
			r.Path, r.Query = normalPath(rh.target)
			if c.ts != nil {
				r.TLS = c.ts.state
			}
			var ok bool
			if dst, ok = l.router.Route(r); !ok {
				l.handoffOr(c, problemNoRoute)
				return
			}
		}
		if dst.Answer != nil {
			l.selfAnswer(c, dst, &rh, end)
			return
		}
		l.nReqs.Add(1)
		c.inExchange, c.tag, c.start, c.status, c.sent, c.headSent = true, dst.Tag, l.now, 0, 0, 0
		// The header block with the empty line that ends it, and the
		// body's Content-Length (0 for a chunked body), as the goroutine
		// engine counts a request.
		c.in = int64(len(rh.headers)) + 2 + max(rh.contentLength, 0)
		l.exchangeBegin(c, dst)
		o, err := l.getOrigin(dst.Origin)
		if err != nil {
			c.connFailed = true
			l.reject(c, problemBadGateway)
			return
		}
		o.c, c.o = c, o
		c.close = rh.close || l.drainStarted
		c.isHead = string(rh.method) == "HEAD"
		c.chunked = rh.chunked
		c.bodyLeft = rh.contentLength
		c.cf = chunkFramer{}
		c.retryable = !rh.chunked && rh.contentLength <= 0 && (c.isHead || string(rh.method) == "GET")
		o.out = appendRequestHead(o.out[:0], &rh, c.peer, l.requestID)
		if dst.Rewrite != nil {
			o.out = l.rewriteHead(o.out, dst.Rewrite, l.req.Path, l.req.Query)
		}
		if c.ts != nil {
			o.out = markHTTPS(o.out)
		}
		o.outOff = 0
		l.armOrigin(o, c) // (a connecting origin keeps its connect timeout)
		if rh.chunked || rh.contentLength > 0 {
			c.deadline = l.now + l.bodyTimeout(c)
		} else {
			c.deadline = 0
		}
		c.r += end
		c.scanned = 0
		if rh.chunked || rh.contentLength > 0 {
			c.state = csBody
			l.forwardBody(c)
		} else {
			c.state = csWaitResp
		}
		if !c.closed {
			l.flushOrigin(o)
		}
	case csBody:
		l.forwardBody(c)
		if c.o != nil {
			l.flushOrigin(c.o)
		}
	}
}

// forwardBody queues buffered request-body bytes for the origin. While
// the origin has not taken what is queued, the body is held back: the
// client's body timeout stops (the loop is not waiting for the client;
// the origin's timeout runs) and starts again once the origin took it.
func (l *loop) forwardBody(c *client) {
	o := c.o
	if len(o.out)-o.outOff > maxPendingBody {
		c.deadline = 0
		return
	}
	if c.deadline == 0 {
		c.deadline = l.now + l.bodyTimeout(c)
	}
	avail := c.buf[c.r:c.w]
	if c.chunked {
		n, done, bad := c.cf.feed(avail)
		if bad {
			l.reject(c, problemChunk)
			return
		}
		o.out = append(o.out, avail[:n]...)
		c.r += n
		if done {
			c.state = csWaitResp
			c.deadline = 0
		}
		return
	}
	k := int64(len(avail))
	if k > c.bodyLeft {
		k = c.bodyLeft
	}
	o.out = append(o.out, avail[:k]...)
	c.r += int(k)
	c.bodyLeft -= k
	if c.bodyLeft == 0 {
		c.state = csWaitResp
		c.deadline = 0
	}
}

// handoffOr gives the connection to Handoff, or answers p without one.
func (l *loop) handoffOr(c *client, p *h1.Problem) {
	if l.handoffFn == nil {
		l.reject(c, p)
		return
	}
	buffered := append([]byte(nil), c.buf[c.r:c.w]...)
	unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, c.fd, nil)
	l.socks[c.fd] = sock{}
	c.closed = true
	l.dropClient()
	l.dropOpen()
	// net.FileConn duplicates the descriptor into Go's poller; closing
	// the file closes the loop's copy.
	f := os.NewFile(uintptr(c.fd), "evloop-handoff")
	conn, err := net.FileConn(f)
	f.Close()
	if len(c.buf) == clientBufSize {
		l.freeClients = append(l.freeClients, c)
	}
	if err != nil {
		return
	}
	if c.ts != nil {
		conn = c.ts.detach(conn) // the tls.Conn, its state kept
	}
	l.nHandoffs.Add(1)
	l.handoffFn(conn, buffered)
}

func (l *loop) reject(c *client, p *h1.Problem) {
	b := l.scratch[:0]
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(p.Status), 10)
	b = append(b, ' ')
	b = append(b, http.StatusText(p.Status)...)
	b = append(b, "\r\nDate: "...)
	b = time.Now().UTC().AppendFormat(b, http.TimeFormat)
	b = append(b, "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(p.Reason)+1), 10)
	b = append(b, "\r\n\r\n"...)
	c.headSent += int64(len(b))
	b = append(b, p.Reason...)
	b = append(b, '\n')
	// Counted before the client can read it (as in pump).
	c.sent += int64(len(b))
	l.observe(c, p.Status)
	l.nRejected.Add(1)
	l.writeClient(c, b) // best effort: a short error answer fits the socket buffer
	l.scratch = b[:0]
	if p == problemTimeout {
		l.closeClient(c) // a client too slow to send its request is not waited for again
		return
	}
	l.closeAfterAnswer(c)
}

func (l *loop) getOrigin(addr netip.AddrPort) (*origin, error) {
	if idle := l.idle[addr]; len(idle) > 0 {
		o := idle[len(idle)-1]
		l.idle[addr] = idle[:len(idle)-1]
		o.reused = true
		o.deadline = l.now + l.originTO
		return o, nil
	}
	fam, sa := sockaddr(addr)
	l.nConnects.Add(1)
	fd, err := unix.Socket(fam, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	err = unix.Connect(fd, sa)
	if err != nil && err != unix.EINPROGRESS {
		unix.Close(fd)
		return nil, err
	}
	var o *origin
	if n := len(l.freeOrigins); n > 0 {
		o = l.freeOrigins[n-1]
		l.freeOrigins = l.freeOrigins[:n-1]
		*o = origin{buf: o.buf, out: o.out[:0]}
	} else {
		o = &origin{buf: make([]byte, originBufSize+headroom), out: make([]byte, 0, 4096)}
	}
	o.fd = fd
	o.addr = addr
	o.deadline = l.now + l.originTO
	o.connecting = err != nil
	if o.connecting {
		o.deadline = l.now + l.connectTO
	}
	o.r, o.w, o.sendFrom = headroom, headroom, headroom
	if err := l.register(fd, sock{o: o}); err != nil {
		unix.Close(fd)
		o.fd = -1
		l.freeOrigins = append(l.freeOrigins, o)
		return nil, err
	}
	return o, nil
}

func (l *loop) originEvent(o *origin, ev uint32) {
	if o.connecting && ev&(unix.EPOLLOUT|unix.EPOLLERR|unix.EPOLLHUP) != 0 {
		o.connecting = false
		if e, err := unix.GetsockoptInt(o.fd, unix.SOL_SOCKET, unix.SO_ERROR); err != nil || e != 0 {
			if o.c != nil {
				o.c.connFailed = true
			}
			l.originFailed(o)
			return
		}
		o.deadline = l.now + l.originTimeout(o)
	}
	if ev&unix.EPOLLOUT != 0 && o.c != nil && o.outOff < len(o.out) {
		l.flushOrigin(o)
		if o.fd < 0 {
			return
		}
	}
	if ev&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		o.readable = true
		o.hup = o.hup || ev&(unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0
		if o.c == nil {
			// Idle: the origin closed it or sent something unasked.
			l.closeOrigin(o)
			return
		}
		l.pump(o)
	}
}

// flushOrigin writes the queued request bytes.
func (l *loop) flushOrigin(o *origin) {
	if o.connecting {
		return
	}
	for o.outOff < len(o.out) {
		n, e := rawWrite(o.fd, o.out[o.outOff:])
		if e == unix.EAGAIN {
			return
		}
		if e != 0 {
			l.originFailed(o)
			return
		}
		o.outOff += n
	}
	c := o.c
	if c == nil {
		return
	}
	if !c.retryable {
		o.out, o.outOff = o.out[:0], 0
	}
	if c.state == csBody {
		// More of the body may be buffered or waiting in the socket.
		if c.r < c.w {
			l.forwardBody(c)
			if c.o == o && o.outOff < len(o.out) {
				l.flushOrigin(o)
				return
			}
		}
		if c.readable {
			l.clientRead(c)
		}
	}
}

// originFailed handles an origin connection that broke: a request that
// can be retried goes to a new connection, otherwise the client gets 502
// (if nothing was sent yet) or is closed.
func (l *loop) originFailed(o *origin) {
	c := o.c
	if c == nil {
		l.closeOrigin(o)
		return
	}
	if !o.gotResp && c.retryable && o.reused {
		addr, req := o.addr, o.out
		o.out = nil
		o.c, c.o = nil, nil
		l.closeOrigin(o)
		// getOrigin may hand back the same struct from the free list.
		n, err := l.getOrigin(addr)
		if err != nil {
			l.reject(c, problemBadGateway)
			return
		}
		n.reused = false // a new connection is not retried again
		n.c, c.o = c, n
		l.armOrigin(n, c)
		if n == o {
			n.out = req
		} else {
			n.out, o.out = append(n.out[:0], req...), req[:0]
		}
		n.outOff = 0
		l.flushOrigin(n)
		return
	}
	o.c, c.o = nil, nil
	l.closeOrigin(o)
	if !o.gotResp {
		l.reject(c, problemBadGateway)
		return
	}
	l.closeClient(c)
}

// pump moves the answer from the origin to the client: it sends what is
// ready, parses what is buffered and reads more, until the client's socket
// is full, the origin has nothing more for now, or the answer is complete.
func (l *loop) pump(o *origin) {
	for {
		c := o.c
		if c == nil || c.closed {
			return
		}
		if o.sendFrom < o.r {
			if c.blocked {
				return
			}
			want := o.r - o.sendFrom
			if c.wrote && !c.nodelay {
				l.noDelay(c)
			}
			c.wrote = true
			if o.done && c.inExchange {
				// This write ends the answer: the exchange is counted
				// (and logged) first, so that it is in the metrics by
				// the time the client has the whole answer.
				c.sent += int64(want)
				l.observe(c, c.status)
				c.sent -= int64(want)
			}
			n, e := l.writeClient(c, o.buf[o.sendFrom:o.r])
			if e == unix.EAGAIN {
				c.blocked = true
				return
			}
			if e != 0 {
				l.closeClient(c)
				return
			}
			o.sendFrom += n
			c.sent += int64(n)
			if n < want || c.blocked { // blocked: TLS ciphertext is queued
				c.blocked = true
				return
			}
		}
		if o.done {
			l.finish(o, c)
			return
		}
		if o.r == o.w {
			o.r, o.w, o.sendFrom, o.scanned = headroom, headroom, headroom, 0
		}
		if o.r < o.w {
			progressed, ok := l.parseAnswer(o, c)
			if !ok {
				return
			}
			if progressed {
				continue
			}
		}
		if !o.readable {
			return
		}
		if o.w == len(o.buf) {
			if o.sendFrom > headroom {
				k := copy(o.buf[headroom:], o.buf[o.sendFrom:o.w])
				d := o.sendFrom - headroom
				o.r -= d
				o.sendFrom = headroom
				o.w = headroom + k
			} else {
				// A head that does not fit the buffer.
				l.answerFailed(o, c)
				return
			}
		}
		space := len(o.buf) - o.w
		n, e := rawRead(o.fd, o.buf[o.w:])
		if e == unix.EAGAIN {
			o.readable = false
			return
		}
		if e != 0 || n == 0 {
			if o.headDone && o.untilClose {
				o.done, o.keep = true, false
				continue
			}
			l.originFailed(o)
			return
		}
		o.w += n
		o.deadline = l.now + l.originTimeout(o)
		if n < space && !o.hup {
			o.readable = false
		}
	}
}

// parseAnswer advances over buffered answer bytes. It reports whether it
// made progress and whether the exchange is still alive.
func (l *loop) parseAnswer(o *origin, c *client) (progressed, ok bool) {
	if !o.headDone {
		end := findHeadEnd(o.buf[o.r:o.w], o.scanned)
		if end < 0 {
			o.scanned = o.w - o.r
			return false, true
		}
		rh, p := parseResponse(o.buf[o.r : o.r+end])
		if p != nil {
			l.answerFailed(o, c)
			return false, false
		}
		if !o.gotResp {
			o.gotResp = true
			c.retryable = false
			if o.outOff >= len(o.out) {
				o.out, o.outOff = o.out[:0], 0
			}
		}
		o.scanned = 0
		bodyStart := o.r + end
		interim := rh.status < 200
		if rh.status == 101 {
			l.answerFailed(o, c) // no upgrade was asked for
			return false, false
		}
		if !interim {
			c.status = rh.status
		}
		if l.drainStarted && !interim {
			c.close = true // the answer tells the client to go
		}
		o.sendFrom = l.rewriteAnswerHead(o.buf, o.r, bodyStart, &rh.conn, rh.hop, c.close && !interim || !interim && rh.contentLength < 0 && !rh.chunked && !c.isHead && rh.status != 204 && rh.status != 304)
		c.headSent += int64(bodyStart - o.sendFrom)
		o.r = bodyStart
		if interim {
			return true, true
		}
		o.headDone = true
		o.keep = !rh.close
		o.chunked, o.untilClose, o.bodyLeft = false, false, 0
		o.cf = chunkFramer{}
		switch {
		case c.isHead || rh.status == 204 || rh.status == 304:
		case rh.chunked:
			o.chunked = true
		case rh.contentLength >= 0:
			o.bodyLeft = rh.contentLength
		default:
			o.untilClose = true
			o.keep = false
			c.close = true
		}
		if !o.chunked && !o.untilClose && o.bodyLeft == 0 {
			o.done = true
			return true, true
		}
		// Go on with the body bytes of the same read, so that the head
		// and the body leave in one write.
	}
	avail := o.buf[o.r:o.w]
	switch {
	case o.chunked:
		n, done, bad := o.cf.feed(avail)
		if bad {
			o.c, c.o = nil, nil
			l.closeOrigin(o)
			l.closeClient(c)
			return false, false
		}
		o.r += n
		o.done = done
	case o.untilClose:
		o.r = o.w
	default:
		k := int64(len(avail))
		if k > o.bodyLeft {
			k = o.bodyLeft
		}
		o.r += int(k)
		o.bodyLeft -= k
		o.done = o.bodyLeft == 0
	}
	return true, true
}

// answerFailed answers 502 when nothing was sent yet, else closes.
func (l *loop) answerFailed(o *origin, c *client) {
	o.c, c.o = nil, nil
	l.closeOrigin(o)
	if o.sendFrom == headroom && !o.headDone {
		l.reject(c, problemBadGateway)
		return
	}
	l.closeClient(c)
}

// rewriteAnswerHead rewrites the head buf[start:end] in place without its
// hop-by-hop fields, those named in its Connection fields (conn) among
// them (adding "Connection: close" when asked), so that it ends at end,
// and returns where it now starts. hop says the head has a hop-by-hop
// field (parseResponse saw it; fields named in Connection come with a
// Connection field, which is one): without one and without addClose the
// head is left as it is.
func (l *loop) rewriteAnswerHead(buf []byte, start, end int, conn *connOptions, hop, addClose bool) int {
	head := buf[start:end]
	if !hop && !addClose {
		return start
	}
	b := l.scratch[:0]
	first := true
	rest := head[:len(head)-2]
	for len(rest) > 0 {
		eol := 0
		for eol < len(rest) && rest[eol] != '\n' {
			eol++
		}
		line := rest[:eol+1]
		rest = rest[eol+1:]
		if !first {
			colon := 0
			for colon < len(line) && line[colon] != ':' {
				colon++
			}
			if hopByHop(line[:colon]) || conn.has(line[:colon]) {
				continue
			}
		}
		first = false
		b = append(b, line...)
	}
	if addClose {
		b = append(b, "Connection: close\r\n"...)
	}
	b = append(b, "\r\n"...)
	l.scratch = b[:0]
	ns := end - len(b)
	copy(buf[ns:end], b)
	return ns
}

// finish ends an exchange: the origin connection goes back to the idle
// list when it can be reused, and the client's next request is served.
func (l *loop) finish(o *origin, c *client) {
	o.c, c.o = nil, nil
	l.observe(c, c.status)
	if o.keep && !o.hup && o.r == o.w && len(l.idle[o.addr]) < l.maxIdle && c.state == csWaitResp {
		o.r, o.w, o.sendFrom, o.scanned = headroom, headroom, headroom, 0
		o.headDone, o.done, o.gotResp, o.readable = false, false, false, false
		o.out, o.outOff = o.out[:0], 0
		o.deadline = l.now + l.idleTO
		l.idle[o.addr] = append(l.idle[o.addr], o)
	} else {
		l.closeOrigin(o)
	}
	if c.close || c.state != csWaitResp {
		// An answer that came before the whole request body closes the
		// connection too.
		l.closeAfterAnswer(c)
		return
	}
	c.state = csIdle
	c.deadline = l.now + l.idleTO
	if c.r < c.w {
		c.deadline = l.now + l.headerTO
	}
	l.clientProgress(c)
	if !c.closed && c.eof && c.state == csIdle {
		l.closeClient(c) // nothing more will come
		return
	}
	if !c.closed && c.readable && c.state == csIdle {
		l.clientRead(c)
	}
}

// bareLF reports whether b, from offset from on (less one byte, the CR of
// a CRLF split across reads), has an LF not preceded by CR.
func bareLF(b []byte, from int) bool {
	from = max(from-1, 0)
	for {
		i := bytes.IndexByte(b[from:], '\n')
		if i < 0 {
			return false
		}
		i += from
		if i == 0 || b[i-1] != '\r' {
			return true
		}
		from = i + 1
	}
}
