//go:build linux

package dataplane

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/netip"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/meridian-platform/meridian/internal/dataplane/config"
	"github.com/meridian-platform/meridian/internal/dataplane/evloop"
)

// evloopSupported says whether this build has the event-loop engine.
const evloopSupported = true

// evEngine is a listener's event-loop proxy.
type evEngine struct {
	p *evloop.Proxy
	// logs are the loops' access logs (detached once the proxy stopped).
	logs *evLogSet
	// done is closed when the proxy has stopped (after close's graceful
	// shutdown, or a forced close).
	done chan struct{}
}

func (e *evEngine) addr() net.Addr { return net.TCPAddrFromAddrPort(e.p.Addr()) }

func (e *evEngine) setTimeouts(t config.Timeouts) {
	e.p.SetTimeouts(t.RequestHeader, t.RequestBody, t.Idle, 0)
}

// shutdown stops accepting, closes idle connections and lets the answers in
// flight finish (they say "Connection: close"); the listener's wait group
// counts the proxy until it has stopped, so that the connections it hands
// off until then are counted before a drain can see zero.
func (e *evEngine) shutdown(l *listener) {
	e.p.StopAccepting() // now: the address is free for a listener that replaces this one
	go func() {
		_ = e.p.Shutdown(context.Background())
		e.logs.detach()
		close(e.done)
		l.wg.Done()
	}()
}

// forceClose closes every connection the loops hold.
func (e *evEngine) forceClose() {
	_ = e.p.Close()
	e.logs.detach()
}

// startEvloop serves an HTTP listener with the event-loop engine: the loops
// forward the requests they can (see evloop.TableRouter, plus the checks of
// evRouter and evEligible) and hand every other connection, with the bytes
// already read, to the goroutine engine on the same socket.
func (s *Server) startEvloop(l *listener, hl *config.HTTPListener) error {
	addr, ok := evloopAddr(l.key)
	if !ok {
		return errNoEvloop
	}
	key := l.key
	rid := newRequestIDStage(nil, nil).(*requestIDStage)
	router := &evRouter{tr: evloop.TableRouter{
		Listener:   func() *config.HTTPListener { return s.state.Load().table.HTTP[key] },
		Pools:      s.reg.Pool,
		Eligible:   func(vh *config.VHost) bool { return s.evEligible(key, vh) },
		AccessLogs: true,
		Rewrites:   true,
		Answers:    true,
		Stages:     true,
	}, routes: evRouteCache{s: s}, rid: rid}
	logs := &evLogSet{}
	// The loops may accept before Start returns: Admit reads the proxy
	// from here, not from l.ev.
	var started atomic.Pointer[evloop.Proxy]
	loops, kernelWait := evLoops(runtime.GOMAXPROCS(0), runtime.NumCPU())
	cfg := evloop.Config{
		Listen:         addr,
		Loops:          loops,
		KernelWait:     kernelWait,
		DeferAccept:    true,
		Router:         router,
		Handoff:        l.serveHandoff,
		Limits:         s.limits,
		HeaderTimeout:  hl.Timeouts.RequestHeader,
		BodyTimeout:    hl.Timeouts.RequestBody,
		IdleTimeout:    hl.Timeouts.Idle,
		OriginTimeout:  s.opts.DefaultRouteTimeout,
		ConnectTimeout: evConnectTimeout,
		RequestID:      rid.appendID,
		Observe:        s.evObserve,
		AccessLog:      func() evloop.ExchangeLog { return logs.newLog(s.alog) },
		Conns:          func(d int) { l.gauge.Add(float64(d)) },
		// TLS listeners: the loops run the handshakes with the goroutine
		// engine's configuration (SNI, ALPN, client certificates, session
		// tickets) and hand off HTTP/2 connections as *tls.Conn.
		TLS: func() *tls.Config {
			if hl := s.state.Load().table.HTTP[key]; hl != nil && hl.TLS != nil {
				return l.tlsCfg
			}
			return nil
		},
		HandshakeTimeout: s.opts.ProxyHeaderTimeout,
		TLSError:         s.metrics.tlsErrors.Inc,
		Admit: func(peer, local netip.AddrPort) (bool, bool) {
			ok, reset := l.verdict(peer, local)
			if !ok {
				return false, reset
			}
			var held int64
			if p := started.Load(); p != nil {
				held = p.Active()
			}
			if max := l.maxConns(); max > 0 && l.active.Load()+held >= int64(max) {
				s.metrics.connRejected.Inc()
				return false, false
			}
			return true, false
		},
	}
	// A listener per loop (SO_REUSEPORT: the kernel spreads the
	// connections by address hash) rather than one all loops accept from
	// (EPOLLEXCLUSIVE: the loop awake takes the connection), which gave
	// wrk's 64 connections to the two loops unevenly: 0.5-5% fewer
	// requests/s for small and 16k answers in interleaved runs against
	// nginx on 2 CPUs, the same for new connections and HTTPS.
	cfg.ListenerPerLoop = true
	p, err := evloop.Start(cfg)
	if err != nil {
		logs.detach()
		return err
	}
	started.Store(p)
	l.ev = &evEngine{p: p, logs: logs, done: make(chan struct{})}
	l.wg.Add(1) // released by shutdown
	return nil
}

// evLoops is how many event loops serve a listener, and whether they wait
// for events in the kernel (evloop.Config.KernelWait): one loop per P,
// parked in the network poller while idle (the default); with more Ps
// than CPUs (GOMAXPROCS set above the CPU count), one loop per CPU that
// waits in epoll_wait, the spare P keeping the runtime from taking the
// loops' Ps. On the loaded shared machine neither measured better than
// the other (the figures are in evloop's park.go); the bench's
// meridian-kw target runs the second.
func evLoops(procs, cpus int) (int, bool) {
	if cpus >= 1 && procs > cpus {
		return cpus, true
	}
	return procs, false
}

// evConnectTimeout is the loops' connect timeout: the pools' default
// (OriginPool spec.connectTimeout); pools with another are handed off.
const evConnectTimeout = 5 * time.Second

// evRouter adds to evloop.TableRouter what the goroutine engine does
// differently: HTTP/1.0 requests and Expect (100-continue) go to it. The
// Target's Tag is the route's *evRoute.
type evRouter struct {
	tr     evloop.TableRouter
	routes evRouteCache
	// rid makes the request ids of the exchanges the loops run stages on
	// (the loop sends them: Target.RequestID); loops keeps each loop's
	// exchange for them (evstage_linux.go).
	rid   *requestIDStage
	loops evLoopExchanges
}

func (r *evRouter) Route(q *evloop.Request) (evloop.Target, bool) {
	if q.HTTP10 || len(q.Host) == 0 {
		// An empty Host (valid: RFC 9112 3.2) goes on with the
		// endpoint's address, which the goroutine engine sets.
		return evloop.Target{}, false
	}
	if _, ok := q.Header("Expect"); ok {
		return evloop.Target{}, false
	}
	t, ok := r.tr.Route(q)
	if !ok {
		return t, false
	}
	rt, _ := t.Tag.(*config.Route)
	er := r.routes.lookup(rt)
	if er == nil {
		return evloop.Target{}, false // the table changed meanwhile
	}
	if rt.Redirect != nil || rt.Direct != nil {
		// The loop answers (TableRouter.Answers).
		t.Answer = er
	}
	if rw := er.rewrite; rw != nil {
		if er.noRewrite || !plainPath(q.Path) {
			return evloop.Target{}, false
		}
		t.Rewrite = rw
	}
	t.Tag, t.Timeout, t.ConnectTimeout, t.BodyTimeout = er, er.timeout, er.connectTimeout, er.bodyTimeout
	if er.stages != nil {
		return r.runStages(q, t, er)
	}
	return t, true
}

// evEligible accepts a load balancer for the event loop when it runs no
// stage but the request id, request header changes and the access log
// (which the loop does itself). (Route timeouts, pool connect timeouts
// and the load balancer's body timeout go with each request:
// evloop.Target; the loop's route timeout bounds each wait for the
// origin, not the whole exchange. The loop keeps its own idle origin
// connections: up to 64 per origin and loop, closed after the listener's
// idle timeout.)
func (s *Server) evEligible(_ string, vh *config.VHost) bool {
	pl := s.state.Load().pipelines[vh]
	return pl != nil && pl.evServable
}

// evObserve counts an exchange the loop served in its route's and load
// balancer's metrics (of the table the request was routed with).
func (s *Server) evObserve(tag any, status int, elapsed time.Duration, bytesIn, bytesOut int64) {
	er, _ := tag.(*evRoute)
	if er == nil {
		return
	}
	if m := er.rm; m != nil {
		m.observe(status, elapsed)
	}
	if m := er.lbm; m != nil {
		m.bytesIn.Add(float64(bytesIn))
		m.bytesOut.Add(float64(bytesOut))
	}
}

// serveHandoff takes a connection the event loop gives up, with the bytes
// it read, and serves it with the goroutine engine (as serve does after
// the PROXY header and TLS steps: on a TLS listener c is the *tls.Conn the
// loop made the handshake on, served with HTTP/2 when ALPN chose it). It
// runs on the loop: the connection is counted here, served on a goroutine.
func (l *listener) serveHandoff(c net.Conn, buffered []byte) {
	peer, local := addrPortOf(c.RemoteAddr()), addrPortOf(c.LocalAddr())
	l.active.Add(1)
	l.wg.Add(1)
	meta := &connMeta{peer: peer, local: local, lkey: l.key, l: l, raw: c}
	l.track(c, meta)
	l.gauge.Inc()
	var conn net.Conn = c
	if len(buffered) > 0 {
		conn = &bufConn{Conn: c, r: bufio.NewReader(io.MultiReader(bytes.NewReader(buffered), c))}
	}
	tc, _ := c.(*tls.Conn) // after the loop's handshake
	go func() {
		defer func() {
			c.Close()
			l.track(c, nil)
			l.active.Add(-1)
			l.gauge.Dec()
			l.wg.Done()
		}()
		if tc != nil {
			meta.tls = true
			cs := tc.ConnectionState()
			meta.tlsState = &cs
			if cs.NegotiatedProtocol == "h2" {
				l.s.serveH2(l, tc, meta)
				return
			}
		}
		_ = l.h1.Load().ServeConn(&metaConn{Conn: conn, meta: meta})
		if meta.hijacked != nil {
			<-meta.hijacked
		}
	}()
}
