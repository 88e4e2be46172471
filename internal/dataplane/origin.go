package dataplane

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/meridian-platform/meridian/internal/dataplane/config"
	"github.com/meridian-platform/meridian/internal/dataplane/proxyproto"
	"github.com/meridian-platform/meridian/internal/lb"
)

// dialError marks a failure to establish a connection to an origin (TCP
// connect or TLS handshake), which outlier detection and retries treat as a
// connect failure.
type dialError struct{ err error }

func (e *dialError) Error() string { return "connecting to origin: " + e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

// isDialError reports whether err is or wraps a *dialError, without the
// allocation errors.As costs on the request path.
func isDialError(err error) bool {
	for err != nil {
		if _, ok := err.(*dialError); ok {
			return true
		}
		err = errors.Unwrap(err)
	}
	return false
}

// originClient is the HTTP/1.1 keep-alive client of one endpoint.
type originClient struct {
	key  string // config.Pool.TransportKey it was built for
	pool *config.Pool
	ep   *lb.Endpoint
	gate pendingGate
	hc   *fasthttp.HostClient
}

// origins holds one client per endpoint, keyed by the endpoint's stable
// identity (its *lb.Endpoint lives as long as the pool keeps the address),
// so keep-alive connections survive configuration pushes.
type origins struct {
	m sync.Map // *lb.Endpoint -> *originClient
}

func (o *origins) get(gate pendingGate, p *config.Pool, ep *lb.Endpoint) *originClient {
	if v, ok := o.m.Load(ep); ok {
		oc := v.(*originClient)
		if oc.key == p.TransportKey {
			return oc
		}
		o.m.Delete(ep)
		oc.hc.CloseIdleConnections()
	}
	oc := newOriginClient(gate, p, ep)
	if v, loaded := o.m.LoadOrStore(ep, oc); loaded {
		return v.(*originClient)
	}
	return oc
}

// prune drops clients of endpoints that are no longer in live.
func (o *origins) prune(live map[*lb.Endpoint]bool) {
	o.m.Range(func(k, v any) bool {
		if !live[k.(*lb.Endpoint)] {
			o.m.Delete(k)
			v.(*originClient).hc.CloseIdleConnections()
		}
		return true
	})
}

func (o *origins) closeAll() {
	o.m.Range(func(k, v any) bool {
		o.m.Delete(k)
		v.(*originClient).hc.CloseIdleConnections()
		return true
	})
}

// pendingGate is the part of *lb.Pool that bounds requests waiting for a
// connection (circuit breaker maxPendingRequests).
type pendingGate interface {
	AcquirePending() error
	ReleasePending()
}

// dialOrigin opens a counted connection to an endpoint, with TLS when the
// pool asks for it. While the dial is in progress the request counts as
// pending in gate (when not nil).
func dialOrigin(ctx context.Context, gate pendingGate, p *config.Pool, ep *lb.Endpoint, alpn []string) (net.Conn, error) {
	if gate != nil {
		if err := gate.AcquirePending(); err != nil {
			return nil, err
		}
		defer gate.ReleasePending()
	}
	if err := ep.ConnOpened(); err != nil {
		return nil, err
	}
	d := net.Dialer{Timeout: p.ConnectTimeout}
	c, err := d.DialContext(ctx, "tcp", ep.Addr())
	if err != nil {
		ep.ConnClosed()
		return nil, &dialError{err}
	}
	if p.TLS != nil {
		cfg := p.TLS.Clone()
		if cfg.ServerName == "" {
			cfg.ServerName = ep.Hostname()
		}
		if alpn != nil {
			cfg.NextProtos = alpn
		}
		tc := tls.Client(c, cfg)
		hctx, cancel := context.WithTimeout(ctx, p.ConnectTimeout)
		err := tc.HandshakeContext(hctx)
		cancel()
		if err != nil {
			c.Close()
			ep.ConnClosed()
			return nil, &dialError{err}
		}
		c = tc
	}
	return &countedConn{Conn: c, ep: ep}, nil
}

// countedConn tells the endpoint when it closes (circuit-breaker
// connection count).
type countedConn struct {
	net.Conn
	ep     *lb.Endpoint
	closed atomic.Bool
}

// CloseWrite half-closes the connection when the transport can.
func (c *countedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

func (c *countedConn) Close() error {
	if c.closed.CompareAndSwap(false, true) {
		c.ep.ConnClosed()
	}
	return c.Conn.Close()
}

func newOriginClient(gate pendingGate, p *config.Pool, ep *lb.Endpoint) *originClient {
	oc := &originClient{key: p.TransportKey, pool: p, ep: ep, gate: gate}
	oc.hc = &fasthttp.HostClient{
		Addr:                     ep.Addr(),
		NoDefaultUserAgentHeader: true,
		// The request target goes out as prepareH1 left it (the
		// client's, or a rewrite's): without this the client would
		// normalize it again on every request.
		DisablePathNormalizing:        true,
		DisableHeaderNamesNormalizing: false,
		Dial: func(string) (net.Conn, error) {
			return dialOrigin(context.Background(), gate, p, ep, []string{"http/1.1"})
		},
		MaxConns:                  4096,
		MaxIdleConnDuration:       p.IdleConnTimeout,
		MaxIdemponentCallAttempts: 2,
		// Retry only when a reused keep-alive connection turned out to be
		// closed by the origin; every other failure is the proxy's to
		// handle (another endpoint, outlier detection).
		// A streamed body cannot be sent twice.
		RetryIfErr: func(req *fasthttp.Request, attempts int, err error) (bool, bool) {
			if isDialError(err) || errors.Is(err, lb.ErrCircuitOpen) || req.IsBodyStream() {
				return false, false
			}
			return false, attempts < 2 && (errors.Is(err, io.EOF) || errors.Is(err, fasthttp.ErrConnectionClosed))
		},
		// Room for an answer's headers and a body of up to 32 KiB in one
		// read; buffers go back to a pool between requests.
		ReadBufferSize:  32<<10 + 1024,
		WriteBufferSize: 16 << 10,
	}
	return oc
}

// do sends one request to the endpoint and reads the response.
func (oc *originClient) do(req *fasthttp.Request, resp *fasthttp.Response, deadline time.Time, peer, local netip.AddrPort) error {
	if oc.pool.ProxyProtocol != 0 {
		return oc.doProxyProtocol(req, resp, deadline, peer, local)
	}
	return oc.hc.DoDeadline(req, resp, deadline)
}

// doProxyProtocol sends the request on a new connection that starts with
// a PROXY header naming the client; such connections cannot be shared
// between clients, so they are not kept alive.
func (oc *originClient) doProxyProtocol(req *fasthttp.Request, resp *fasthttp.Response, deadline time.Time, peer, local netip.AddrPort) error {
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	c, err := dialOrigin(ctx, oc.gate, oc.pool, oc.ep, []string{"http/1.1"})
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(deadline)
	var hdr [64]byte
	if _, err := c.Write(proxyproto.Append(hdr[:0], oc.pool.ProxyProtocol, peer, local)); err != nil {
		return err
	}
	bw := bufio.NewWriter(c)
	req.SetConnectionClose()
	if err := req.Write(bw); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	resp.SkipBody = req.Header.IsHead()
	return resp.Read(bufio.NewReader(c))
}
