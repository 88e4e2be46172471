package dataplane

import (
	"bufio"
	"context"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/meridian-platform/meridian/internal/dataplane/proxyproto"
	"github.com/meridian-platform/meridian/internal/dataplane/tlspeek"
	"github.com/meridian-platform/meridian/internal/lb"
)

// serveTCP proxies one TCP connection: routed by SNI when the load balancer
// has routes (the TLS bytes pass through untouched), to the default pool
// otherwise.
func (s *Server) serveTCP(l *listener, c net.Conn, meta *connMeta, br *bufio.Reader) {
	tl := s.state.Load().table.TCP[l.key]
	if tl == nil {
		return
	}
	sni := ""
	if tl.NeedsSNI() {
		if br == nil {
			br = bufio.NewReaderSize(c, 16<<10)
			c = &bufConn{Conn: c, r: br}
		} else if br.Size() < 16<<10 {
			nbr := bufio.NewReaderSize(br, 16<<10)
			c = &bufConn{Conn: c, r: nbr}
			br = nbr
		}
		_ = c.SetReadDeadline(time.Now().Add(s.opts.ProxyHeaderTimeout))
		name, err := tlspeek.ServerName(br)
		_ = c.SetReadDeadline(time.Time{})
		if err != nil && !errors.Is(err, tlspeek.ErrNotTLS) {
			return
		}
		sni = name
	}
	cp := tl.Route(sni)
	if cp == nil {
		return
	}
	pool := s.reg.Pool(cp.ID)
	if pool == nil {
		return
	}
	if err := pool.Acquire(); err != nil {
		return
	}
	defer pool.Release()
	a := meta.peer.Addr().As16()
	hash := lb.HashBytes(a[:])
	var exclude *lb.Endpoint
	var oc net.Conn
	var ep *lb.Endpoint
	for try := 0; try < 2 && oc == nil; try++ {
		var err error
		ep, err = pool.Pick(hash, exclude)
		if err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), cp.ConnectTimeout)
		oc, err = dialOrigin(ctx, pool, cp, ep, nil)
		cancel()
		if err != nil {
			ep.Begin()
			ep.End(lb.Result{ConnectFailed: true})
			exclude = ep
			oc = nil
		}
	}
	if oc == nil {
		return
	}
	defer oc.Close()
	s.metrics.tcpSessions.WithLabelValues(tl.ID, cp.ID).Inc()
	if cp.ProxyProtocol != 0 {
		var hdr [64]byte
		if _, err := oc.Write(proxyproto.Append(hdr[:0], cp.ProxyProtocol, meta.peer, meta.local)); err != nil {
			return
		}
	}
	ep.Begin()
	t0 := time.Now()
	pipe(c, oc, tl.IdleTimeout)
	// A TCP session has no status; only its duration is recorded.
	ep.End(lb.Result{Duration: time.Since(t0)})
}

// pipe copies both ways until either side closes or nothing moves for idle.
func pipe(a, b net.Conn, idle time.Duration) {
	var wg sync.WaitGroup
	wg.Add(2)
	cp := func(dst, src net.Conn) {
		defer wg.Done()
		buf := make([]byte, 32<<10)
		for {
			if idle > 0 {
				_ = src.SetReadDeadline(time.Now().Add(idle))
			}
			n, err := src.Read(buf)
			if n > 0 {
				if _, werr := dst.Write(buf[:n]); werr != nil {
					break
				}
			}
			if err != nil {
				break
			}
		}
		// Half-close when possible so the other direction can finish.
		if cw, ok := dst.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		} else if bc, ok := dst.(*bufConn); ok {
			if cw, ok := bc.Conn.(interface{ CloseWrite() error }); ok {
				_ = cw.CloseWrite()
			}
		}
	}
	go cp(b, a)
	go cp(a, b)
	wg.Wait()
}
