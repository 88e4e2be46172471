package dataplane

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"
	"golang.org/x/net/http2"

	"github.com/meridian-platform/meridian/internal/dataplane/config"
	"github.com/meridian-platform/meridian/internal/dataplane/h1"
	"github.com/meridian-platform/meridian/internal/dataplane/proxyproto"
	"github.com/meridian-platform/meridian/internal/lb"
	"github.com/meridian-platform/meridian/internal/netpolicy"
	"github.com/meridian-platform/meridian/internal/secevents"
)

// Options configures a Server. Every field is optional.
type Options struct {
	Logger *slog.Logger
	// AccessLog receives JSON access-log lines of load balancers that
	// enable it (default os.Stdout).
	AccessLog io.Writer
	// Registry holds pool runtime state (default: a new one owned by the
	// server and closed by Shutdown).
	Registry *lb.Registry
	// Metrics is where the data-plane metrics are registered (default: not
	// registered anywhere).
	Metrics prometheus.Registerer
	// Limits bound request heads (default h1.DefaultLimits).
	Limits h1.Limits
	// MaxRequestBodySize bounds the part of an HTTP/1.1 request body the
	// engine reads together with the head (it reads at most 8 KiB ahead in
	// any case; the rest streams). Default 1 MiB.
	MaxRequestBodySize int
	// MaxReplayBodySize is the largest request body kept in memory so that
	// a retry can send it again (default 64 KiB). Only requests a route
	// would retry are kept; a larger body streams and is not retried.
	MaxReplayBodySize int
	// DefaultRouteTimeout bounds an HTTP/1.1 origin exchange when the route
	// sets no timeout (default 60s).
	DefaultRouteTimeout time.Duration
	// ProxyHeaderTimeout bounds reading a PROXY protocol header and the TLS
	// handshake (default 10s).
	ProxyHeaderTimeout time.Duration
	// Stages fills slots of Order by name ("authn", "policy", "ratelimit",
	// "waf", ...) with the factories of capabilities built outside this
	// package (which cannot import them). A factory given here replaces
	// the slot's own. Unknown names are an error at New.
	Stages map[string]StageFactory
	// SecurityEvents receives the events of NetworkPolicy verdicts taken
	// at accept time (default: none are produced; counters still count).
	SecurityEvents secevents.Sink
	// HTTP1Engine picks how HTTP/1.1 listeners, with TLS or without (not
	// h2c or PROXY protocol ones), are served: "evloop" (the default, also
	// "", on Linux) serves them on epoll event loops (package evloop),
	// which make the TLS handshakes, forward the requests of load balancers
	// without stages, security settings or route features themselves and
	// hand every other connection (HTTP/2 by ALPN included, as the
	// *tls.Conn) to the goroutine engine on the same socket; "goroutine"
	// (the default elsewhere) serves every connection on its own goroutine.
	HTTP1Engine string
}

// HTTP/1.1 engines (Options.HTTP1Engine).
const (
	EngineGoroutine = "goroutine"
	EngineEvloop    = "evloop"
)

// CheckHTTP1Engine returns an error when name is not an HTTP/1.1 engine
// (callers prefix the field or flag it came from).
func CheckHTTP1Engine(name string) error {
	switch name {
	case "", EngineGoroutine, EngineEvloop:
		return nil
	}
	return fmt.Errorf("%q is not an HTTP/1.1 engine (want %q or %q)", name, EngineGoroutine, EngineEvloop)
}

var errNoEvloop = errors.New("the event-loop engine cannot serve this listener")

// Server is a node's data plane. Apply installs a compiled table; requests
// already running finish on the table they started with.
type Server struct {
	opts       Options
	log        *slog.Logger
	limits     h1.Limits
	reg        *lb.Registry
	ownReg     bool
	alog       *AccessLogWriter
	metrics    *metrics
	origins    origins
	transports transports
	h2         *http2.Server
	h2base     *http.Server

	state     atomic.Pointer[state]
	mu        sync.Mutex
	listeners map[string]*listener
	closed    bool
	mirrorSem chan struct{}
	netpol    *netpolicy.Metrics
}

// state is what one Apply installs atomically.
type state struct {
	table        *config.Table
	pipelines    map[*config.VHost]*Pipeline
	tlsConfigs   map[string]*tls.Config
	routeMetrics map[*config.Route]*routeMetrics
	lbMetrics    map[*config.VHost]*lbMetrics
	// routeLB is the load-balancer metrics of each route's load balancer.
	routeLB map[*config.Route]*lbMetrics
	series  seriesSet
}

// New returns a server with an empty table.
func New(opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.AccessLog == nil {
		opts.AccessLog = os.Stdout
	}
	if opts.Limits.MaxURI == 0 {
		opts.Limits = h1.DefaultLimits
	}
	if opts.MaxRequestBodySize == 0 {
		opts.MaxRequestBodySize = 1 << 20
	}
	if opts.MaxReplayBodySize == 0 {
		opts.MaxReplayBodySize = 64 << 10
	}
	if opts.DefaultRouteTimeout <= 0 {
		opts.DefaultRouteTimeout = 60 * time.Second
	}
	if opts.ProxyHeaderTimeout <= 0 {
		opts.ProxyHeaderTimeout = 10 * time.Second
	}
	if err := CheckHTTP1Engine(opts.HTTP1Engine); err != nil {
		panic("dataplane: Options.HTTP1Engine: " + err.Error())
	}
	if opts.HTTP1Engine == "" {
		opts.HTTP1Engine = DefaultHTTP1Engine()
	}
	for name := range opts.Stages {
		known := false
		for _, d := range Order {
			known = known || d.Name == name
		}
		if !known {
			panic(fmt.Sprintf("dataplane: Options.Stages names unknown stage %q", name))
		}
	}
	s := &Server{opts: opts, log: opts.Logger.With("component", "dataplane"), limits: opts.Limits,
		reg: opts.Registry, listeners: map[string]*listener{}, mirrorSem: make(chan struct{}, 64)}
	if s.reg == nil {
		s.reg = lb.NewRegistry(lb.RegistryOptions{Logger: opts.Logger})
		s.ownReg = true
	}
	s.alog = NewAccessLogWriter(opts.AccessLog)
	s.metrics = newMetrics(opts.Metrics, s.reg)
	s.netpol = netpolicy.NewMetrics(opts.Metrics)
	if opts.Metrics != nil && evloopSupported {
		opts.Metrics.MustRegister(evCollector{s})
	}
	s.state.Store(s.buildState(&config.Table{HTTP: map[string]*config.HTTPListener{}, TCP: map[string]*config.TCPListener{}, Pools: map[string]*config.Pool{}}))
	return s
}

// Registry returns the pool registry (for admin output).
func (s *Server) Registry() *lb.Registry { return s.reg }

// Table returns the table in force.
func (s *Server) Table() *config.Table { return s.state.Load().table }

func (s *Server) buildState(t *config.Table) *state {
	st := &state{table: t, pipelines: map[*config.VHost]*Pipeline{}, tlsConfigs: map[string]*tls.Config{},
		routeMetrics: map[*config.Route]*routeMetrics{}, lbMetrics: map[*config.VHost]*lbMetrics{}, series: seriesSet{},
		routeLB: map[*config.Route]*lbMetrics{}}
	env := &StageEnv{AccessLog: s.alog, Table: t}
	for k, l := range t.HTTP {
		for _, vh := range l.VHosts() {
			if _, done := st.pipelines[vh]; done {
				continue
			}
			st.pipelines[vh] = buildPipeline(vh, env, s.opts.Stages)
			st.lbMetrics[vh] = s.metrics.forLB(vh, st.series)
			for _, r := range vh.Routes {
				st.routeMetrics[r] = s.metrics.forRoute(vh, r, st.series)
				st.routeLB[r] = st.lbMetrics[vh]
			}
			if vh.Default != nil {
				st.routeMetrics[vh.Default] = s.metrics.forRoute(vh, vh.Default, st.series)
				st.routeLB[vh.Default] = st.lbMetrics[vh]
			}
		}
		if l.TLS != nil {
			certs := l.TLS
			protos := []string{"http/1.1"}
			if l.HTTP2 {
				protos = []string{"h2", "http/1.1"}
			}
			var clientAuth tls.ClientAuthType
			if l.ClientCertificates {
				// Asked for, not verified here: the authn stage checks the
				// chain against the CA of the load balancer or route.
				clientAuth = tls.RequestClientCert
			}
			st.tlsConfigs[k] = &tls.Config{
				MinVersion: l.MinTLSVersion,
				NextProtos: protos,
				ClientAuth: clientAuth,
				GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
					if c := certs.Get(hello.ServerName); c != nil {
						return c, nil
					}
					return nil, errors.New("no certificate")
				},
			}
		}
	}
	for _, tl := range t.TCP {
		s.metrics.forTCP(tl, st.series)
	}
	return st
}

// observe records the metrics of a finished exchange.
func (st *state) observe(x *Exchange) {
	if m := st.lbMetrics[x.VHost]; m != nil {
		m.bytesIn.Add(float64(x.BytesIn))
		m.bytesOut.Add(float64(x.BytesOut))
	}
	if x.Route == nil {
		return
	}
	if m := st.routeMetrics[x.Route]; m != nil {
		m.observe(x.Status, time.Since(x.Start))
	}
}

// Apply installs a new table: pools are updated in the registry (runtime
// state kept), new listeners are started before the table is swapped, and
// listeners the table no longer has are closed after it. Connections on
// kept listeners are untouched. The returned error lists what could not be
// applied (a listener that cannot bind, a pool the registry refused); the
// rest is in force.
func (s *Server) Apply(ctx context.Context, t *config.Table) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("applying configuration: server is shut down")
	}
	var errs []error
	pcs := make([]lb.PoolConfig, 0, len(t.Pools))
	for _, p := range t.Pools {
		pcs = append(pcs, p.LB)
	}
	if err := s.reg.Update(ctx, pcs); err != nil {
		errs = append(errs, fmt.Errorf("updating pools: %w", err))
	}
	st := s.buildState(t)
	want := map[string]string{}
	for k := range t.HTTP {
		want[k] = "http"
	}
	for k := range t.TCP {
		want[k] = "tcp"
	}
	failed := map[string]string{}
	for k, kind := range want {
		if l := s.listeners[k]; l != nil {
			// A listener keeps its socket unless its kind changes, or its
			// HTTP/1.1 engine does (TLS, h2c or PROXY protocol came or went).
			if l.kind == kind && (kind != "http" || l.evWanted == s.wantEvloop(k, t.HTTP[k])) {
				if kind == "http" {
					l.setTimeouts(t.HTTP[k].Timeouts)
				}
				continue
			}
			l.close()
			delete(s.listeners, k)
		}
		l, err := s.startListener(k, kind, t)
		if err != nil {
			failed[k] = kind
			continue
		}
		s.listeners[k] = l
	}
	old := s.state.Swap(st)
	for k, l := range s.listeners {
		if _, ok := want[k]; !ok {
			l.close()
			delete(s.listeners, k)
			s.metrics.connections.DeleteLabelValues(k)
		}
	}
	s.metrics.dropStale(old.series, st.series)
	// A listener may have failed to bind because a removed one (say
	// ":8080" replaced by "127.0.0.1:8080") still held the port.
	for k, kind := range failed {
		l, err := s.startListener(k, kind, t)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		s.listeners[k] = l
	}
	live := map[*lb.Endpoint]bool{}
	for _, p := range s.reg.Pools() {
		for _, e := range p.Endpoints() {
			live[e] = true
		}
	}
	s.origins.prune(live)
	return errors.Join(errs...)
}

// Addr returns the bound address of a listener key ("address:port").
func (s *Server) Addr(key string) net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l := s.listeners[key]; l != nil {
		if l.ev != nil {
			return l.ev.addr()
		}
		return l.ln.Addr()
	}
	return nil
}

// Shutdown stops accepting, lets in-flight requests finish and closes idle
// connections; connections still open when ctx ends are closed.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	ls := make([]*listener, 0, len(s.listeners))
	for _, l := range s.listeners {
		ls = append(ls, l)
	}
	s.listeners = map[string]*listener{}
	s.mu.Unlock()
	for _, l := range ls {
		l.close()
	}
	for _, l := range ls {
		l.shutdownH2(ctx) // sends GOAWAY to HTTP/2 connections
	}
	var err error
	for _, l := range ls {
		if e := l.drain(ctx); e != nil {
			err = e
		}
	}
	s.origins.closeAll()
	s.alog.Close()
	if s.ownReg {
		s.reg.Close()
	}
	return err
}

// listener is one bound socket and its connections.
type listener struct {
	s    *Server
	key  string
	kind string       // "http" or "tcp"
	ln   net.Listener // nil when ev serves the socket
	// ev is the event-loop engine serving the socket (nil: the goroutine
	// engine's acceptLoop does); evWanted says the listener asked for it.
	ev       *evEngine
	evWanted bool
	active   atomic.Int64
	h1       atomic.Pointer[fasthttp.Server]
	h1t      config.Timeouts
	tlsCfg   *tls.Config
	// h2 serves new HTTP/2 connections; a change of timeouts installs a
	// new one. h2all (under mu) keeps every one still serving connections,
	// so that closing the listener sends GOAWAY on all of them.
	h2    atomic.Pointer[h2Server]
	h2all []*h2Server
	gauge prometheus.Gauge

	mu       sync.Mutex
	conns    map[net.Conn]*connMeta
	wg       sync.WaitGroup
	closed   atomic.Bool
	draining atomic.Bool

	// work hands an accepted connection to a goroutine that has finished
	// serving an earlier one; stop ends those waiting when the listener
	// closes.
	work chan connJob
	stop chan struct{}
}

// connJob is an accepted connection waiting for a goroutine.
type connJob struct {
	c    net.Conn
	meta *connMeta
}

// workerIdle is how long a connection goroutine waits for the next
// connection before it ends. Reusing goroutines saves growing a fresh
// stack to the depth serving a request needs (runtime.newstack was about
// 4% of the CPU with a new connection per request).
const workerIdle = 10 * time.Second

// wantEvloop says whether the HTTP listener hl (key) is served by the
// event-loop engine: when Options.HTTP1Engine asks for it and the listener
// has no h2c or PROXY protocol (with TLS or without: the loops ask at each
// accept whether the listener has TLS now).
func (s *Server) wantEvloop(key string, hl *config.HTTPListener) bool {
	if s.opts.HTTP1Engine != EngineEvloop || !evloopSupported || hl == nil || hl.H2C || hl.ProxyProtocol {
		return false
	}
	_, ok := evloopAddr(key)
	return ok
}

func (s *Server) startListener(key, kind string, t *config.Table) (*listener, error) {
	if kind == "http" && s.wantEvloop(key, t.HTTP[key]) {
		l := &listener{s: s, key: key, kind: kind, evWanted: true, conns: map[net.Conn]*connMeta{}, work: make(chan connJob), stop: make(chan struct{}), gauge: s.metrics.connections.WithLabelValues(key)}
		l.h1t = t.HTTP[key].Timeouts
		l.h1.Store(s.newH1Server(l, l.h1t))
		// TLS listeners: the loops' handshakes and the HTTP/2 connections
		// they hand off.
		l.tlsCfg = s.listenerTLS(key)
		err := l.newH2(l.h1t)
		if err == nil {
			err = s.startEvloop(l, t.HTTP[key])
		}
		if err == nil {
			s.log.Info("listener started", "address", l.ev.addr().String(), "kind", kind, "engine", EngineEvloop)
			return l, nil
		}
		s.log.Warn("event-loop engine not started, the goroutine engine serves the listener", "address", key, "error", err)
		nl, err := s.startListenerGo(key, kind, t)
		if nl != nil {
			nl.evWanted = true
		}
		return nl, err
	}
	return s.startListenerGo(key, kind, t)
}

// startListenerGo starts a listener served by the goroutine engine.
func (s *Server) startListenerGo(key, kind string, t *config.Table) (*listener, error) {
	var lc net.ListenConfig
	if kind == "http" {
		// HTTP connections end on the idle timeout; TCP keep-alive probes
		// would only add four setsockopt calls to every accepted
		// connection. TCP listeners keep them: their streams may idle long.
		lc.KeepAlive = -1
	}
	ln, err := lc.Listen(context.Background(), "tcp", key)
	if err != nil {
		return nil, fmt.Errorf("starting listener %s: %w", key, err)
	}
	l := &listener{s: s, key: key, kind: kind, ln: ln, conns: map[net.Conn]*connMeta{}, work: make(chan connJob), stop: make(chan struct{}), gauge: s.metrics.connections.WithLabelValues(key)}
	if kind == "http" {
		l.h1t = t.HTTP[key].Timeouts
		l.h1.Store(s.newH1Server(l, l.h1t))
		if err := l.newH2(l.h1t); err != nil {
			ln.Close()
			return nil, fmt.Errorf("starting listener %s: configuring HTTP/2: %w", key, err)
		}
		l.tlsCfg = s.listenerTLS(key)
	}
	s.log.Info("listener started", "address", ln.Addr().String(), "kind", kind)
	go l.acceptLoop()
	return l, nil
}

// listenerTLS is the TLS configuration of the listener key's connections:
// that of the table in force when the client's hello comes.
func (s *Server) listenerTLS(key string) *tls.Config {
	return &tls.Config{GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
		if c := s.state.Load().tlsConfigs[key]; c != nil {
			return c, nil
		}
		return nil, fmt.Errorf("listener %s has no TLS configuration", key)
	}}
}

func (l *listener) setTimeouts(t config.Timeouts) {
	if t == l.h1t {
		return
	}
	old := l.h1t
	l.h1t = t
	if l.ev != nil {
		l.ev.setTimeouts(t)
	}
	// Connections being served by the old engines keep them until they
	// end; new ones get the new timeouts.
	l.h1.Swap(l.s.newH1Server(l, t))
	if t.Idle != old.Idle {
		if err := l.newH2(t); err != nil {
			l.s.log.Error("HTTP/2 keeps its former idle timeout", "listener", l.key, "error", err)
		}
	}
}

// h2Server is the HTTP/2 server of a listener and the net/http server it
// is configured on (whose Shutdown sends GOAWAY to its connections).
type h2Server struct {
	base *http.Server
	srv  *http2.Server
}

// newH2 installs an HTTP/2 server with the timeouts t for the listener's
// new connections.
func (l *listener) newH2(t config.Timeouts) error {
	h := &h2Server{
		base: &http.Server{Handler: http.HandlerFunc(l.s.handleH2), IdleTimeout: t.Idle, ReadHeaderTimeout: t.RequestHeader,
			ErrorLog: h2ErrorLog(l.s.log)},
		srv: newHTTP2Server(t.Idle),
	}
	if err := http2.ConfigureServer(h.base, h.srv); err != nil {
		return err
	}
	l.mu.Lock()
	l.h2all = append(l.h2all, h)
	l.mu.Unlock()
	l.h2.Store(h)
	return nil
}

// shutdownH2 sends GOAWAY to the listener's HTTP/2 connections and waits
// for their streams, or for ctx.
func (l *listener) shutdownH2(ctx context.Context) {
	l.mu.Lock()
	all := append([]*h2Server(nil), l.h2all...)
	l.mu.Unlock()
	for _, h := range all {
		_ = h.base.Shutdown(ctx)
	}
}

func (l *listener) acceptLoop() {
	var delay time.Duration
	for {
		c, err := l.ln.Accept()
		if err != nil {
			if l.closed.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors or similar: back off and go on.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			time.Sleep(delay)
			continue
		}
		delay = 0
		peer, local := addrPortOf(c.RemoteAddr()), addrPortOf(c.LocalAddr())
		if !l.admit(c, peer, local) {
			continue // refused by a NetworkPolicy, before PROXY header or TLS
		}
		if max := l.maxConns(); max > 0 && l.active.Load() >= int64(max) {
			l.s.metrics.connRejected.Inc()
			c.Close()
			continue
		}
		l.active.Add(1)
		l.wg.Add(1)
		meta := &connMeta{peer: peer, local: local, lkey: l.key, l: l, raw: c}
		l.track(c, meta)
		l.gauge.Inc()
		select {
		case l.work <- connJob{c, meta}:
		default:
			go l.worker(connJob{c, meta})
		}
	}
}

// worker serves connections one after another until none comes for
// workerIdle or the listener closes.
func (l *listener) worker(j connJob) {
	var idle *time.Timer
	for {
		l.serve(j.c, j.meta)
		if idle == nil {
			idle = time.NewTimer(workerIdle)
		} else {
			idle.Reset(workerIdle)
		}
		select {
		case j = <-l.work:
		case <-idle.C:
			return
		case <-l.stop:
			idle.Stop()
			return
		}
	}
}

func (l *listener) maxConns() int {
	t := l.s.state.Load().table
	if hl := t.HTTP[l.key]; hl != nil {
		return hl.MaxConnections
	}
	if tl := t.TCP[l.key]; tl != nil {
		return tl.MaxConnections
	}
	return 0
}

func (l *listener) track(c net.Conn, m *connMeta) {
	l.mu.Lock()
	if m != nil {
		l.conns[c] = m
	} else {
		delete(l.conns, c)
	}
	l.mu.Unlock()
}

// close stops accepting and starts draining: idle HTTP/1.1 connections are
// closed now, busy ones after their current response.
func (l *listener) close() {
	if l.closed.CompareAndSwap(false, true) {
		if l.ev != nil {
			l.ev.shutdown(l) // answers in flight finish, idle connections close
		} else {
			l.ln.Close()
		}
		close(l.stop)
		l.draining.Store(true)
		l.mu.Lock()
		for c, m := range l.conns {
			if m.idle.Load() {
				c.Close()
			}
		}
		l.mu.Unlock()
		// GOAWAY to HTTP/2 connections; streams in flight finish.
		go l.shutdownH2(context.Background())
		l.s.log.Info("listener stopped", "address", l.key)
	}
}

// drain waits for the listener's connections to end, closing them when ctx
// ends first.
func (l *listener) drain(ctx context.Context) error {
	done := make(chan struct{})
	go func() { l.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		if l.ev != nil {
			l.ev.forceClose()
		}
		l.mu.Lock()
		for c := range l.conns {
			c.Close()
		}
		l.mu.Unlock()
		<-done
		return fmt.Errorf("draining %s: %w", l.key, ctx.Err())
	}
}

// bufConn reads through a bufio.Reader that may hold bytes already read
// from the connection (after a PROXY header or a protocol peek).
type bufConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufConn) Read(b []byte) (int, error) { return c.r.Read(b) }

func addrPortOf(a net.Addr) netip.AddrPort {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.AddrPort()
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}

var h2Preface = []byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")

func (l *listener) serve(c net.Conn, meta *connMeta) {
	defer func() {
		c.Close()
		l.track(c, nil)
		l.active.Add(-1)
		l.gauge.Dec()
		l.wg.Done()
	}()
	s := l.s
	t := s.state.Load().table
	var conn net.Conn = c
	proxyProto := false
	if l.kind == "tcp" {
		if tl := t.TCP[l.key]; tl != nil {
			proxyProto = tl.ProxyProtocol
		}
	} else if hl := t.HTTP[l.key]; hl != nil {
		proxyProto = hl.ProxyProtocol
	} else {
		return
	}
	var br *bufio.Reader
	if proxyProto {
		_ = c.SetReadDeadline(time.Now().Add(s.opts.ProxyHeaderTimeout))
		br = bufio.NewReaderSize(c, 512)
		h, err := proxyproto.Read(br)
		if err != nil {
			s.metrics.rejected.Inc()
			return
		}
		_ = c.SetReadDeadline(time.Time{})
		if !h.Local {
			meta.peer, meta.local = h.Source, h.Dest
		}
		conn = &bufConn{Conn: c, r: br}
	}
	if l.kind == "tcp" {
		s.serveTCP(l, conn, meta, br)
		return
	}
	hl := t.HTTP[l.key]
	if hl.TLS != nil {
		tc := tls.Server(conn, l.tlsCfg)
		_ = c.SetDeadline(time.Now().Add(s.opts.ProxyHeaderTimeout))
		if err := tc.Handshake(); err != nil {
			s.metrics.tlsErrors.Inc()
			return
		}
		_ = c.SetDeadline(time.Time{})
		meta.tls = true
		cs := tc.ConnectionState()
		meta.tlsState = &cs
		if cs.NegotiatedProtocol == "h2" {
			s.serveH2(l, tc, meta)
			return
		}
		conn = tc
	} else if hl.H2C {
		if br == nil {
			br = bufio.NewReaderSize(c, 4096)
			conn = &bufConn{Conn: c, r: br}
		}
		_ = c.SetReadDeadline(time.Now().Add(hl.Timeouts.RequestHeader))
		isH2 := peekPreface(br)
		notHTTP := !isH2 && !h2cHTTP1(br)
		_ = c.SetReadDeadline(time.Time{})
		if isH2 {
			s.serveH2(l, conn, meta)
			return
		}
		if notHTTP {
			s.metrics.rejected.Inc()
			return
		}
	}
	_ = l.h1.Load().ServeConn(&metaConn{Conn: conn, meta: meta})
	if meta.hijacked != nil {
		<-meta.hijacked
	}
}

// peekPreface reports whether the buffered connection starts with the
// HTTP/2 client preface, reading no further than needed to tell.
func peekPreface(br *bufio.Reader) bool {
	for n := 1; n <= len(h2Preface); {
		p, err := br.Peek(n)
		if err != nil || string(p) != string(h2Preface[:len(p)]) {
			return false
		}
		if len(p) == len(h2Preface) {
			return true
		}
		n = min(max(br.Buffered(), len(p)+1), len(h2Preface))
	}
	return false
}

// evloopAddr turns a listener key into the address the event loop binds:
// an empty host is every address (IPv6 and IPv4, as net.Listen does). A
// host name is not supported (ok false).
func evloopAddr(key string) (string, bool) {
	host, port, err := net.SplitHostPort(key)
	if err != nil {
		return "", false
	}
	if host == "" {
		host = "::"
	}
	ap, err := netip.ParseAddrPort(net.JoinHostPort(host, port))
	if err != nil {
		return "", false
	}
	return ap.String(), true
}
