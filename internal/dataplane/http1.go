package dataplane

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/meridian-platform/meridian/internal/dataplane/config"
	"github.com/meridian-platform/meridian/internal/dataplane/h1"
	"github.com/meridian-platform/meridian/internal/lb"
)

// h1ReqHeaders adapts fasthttp request headers to Headers.
type h1ReqHeaders struct{ h *fasthttp.RequestHeader }

func (a *h1ReqHeaders) Peek(n string) ([]byte, bool) {
	v := a.h.Peek(n)
	return v, v != nil
}
func (a *h1ReqHeaders) Set(n, v string)             { a.h.Set(n, v) }
func (a *h1ReqHeaders) SetBytes(n string, v []byte) { a.h.SetBytesV(n, v) }
func (a *h1ReqHeaders) Add(n, v string)             { a.h.Add(n, v) }
func (a *h1ReqHeaders) Del(n string)                { a.h.Del(n) }
func (a *h1ReqHeaders) VisitAll(f func(k, v []byte)) {
	for k, v := range a.h.All() {
		f(k, v)
	}
}

// h1RespHeaders adapts fasthttp response headers to Headers.
type h1RespHeaders struct{ h *fasthttp.ResponseHeader }

func (a *h1RespHeaders) Peek(n string) ([]byte, bool) {
	v := a.h.Peek(n)
	return v, v != nil
}
func (a *h1RespHeaders) Set(n, v string)             { a.h.Set(n, v) }
func (a *h1RespHeaders) SetBytes(n string, v []byte) { a.h.SetBytesV(n, v) }
func (a *h1RespHeaders) Add(n, v string)             { a.h.Add(n, v) }
func (a *h1RespHeaders) Del(n string)                { a.h.Del(n) }
func (a *h1RespHeaders) VisitAll(f func(k, v []byte)) {
	for k, v := range a.h.All() {
		f(k, v)
	}
}

// h1Exchange is the pooled per-request state of the HTTP/1.1 path.
type h1Exchange struct {
	x       Exchange
	reqH    h1ReqHeaders
	respH   h1RespHeaders
	ctx     *fasthttp.RequestCtx
	queryFn func(string) ([]byte, bool)
	scratch []byte
	pathBuf []byte // a prefix rewrite's escaped path
	// body wraps a streamed request body to tell a client's read error
	// (slow body: 408) from an origin's; buf holds a body read ahead for
	// the stages or for a replay (bounded by their limits).
	body clientBody
	buf  []byte
	// tail is an origin's answer that reaches the client after the
	// handler returned with response-trailer stages to run at its end
	// (h1toh2.go).
	tail answerTail
	// h10 holds the first h10n bytes of an answer an HTTP/1.0 client
	// gets delimited by the connection's close (http10Answer).
	h10  *[smallBody + 1]byte
	h10n int
}

// clientBody reads a streamed request body from the client. The body
// timeout bounds each read (the wait for the next bytes, as nginx's
// client_body_timeout does), not the whole body, so a large upload at a
// steady pace passes and a stalled one is cut; the first error is kept.
type clientBody struct {
	r       io.Reader
	conn    net.Conn
	timeout time.Duration
	err     error
}

func (b *clientBody) Read(p []byte) (int, error) {
	if b.timeout > 0 && b.conn != nil {
		_ = b.conn.SetReadDeadline(time.Now().Add(b.timeout))
	}
	if b.err != nil {
		// The error sticks: the goroutine engine's HTTP library reports
		// a chunk's missing CRLF with the chunk's data and, read again,
		// goes on with the bytes after it, and its client, given data
		// with the error, reads again and ends the origin's request as
		// if the body were whole (RFC 9112 7.1: it is not).
		return 0, b.err
	}
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF {
		b.err = err
	}
	return n, err
}

// failBody answers a request whose body could not be read from the
// client: 408 when the body timeout ran out, 400 otherwise. The
// connection is closed either way: its framing is lost.
func failBody(ctx *fasthttp.RequestCtx, x *Exchange, err error) {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		x.respond(fasthttp.StatusRequestTimeout, "request body timeout\n")
	} else {
		x.respond(fasthttp.StatusBadRequest, "reading request body failed\n")
	}
	writeReplyH1(ctx, x)
	ctx.SetConnectionClose()
}

// readAhead reads up to n bytes of r into hx.buf (a new buffer when fresh:
// hx.buf is still in use), returning them and whether r ended (io.EOF)
// within them.
func (hx *h1Exchange) readAhead(r io.Reader, n int, fresh bool) ([]byte, bool, error) {
	var b []byte
	if fresh {
		b = make([]byte, n)
	} else {
		if cap(hx.buf) < n {
			hx.buf = make([]byte, n)
		}
		b = hx.buf[:n]
	}
	got, err := io.ReadFull(r, b)
	switch err {
	case nil:
		return b, false, nil
	case io.EOF, io.ErrUnexpectedEOF:
		return b[:got], true, nil
	}
	return b[:got], false, err
}

// maxKeptBuffer is the largest read-ahead buffer an exchange keeps for
// the next request.
const maxKeptBuffer = 256 << 10

var h1Pool = sync.Pool{New: func() any {
	hx := &h1Exchange{scratch: make([]byte, 0, 256)}
	hx.queryFn = hx.query
	return hx
}}

func (hx *h1Exchange) query(name string) ([]byte, bool) {
	args := hx.ctx.QueryArgs()
	v := args.Peek(name)
	if v == nil && !args.Has(name) {
		return nil, false
	}
	return v, true
}

// connMeta is what the accept loop learned about a connection.
type connMeta struct {
	peer  netip.AddrPort
	local netip.AddrPort
	tls   bool
	lkey  string
	l     *listener
	raw   net.Conn
	// idle is true between requests of an HTTP/1.1 connection, so that a
	// drain can close idle connections and let busy ones finish.
	idle atomic.Bool
	// hijacked is set (before the handler returns) when the connection is
	// handed to an upgrade handler; it is closed when that handler ends.
	hijacked chan struct{}
	// guard follows the request heads read from the connection; reqs
	// counts the requests handed to the handler, badLF is the guard's
	// error once it found a bare LF in a head or a broken chunked body
	// (later reads fail with it).
	guard h1.HeadGuard
	reqs  int
	badLF error
	// tlsState is the TLS connection's state, set after the handshake.
	tlsState *tls.ConnectionState
	// reset is set when the connection must end with a reset (SO_LINGER
	// 0: an aborted answer that a close would end cleanly), never with a
	// lingering close.
	reset atomic.Bool
}

// metaConn carries connMeta to the HTTP/1.1 handler.
type metaConn struct {
	net.Conn
	meta *connMeta
}

func (c *metaConn) RemoteAddr() net.Addr { return net.TCPAddrFromAddrPort(c.meta.peer) }

// Read feeds what the client sends through the head guard. A head with a
// bare LF is handed to the engine once (the handler rejects it when the
// engine parses it); a later read fails, so an engine still waiting for
// the CRLFCRLF that will never come answers 400 at once. A chunked body
// that breaks RFC 9112 7.1 reaches the engine only up to where it breaks,
// and the read after fails: the body's read fails (400, the connection
// closes; the origin's request is cut, never completed).
func (c *metaConn) Read(b []byte) (int, error) {
	m := c.meta
	if m.badLF != nil {
		return 0, m.badLF
	}
	n, err := c.Conn.Read(b)
	if n > 0 {
		if gerr := m.guard.Scan(b[:n]); gerr != nil {
			m.badLF = gerr
			if errors.Is(gerr, h1.ErrBadChunked) {
				if n = m.guard.BadAt; n == 0 {
					return 0, gerr
				}
			}
		}
	}
	return n, err
}

var (
	strHTTP11 = []byte("HTTP/1.1")
	strHTTP10 = []byte("HTTP/1.0")
	hopByHop  = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authorization", "TE", "Trailer", "Upgrade", "Expect"}
)

// h1WriteBufferSize is the client-side write buffer of a connection while
// it answers; it is returned to a pool between requests.
const h1WriteBufferSize = 32<<10 + 1024

func (s *Server) newH1Server(l *listener, t config.Timeouts) *fasthttp.Server {
	listenerBody := t.RequestBody
	return &fasthttp.Server{
		Handler:               func(ctx *fasthttp.RequestCtx) { s.handleH1(ctx) },
		ErrorHandler:          s.h1Error,
		NoDefaultServerHeader: true,
		NoDefaultContentType:  true,
		ReadBufferSize:        s.limits.MaxURI + s.limits.MaxHeaderBytes + 1024,
		// Large enough for the headers and a body of up to 32 KiB to
		// leave in one write.
		WriteBufferSize: h1WriteBufferSize,
		ReadTimeout:     t.RequestHeader,
		IdleTimeout:     t.Idle,
		// The body timeout replaces the header timeout once the headers
		// are in; a request without a body reads nothing more, so it
		// keeps the header deadline and saves a deadline update.
		HeaderReceived: func(h *fasthttp.RequestHeader) fasthttp.RequestConfig {
			if h.ContentLength() == 0 {
				return fasthttp.RequestConfig{}
			}
			// The Host is known now: the body timeout of its load
			// balancer applies (the listener's when none serves it).
			if lc := s.state.Load().table.HTTP[l.key]; lc != nil {
				return fasthttp.RequestConfig{ReadTimeout: bodyTimeout(lc, lc.VHost(h.Host()))}
			}
			return fasthttp.RequestConfig{ReadTimeout: listenerBody}
		},
		ConnState: func(c net.Conn, cs fasthttp.ConnState) {
			mc, ok := c.(*metaConn)
			if !ok {
				return
			}
			mc.meta.idle.Store(cs == fasthttp.StateIdle)
			if cs == fasthttp.StateIdle && mc.meta.l.draining.Load() {
				mc.meta.raw.Close()
			}
		},
		// Bodies up to MaxRequestBodySize are read before the handler runs
		// (and can be replayed on retries); larger and chunked bodies
		// stream to the origin as they arrive.
		MaxRequestBodySize:           s.opts.MaxRequestBodySize,
		StreamRequestBody:            true,
		DisablePreParseMultipartForm: true,
		CloseOnShutdown:              true,
		SecureErrorLogMessage:        true,
		Logger:                       quietLogger{},
	}
}

// bodyTimeout is the request body timeout of a request for vh on lc:
// vh's own, else the listener's.
func bodyTimeout(lc *config.HTTPListener, vh *config.VHost) time.Duration {
	if vh != nil && vh.Timeouts.RequestBody > 0 {
		return vh.Timeouts.RequestBody
	}
	return lc.Timeouts.RequestBody
}

type quietLogger struct{}

func (quietLogger) Printf(string, ...any) {}

func (s *Server) h1Error(ctx *fasthttp.RequestCtx, err error) {
	var small *fasthttp.ErrSmallBuffer
	switch {
	case errors.As(err, &small):
		// A head larger than the read buffer: 414 while its request line
		// has not ended (as the event loops answer), else 431.
		if mc, ok := ctx.Conn().(*metaConn); ok && mc.meta.guard.InRequestLine() {
			ctx.Error("URI Too Long\n", fasthttp.StatusRequestURITooLong)
		} else {
			ctx.Error("Request Header Fields Too Large\n", fasthttp.StatusRequestHeaderFieldsTooLarge)
		}
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		ctx.Error("Request Entity Too Large\n", fasthttp.StatusRequestEntityTooLarge)
	case errors.Is(err, h1.ErrBareLF):
		ctx.Error("Bad Request: bare LF\n", fasthttp.StatusBadRequest)
	case errors.Is(err, h1.ErrBadChunked):
		ctx.Error("Bad Request: invalid chunked body\n", fasthttp.StatusBadRequest)
	case errors.Is(err, os.ErrDeadlineExceeded):
		ctx.Error("Request Timeout\n", fasthttp.StatusRequestTimeout)
	default:
		ctx.Error("Bad Request\n", fasthttp.StatusBadRequest)
	}
	ctx.SetConnectionClose()
	s.metrics.rejected.Inc()
}

func (s *Server) rejectH1(ctx *fasthttp.RequestCtx, p *h1.Problem) {
	ctx.Response.Reset()
	ctx.SetStatusCode(p.Status)
	ctx.SetContentType("text/plain; charset=utf-8")
	ctx.SetBodyString(p.Reason + "\n")
	ctx.SetConnectionClose()
	s.metrics.rejected.Inc()
}

// allowedMethods is the Allow field of Meridian's own answers to OPTIONS *
// and CONNECT: the methods it forwards (any other token too, which Allow
// cannot say).
const allowedMethods = "GET, HEAD, POST, PUT, DELETE, OPTIONS, TRACE, PATCH"

var (
	problemBareLF  = &h1.Problem{Status: fasthttp.StatusBadRequest, Reason: "bare LF"}
	problemConnect = &h1.Problem{Status: fasthttp.StatusBadRequest, Reason: "CONNECT needs a host:port target"}
)

func (s *Server) handleH1(ctx *fasthttp.RequestCtx) {
	req := &ctx.Request
	mc, ok := ctx.Conn().(*metaConn)
	if !ok {
		ctx.Error("internal error\n", fasthttp.StatusInternalServerError)
		return
	}
	mc.meta.reqs++
	if mc.meta.guard.Bad == mc.meta.reqs {
		s.rejectH1(ctx, problemBareLF)
		return
	}
	if p := req.Header.Protocol(); !bytes.Equal(p, strHTTP11) && !bytes.Equal(p, strHTTP10) {
		if p := h1.CheckVersion(p); p != nil {
			s.rejectH1(ctx, p)
			return
		}
	}
	if p := h1.CheckRequestLine(req.Header.Method(), req.Header.RequestURI(), s.limits); p != nil {
		s.rejectH1(ctx, p)
		return
	}
	if p := h1.CheckHeaders(req.Header.RawHeaders(), req.Header.IsHTTP11(), s.limits); p != nil {
		s.rejectH1(ctx, p)
		return
	}
	if uri := req.Header.RequestURI(); len(uri) == 1 && uri[0] == '*' {
		// OPTIONS * (h1.CheckRequestLine admits "*" for OPTIONS only) asks
		// about the server, not a resource (RFC 9110 9.3.7): Meridian
		// answers it. (Forwarded, its asterisk-form would not survive:
		// the origin client's URI normalization makes it the path "/*".)
		ctx.Response.Header.Set("Allow", allowedMethods)
		ctx.Response.Header.SetContentLength(0)
		ctx.SetStatusCode(fasthttp.StatusOK)
		return
	}
	if uri := req.Header.RequestURI(); len(uri) > 0 && uri[0] != '/' && uri[0] != '*' {
		if req.Header.IsConnect() {
			if _, port, err := net.SplitHostPort(string(uri)); err != nil || port == "" {
				s.rejectH1(ctx, problemConnect) // not even authority form
				return
			}
			ctx.Error("CONNECT is not supported\n", fasthttp.StatusMethodNotAllowed)
			// RFC 9110 15.5.6: a 405 lists the methods that are served.
			ctx.Response.Header.Set("Allow", allowedMethods)
			ctx.SetConnectionClose()
			return
		}
		// Absolute form: the target's authority replaces Host (RFC 9112
		// 3.2.2), for routing and for the origin alike.
		req.Header.SetHostBytes(req.URI().Host())
	}
	if mc.meta.l.draining.Load() {
		ctx.SetConnectionClose()
	}
	st := s.state.Load()
	lc := st.table.HTTP[mc.meta.lkey]
	if lc == nil {
		ctx.Error("listener is being removed\n", fasthttp.StatusServiceUnavailable)
		ctx.SetConnectionClose()
		return
	}
	vh := lc.VHost(req.Header.Host())
	if vh == nil {
		ctx.Error("no load balancer serves this host\n", fasthttp.StatusNotFound)
		return
	}
	hx := h1Pool.Get().(*h1Exchange)
	hx.ctx = ctx
	x := &hx.x
	x.reset()
	hx.reqH.h = &req.Header
	hx.respH.h = &ctx.Response.Header
	x.ReqHeaders, x.RespHeaders = &hx.reqH, &hx.respH
	x.query = hx.queryFn
	x.Method = req.Header.Method()
	uri := req.URI()
	x.Path = uri.Path()
	x.RawQuery = uri.QueryString()
	x.Host = req.Header.Host()
	x.Scheme = "http"
	if mc.meta.tls {
		x.Scheme = "https"
	}
	x.Proto = "HTTP/1.1"
	if !req.Header.IsHTTP11() {
		x.Proto = "HTTP/1.0"
	}
	hx.body.conn, hx.body.timeout = mc, bodyTimeout(lc, vh)
	x.RawTarget = req.Header.RequestURI()
	x.RawHeaders = req.Header.RawHeaders()
	// -1: chunked; -2: neither Content-Length nor Transfer-Encoding,
	// which on a request means no body (RFC 9112 §6.3).
	x.BodyFollows = lengthAnnouncesBody(req.Header.ContentLength())
	x.TLS = mc.meta.tlsState
	x.Peer = mc.meta.peer
	x.Start = time.Now()
	x.Listener, x.VHost = lc, vh
	x.BytesIn = int64(len(req.Header.RawHeaders()))
	if req.IsBodyStream() {
		x.BytesIn += int64(max(req.Header.ContentLength(), 0))
	} else {
		x.BytesIn += int64(len(req.Body()))
	}
	resolveClient(x, vh)
	x.Route = vh.Match(x.routeRequest())
	pl := st.pipelines[vh]
	switch {
	case x.Route == nil:
		x.respond(fasthttp.StatusNotFound, "no route\n")
		writeReplyH1(ctx, x)
	case pl.RequestHeaders(x) == Respond:
		writeReplyH1(ctx, x)
	case pl.WantsRequestBody() && s.requestBodyH1(ctx, hx, pl) == Respond:
		writeReplyH1(ctx, x)
		if hx.body.err != nil {
			ctx.SetConnectionClose()
		}
	case x.Route.Redirect != nil:
		s.redirectH1(ctx, x)
	case x.Route.Direct != nil:
		d := x.Route.Direct
		ctx.SetStatusCode(d.Status)
		if d.ContentType != "" {
			ctx.SetContentType(d.ContentType)
		}
		ctx.SetBodyString(d.Body)
	case x.Route.Pool == nil:
		x.respond(fasthttp.StatusNotFound, "no route\n")
		writeReplyH1(ctx, x)
	default:
		if isUpgrade(req) {
			s.upgradeH1(ctx, x, st)
			break
		}
		s.proxyH1(ctx, hx, st)
	}
	x.Status = ctx.Response.StatusCode()
	if x.Reply.Status == 0 && pl.ResponseHeaders(x) == Respond {
		writeReplyH1(ctx, x)
		x.Status = x.Reply.Status
	}
	if pl.WantsResponseBody() && x.Reply.Status == 0 {
		if t := hx.tail; t != nil && ctx.Response.BodyStream() == t && !readTailWhole(ctx, x, t) {
			// Its response-trailer stages answered at its end.
			x.Status = ctx.Response.StatusCode()
		} else if pl.ResponseBody(x, ctx.Response.Body(), true) == Respond {
			writeReplyH1(ctx, x)
			x.Status = x.Reply.Status
		}
	}
	if hx.h10 != nil {
		if ctx.Response.IsBodyStream() {
			// An HTTP/1.0 client's answer delimited by the close.
			s.untilCloseH1(ctx, hx, st, pl) // h1toh2.go
			return
		}
		http10Bufs.Put(hx.h10) // a stage answered instead
		hx.h10 = nil
	}
	if t := hx.tail; t != nil && ctx.Response.BodyStream() == t {
		// The answer streams on after the handler with response-trailer
		// stages still to run on its end: its Close completes the
		// exchange then, after them, and releases hx (tailStages.end).
		t.handOver(st, pl)
		return
	}
	if ctx.Response.IsBodyStream() {
		x.BytesOut = int64(max(ctx.Response.Header.ContentLength(), 0))
	} else {
		x.BytesOut = int64(len(ctx.Response.Body()))
	}
	hx.complete(st, pl)
}

// complete ends the exchange once its answer is sent or on its way:
// metrics and completion hooks (access log), then the exchange goes back
// to the pool.
func (hx *h1Exchange) complete(st *state, pl *Pipeline) {
	st.observe(&hx.x)
	pl.Done(&hx.x)
	hx.release()
}

// release returns the exchange to the pool.
func (hx *h1Exchange) release() {
	hx.ctx = nil
	hx.x.reset()
	hx.body = clientBody{}
	hx.tail = nil
	if hx.h10 != nil {
		http10Bufs.Put(hx.h10)
		hx.h10 = nil
	}
	if cap(hx.buf) > maxKeptBuffer {
		hx.buf = nil
	}
	h1Pool.Put(hx)
}

func writeReplyH1(ctx *fasthttp.RequestCtx, x *Exchange) {
	r := &x.Reply
	_ = ctx.Response.CloseBodyStream() // give a streamed origin answer's connection back
	ctx.Response.Reset()
	ctx.SetStatusCode(r.Status)
	for _, h := range r.Headers {
		ctx.Response.Header.Add(h.Name, h.Value)
	}
	if r.ContentType != "" {
		ctx.SetContentType(r.ContentType)
	} else if len(r.Body) > 0 {
		ctx.SetContentType("text/plain; charset=utf-8")
	}
	ctx.SetBody(r.Body)
}

// resolveClient finds the real client address: the peer, or, when the peer
// is a trusted proxy, the right-most untrusted address of X-Forwarded-For.
func resolveClient(x *Exchange, vh *config.VHost) {
	peer := x.Peer.Addr().Unmap()
	x.Client = peer
	if len(vh.TrustedProxies) == 0 {
		return
	}
	x.TrustedPeer = trusted(vh.TrustedProxies, peer)
	if !x.TrustedPeer {
		return
	}
	xff, ok := x.ReqHeaders.Peek("X-Forwarded-For")
	if !ok {
		return
	}
	for len(xff) > 0 {
		i := bytes.LastIndexByte(xff, ',')
		part := bytes.TrimSpace(xff[i+1:])
		if i < 0 {
			xff = nil
		} else {
			xff = xff[:i]
		}
		a, err := netip.ParseAddr(string(part))
		if err != nil {
			return
		}
		x.Client = a.Unmap()
		if !trusted(vh.TrustedProxies, x.Client) {
			return
		}
	}
}

func trusted(list []netip.Prefix, a netip.Addr) bool {
	for _, p := range list {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func isUpgrade(req *fasthttp.Request) bool {
	u := req.Header.Peek("Upgrade")
	return len(u) > 0 && req.Header.ConnectionUpgrade() && !upgradesToH2C(u)
}

// dropConnectionNamedReq removes from a client's request the fields its
// Connection names: they are hop-by-hop too (RFC 9110 7.6.1), but for the
// framing fields, which frame the body forwarded (deleting Content-Length
// made the origin request fail: 502), and Host, which the request needs
// (the event loop keeps the same ones).
func dropConnectionNamedReq(h *fasthttp.RequestHeader) {
	delConnectionNamed(h.Peek("Connection"), func(name []byte) {
		if !bytes.EqualFold(name, []byte("Content-Length")) && !bytes.EqualFold(name, []byte("Transfer-Encoding")) &&
			!bytes.EqualFold(name, []byte("Host")) {
			h.DelBytes(name)
		}
	})
}

// prepareH1 turns the client request into the origin request in place.
func (s *Server) prepareH1(hx *h1Exchange) {
	x, req := &hx.x, &hx.ctx.Request
	h := &req.Header
	dropConnectionNamedReq(h)
	for _, n := range hopByHop {
		if n == "Trailer" && len(h.PeekTrailerKeys()) > 0 && len(h.TrailerHeader()) > 2 {
			continue // deleting it would turn trailer fields already read into header fields
		}
		h.Del(n)
	}
	h.ResetConnectionClose()
	h.SetProtocolBytes(strHTTP11)
	// X-Forwarded-For: appended to when the peer is trusted, otherwise
	// replaced, so clients cannot forge a chain.
	b := hx.scratch[:0]
	if v, ok := x.ReqHeaders.Peek("X-Forwarded-For"); ok && x.TrustedPeer && len(v) > 0 {
		b = append(b, v...)
		b = append(b, ',', ' ')
	}
	b = x.Peer.Addr().Unmap().AppendTo(b)
	h.SetBytesV("X-Forwarded-For", b)
	hx.scratch = b
	if _, ok := x.ReqHeaders.Peek("X-Forwarded-Proto"); !ok || !x.TrustedPeer {
		h.Set("X-Forwarded-Proto", x.Scheme)
	}
	rt := x.Route
	if rt.HostRewrite != "" {
		h.SetHost(rt.HostRewrite)
		req.URI().SetHost(rt.HostRewrite)
	}
	// The origin gets the path as the client sent it (nginx's proxy_pass
	// without a URI, Envoy's default), not the library's normalized and
	// re-encoded one, which turned %2F into a separator and merged slashes
	// and dot segments; routing and the stages still see the normalized
	// path. A prefix rewrite builds a new path from the normalized one.
	// (The origin client sends the path as it stands: DisablePathNormalizing.)
	if rt.PrefixRewrite != "" {
		var p []byte
		switch rt.PathKind {
		case config.PathPrefix:
			p = append(append(hx.scratch[len(b):len(b)], rt.PrefixRewrite...), x.Path[len(rt.PathValue):]...)
			if len(p) > 1 && bytes.HasPrefix(p, []byte("//")) {
				p = p[1:]
			}
		default:
			p = append(hx.scratch[len(b):len(b)], rt.PrefixRewrite...)
		}
		// The new path is made of decoded bytes: it goes out escaped.
		hx.pathBuf = h1.AppendEscapedPath(hx.pathBuf[:0], p)
		req.URI().SetPathBytes(hx.pathBuf)
	}
}

func (s *Server) proxyH1(ctx *fasthttp.RequestCtx, hx *h1Exchange, st *state) {
	x := &hx.x
	rt := x.Route
	cp := rt.Pool
	pool := s.reg.Pool(cp.ID)
	if pool == nil {
		x.respond(fasthttp.StatusServiceUnavailable, "pool not ready\n")
		writeReplyH1(ctx, x)
		return
	}
	if err := pool.Acquire(); err != nil {
		x.respond(fasthttp.StatusServiceUnavailable, "circuit breaker open\n")
		writeReplyH1(ctx, x)
		return
	}
	defer pool.Release()
	clientClose := ctx.Request.Header.ConnectionClose()
	retryWanted := rt.Retry != nil && (rt.Retry.NonIdempotent || idempotent(x.Method))
	// A mirror needs its own copy of the body: small bodies are kept for
	// it as for a retry.
	replayable, ok := s.bodyForOriginH1(ctx, hx, retryWanted || rt.Mirror != nil)
	if !ok {
		return
	}
	s.prepareH1(hx)
	if rt.Mirror != nil {
		s.mirrorH1(&ctx.Request, x, rt.Mirror)
	}
	hash := hashFor(x, cp)
	var affinity *lb.Endpoint
	if cp.AffinityCookie != "" {
		if v := ctx.Request.Header.Cookie(cp.AffinityCookie); len(v) > 0 {
			if e := pool.ByID(string(v)); e != nil && e.Available() {
				affinity = e
			}
		}
	}
	attempts := 1
	if retryWanted && replayable {
		attempts += rt.Retry.Attempts
	}
	timeout := rt.Timeout
	if timeout <= 0 {
		timeout = s.opts.DefaultRouteTimeout
	}
	deadline := x.Start.Add(timeout)
	rm := st.routeMetrics[rt]
	if cp.HTTP2 {
		s.forwardH1ToH2(ctx, hx, rm, pool, hash, affinity, attempts, deadline)
		if clientClose {
			ctx.SetConnectionClose()
		}
		return
	}
	var exclude *lb.Endpoint
	var lastErr error
	resp := &ctx.Response
	// With response-trailer stages the answer is read into a response of
	// its own, so that a streamed one's trailers can be seen at its end
	// (adoptAnswerH1, h1toh2.go).
	var oresp *fasthttp.Response
	if pl := st.pipelines[x.VHost]; pl != nil && len(pl.respTrailers) > 0 {
		oresp = fasthttp.AcquireResponse()
		resp = oresp
	}
	for try := 0; try < attempts; try++ {
		if try > 0 {
			if !rm.allowRetry() {
				break
			}
			x.Retries++
			rm.retries.Inc()
			resp.Reset()
		}
		ep := affinity
		affinity = nil
		if ep == nil {
			var err error
			ep, err = pool.Pick(hash, exclude)
			if err != nil {
				lastErr = err
				break
			}
		}
		tryDeadline := deadline
		if rt.Retry != nil && rt.Retry.PerTryTimeout > 0 {
			if d := time.Now().Add(rt.Retry.PerTryTimeout); d.Before(tryDeadline) {
				tryDeadline = d
			}
		}
		oc := s.origins.get(pool, cp, ep)
		if len(ctx.Request.Header.Host()) == 0 {
			// An HTTP/1.0 client's request without Host, or one with an
			// empty Host (RFC 9112 3.2), goes on as HTTP/1.1, which needs
			// one (RFC 9112 3.2): the endpoint's address, as nginx's
			// proxy_pass sends its upstream's. (A retry keeps the first.)
			ctx.Request.Header.SetHost(ep.Addr())
			ctx.Request.URI().SetHost(ep.Addr())
		}
		ep.Begin()
		t0 := time.Now()
		// Event streams, and routes seen to answer with large bodies,
		// stream through (chunked answers are flushed chunk by chunk);
		// other answers are buffered, which costs no allocation.
		resp.StreamBody = oc.pool.ProxyProtocol == 0 && (rm != nil && rm.streamy.Load() || acceptsEventStream(&ctx.Request))
		err := oc.do(&ctx.Request, resp, tryDeadline, x.Peer, s.localAddr(ctx))
		d := time.Since(t0)
		x.UpstreamTime += d
		x.Endpoint = ep.Addr()
		res := lb.Result{Duration: d}
		connectFailed := isDialError(err)
		switch {
		case err == nil:
			res.Status = resp.StatusCode()
		case connectFailed:
			res.ConnectFailed = true
		}
		ep.End(res)
		lastErr = err
		exclude = ep
		if err == nil {
			if rt.Retry != nil && try+1 < attempts && rt.Retry.RetryOnStatus(res.Status) {
				_ = resp.CloseBodyStream()
				continue
			}
			if rm != nil && !resp.IsBodyStream() && len(resp.Body()) > smallBody {
				rm.streamy.Store(true)
			}
			if resp.IsBodyStream() {
				if cl := resp.Header.ContentLength(); cl >= 0 && cl <= smallBody || s.wantsRespBody(x) {
					_ = resp.Body() // buffer it and give the connection back
				}
			}
			lastErr = nil
			if cp.AffinityCookie != "" && string(ctx.Request.Header.Cookie(cp.AffinityCookie)) != ep.ID() {
				setAffinityCookie(resp, cp, ep)
			}
			break
		}
		if rt.Retry == nil || errors.Is(err, fasthttp.ErrTimeout) {
			break
		}
		if connectFailed && !rt.Retry.ConnectFailure || !connectFailed && !rt.Retry.Reset {
			break
		}
	}
	if oresp != nil {
		s.adoptAnswerH1(hx, oresp, lastErr == nil, st.pipelines[x.VHost]) // h1toh2.go
		resp = &ctx.Response
	}
	if lastErr != nil && hx.body.err != nil && !errors.Is(lastErr, errStoppedByStage) {
		// The client's body, not the origin, failed.
		failBody(ctx, x, hx.body.err)
		return
	}
	if lastErr != nil {
		switch {
		case errors.Is(lastErr, errStoppedByStage):
			// A body stage stopped the upload; x.Reply is its answer.
		case errors.Is(lastErr, lb.ErrNoHealthyEndpoint):
			x.respond(fasthttp.StatusServiceUnavailable, "no healthy endpoint\n")
		case errors.Is(lastErr, lb.ErrCircuitOpen):
			x.respond(fasthttp.StatusServiceUnavailable, "circuit breaker open\n")
		case errors.Is(lastErr, fasthttp.ErrTimeout), errors.Is(lastErr, os.ErrDeadlineExceeded):
			x.respond(fasthttp.StatusGatewayTimeout, "origin timeout\n")
		default:
			x.respond(fasthttp.StatusBadGateway, "origin unreachable\n")
		}
		writeReplyH1(ctx, x)
		if clientClose {
			ctx.SetConnectionClose()
		}
		return
	}
	rh := &resp.Header
	dropConnectionNamed(rh) // h1toh2.go
	rh.ResetConnectionClose()
	rh.Del("Keep-Alive")
	rh.Del("Proxy-Connection")
	if s.responseTrailersH1(x, rh) == Respond { // h1toh2.go
		writeReplyH1(ctx, x)
		return
	}
	originTrailersH1(rh, x.Proto == "HTTP/1.0") // h1toh2.go
	if resp.StatusCode() != fasthttp.StatusSwitchingProtocols {
		rh.Del("Upgrade")
	}
	if x.Proto == "HTTP/1.0" {
		// No chunked for HTTP/1.0 (http10Answer, h1toh2.go); the engine
		// frames by the client's version again.
		if resp.IsBodyStream() && rh.ContentLength() < 0 && !s.http10Answer(ctx, hx) {
			return
		}
		ctx.Request.Header.SetProtocolBytes(strHTTP10)
	}
	if clientClose {
		ctx.SetConnectionClose()
	}
}

// smallBody is the largest fixed-length response body buffered rather
// than streamed.
const smallBody = 64 << 10

func acceptsEventStream(req *fasthttp.Request) bool {
	return bytes.Contains(req.Header.Peek("Accept"), []byte("text/event-stream"))
}

func (s *Server) wantsRespBody(x *Exchange) bool {
	pl := s.state.Load().pipelines[x.VHost]
	return pl != nil && pl.WantsResponseBody()
}

func (s *Server) localAddr(ctx *fasthttp.RequestCtx) netip.AddrPort {
	if mc, ok := ctx.Conn().(*metaConn); ok {
		return mc.meta.local
	}
	return netip.AddrPort{}
}

func setAffinityCookie(resp *fasthttp.Response, p *config.Pool, ep *lb.Endpoint) {
	c := fasthttp.AcquireCookie()
	c.SetKey(p.AffinityCookie)
	c.SetValue(ep.ID())
	c.SetPath("/")
	c.SetHTTPOnly(true)
	if p.AffinityTTL > 0 {
		c.SetMaxAge(int(p.AffinityTTL.Seconds()))
	}
	resp.Header.SetCookie(c)
	fasthttp.ReleaseCookie(c)
}

func idempotent(m []byte) bool {
	switch string(m) {
	case "GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE":
		return true
	}
	return false
}

// hashFor computes the request hash used by ringHash and maglev.
func hashFor(x *Exchange, p *config.Pool) uint64 {
	switch {
	case p.HashHeader != "":
		v, _ := x.ReqHeaders.Peek(p.HashHeader)
		return lb.HashBytes(v)
	case p.HashCookie != "":
		v, _ := x.ReqHeaders.Peek("Cookie")
		return lb.HashBytes(cookieValue(v, p.HashCookie))
	case p.HashSourceIP:
		a := x.Client.As16()
		return lb.HashBytes(a[:])
	}
	return 0
}

// cookieValue finds one cookie in a Cookie header without allocating.
func cookieValue(h []byte, name string) []byte {
	for len(h) > 0 {
		i := bytes.IndexByte(h, ';')
		part := h
		if i >= 0 {
			part, h = h[:i], h[i+1:]
		} else {
			h = nil
		}
		part = bytes.TrimSpace(part)
		if len(part) > len(name) && part[len(name)] == '=' && string(part[:len(name)]) == name {
			return part[len(name)+1:]
		}
	}
	return nil
}

func (s *Server) redirectH1(ctx *fasthttp.RequestCtx, x *Exchange) {
	rd := x.Route.Redirect
	scheme := rd.Scheme
	if scheme == "" {
		scheme = x.Scheme
	}
	host := string(x.Host)
	if rd.Host != "" || rd.Port != 0 {
		h := rd.Host
		if h == "" {
			h = string(bytes.TrimSuffix(x.Host, []byte(":"+portOf(x.Host))))
		}
		if rd.Port != 0 {
			h = net.JoinHostPort(h, strconv.Itoa(rd.Port))
		}
		host = h
	}
	path := string(ctx.Request.URI().PathOriginal())
	if rd.Path != "" {
		path = rd.Path
	}
	loc := scheme + "://" + host + path
	if q := ctx.Request.URI().QueryString(); len(q) > 0 && !rd.StripQuery {
		loc += "?" + string(q)
	}
	ctx.Response.Header.Set("Location", loc)
	ctx.SetStatusCode(rd.Code)
}

func portOf(host []byte) string {
	if i := bytes.LastIndexByte(host, ':'); i >= 0 && !bytes.Contains(host[i:], []byte("]")) {
		return string(host[i+1:])
	}
	return ""
}

// mirrorH1 sends a copy of the request to the shadow pool in the
// background; its answer is discarded. At most 64 mirrors are in flight.
//
// A request whose body streams (larger than Options.MaxReplayBodySize) is
// not mirrored: its body is read once, for the origin.
func (s *Server) mirrorH1(req *fasthttp.Request, x *Exchange, m *config.Mirror) {
	if m.Pool == nil || (m.Percent < 100 && int(requestIDCounter.Load()%100) >= m.Percent) || req.IsBodyStream() {
		return
	}
	select {
	case s.mirrorSem <- struct{}{}:
	default:
		return
	}
	mreq := fasthttp.AcquireRequest()
	req.CopyTo(mreq)
	peer := x.Peer
	go func() {
		defer func() { <-s.mirrorSem }()
		defer fasthttp.ReleaseRequest(mreq)
		if m.Pool.HTTP2 {
			s.mirrorH1ToH2(mreq, m) // h1toh2.go
			return
		}
		pool := s.reg.Pool(m.Pool.ID)
		if pool == nil {
			return
		}
		ep, err := pool.Pick(0, nil)
		if err != nil {
			return
		}
		resp := fasthttp.AcquireResponse()
		defer fasthttp.ReleaseResponse(resp)
		ep.Begin()
		t0 := time.Now()
		err = s.origins.get(pool, m.Pool, ep).do(mreq, resp, time.Now().Add(s.opts.DefaultRouteTimeout), peer, netip.AddrPort{})
		res := lb.Result{Duration: time.Since(t0), Status: resp.StatusCode()}
		if err != nil {
			res.Status = 0
			res.ConnectFailed = isDialError(err)
		}
		ep.End(res)
	}()
}

// bodyForOriginH1 readies the request body for the origin. A body is
// held in memory only when it may be sent more than once (keep: a retry
// or a mirror), and only up to Options.MaxReplayBodySize; any other body
// streams to the origin as it arrives. It reports whether the body can be sent more than once, and
// false in ok when it answered the client itself (the body failed).
func (s *Server) bodyForOriginH1(ctx *fasthttp.RequestCtx, hx *h1Exchange, keep bool) (replayable, ok bool) {
	req := &ctx.Request
	// Request-trailer stages without body stages (which run them at the
	// body's end otherwise) see the trailers of a body read whole now, of
	// a streamed one when it ends (h1toh2.go).
	if !req.IsBodyStream() {
		if len(req.Header.PeekTrailerKeys()) > 0 {
			if pl := s.requestTrailerStagesH1(&hx.x); pl != nil && requestTrailersH1(pl, &hx.x) == Respond {
				writeReplyH1(ctx, &hx.x)
				return false, false
			}
		}
		return true, true
	}
	cl := req.Header.ContentLength()
	if cl == 0 {
		return true, true
	}
	// The stages may have wrapped the client's body already (and read
	// ahead into hx.buf).
	src := req.BodyStream()
	wrapped := hx.body.r != nil
	if !wrapped {
		hx.body.r = src
		src = &hx.body
		if cl < 0 {
			if pl := s.requestTrailerStagesH1(&hx.x); pl != nil {
				src = requestTrailersAtEnd(src, pl, &hx.x)
			}
		}
	}
	limit := s.opts.MaxReplayBodySize
	if keep && cl <= limit {
		// Small enough to keep for a replay: read it now (a chunked body
		// only while it stays under the limit).
		n := cl
		if cl < 0 {
			n = limit + 1
		}
		b, end, err := hx.readAhead(src, n, wrapped)
		if err != nil {
			if hx.body.err == nil {
				hx.body.err = err // a stage refused the body: errStoppedByStage
			}
			return false, s.bodyFailedH1(ctx, hx, err)
		}
		if cl >= 0 || end {
			if cl >= 0 && len(b) < cl {
				// The client ended the connection inside the body.
				failBody(ctx, &hx.x, io.ErrUnexpectedEOF)
				return false, false
			}
			req.SetBody(b)
			return true, true
		}
		req.SetBodyStream(io.MultiReader(bytes.NewReader(b), src), -1)
		return false, true
	}
	if !wrapped {
		req.SetBodyStream(src, cl)
	}
	return false, true
}

// bodyFailedH1 answers a request whose body could not be read ahead: the
// stage's answer when a stage stopped it, else failBody. It returns false
// (the request is answered).
func (s *Server) bodyFailedH1(ctx *fasthttp.RequestCtx, hx *h1Exchange, err error) bool {
	if errors.Is(err, errStoppedByStage) {
		writeReplyH1(ctx, &hx.x)
		ctx.SetConnectionClose()
		return false
	}
	failBody(ctx, &hx.x, err)
	return false
}

// requestBodyH1 feeds the request body to the stages that asked for it,
// before anything is sent to the origin. A buffered body is handed over
// whole. A streamed body is read up to the largest buffering any stage
// asked for: when it ends within that, it is handed over whole (end true);
// otherwise the first chunk holds one byte more than that with end false
// (so a stage can refuse a body over its limit with 413 before the origin
// sees a byte), and the rest passes through the stages chunk by chunk as
// it is forwarded, so a large upload is never held in memory.
func (s *Server) requestBodyH1(ctx *fasthttp.RequestCtx, hx *h1Exchange, pl *Pipeline) Action {
	x, req := &hx.x, &ctx.Request
	if !req.IsBodyStream() {
		if pl.RequestBody(x, req.Body(), true) == Respond {
			return Respond
		}
		return requestTrailersH1(pl, x)
	}
	limit := pl.BufferRequest
	if limit <= 0 {
		limit = 32 << 10
	}
	hx.body.r = req.BodyStream()
	b, end, err := hx.readAhead(&hx.body, limit+1, false)
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			x.respond(fasthttp.StatusRequestTimeout, "request body timeout\n")
		} else {
			x.respond(fasthttp.StatusBadRequest, "reading request body failed\n")
		}
		return Respond
	}
	if end {
		if cl := req.Header.ContentLength(); cl >= 0 && len(b) < cl {
			hx.body.err = io.ErrUnexpectedEOF
			x.respond(fasthttp.StatusBadRequest, "reading request body failed\n")
			return Respond
		}
		if pl.RequestBody(x, b, true) == Respond || requestTrailersH1(pl, x) == Respond {
			return Respond
		}
		req.SetBody(b) // whole body in hand: replayable
		return Continue
	}
	if pl.RequestBody(x, b, false) == Respond {
		return Respond
	}
	size := req.Header.ContentLength()
	if size < 0 {
		size = -1
	}
	req.SetBodyStream(io.MultiReader(bytes.NewReader(b), &stageReader{r: &hx.body, x: x, pl: pl}), size)
	return Continue
}

// stageReader passes the rest of a streamed request body through the body
// stages as it is forwarded.
type stageReader struct {
	r    io.Reader
	x    *Exchange
	pl   *Pipeline
	done bool
}

func (b *stageReader) Read(p []byte) (int, error) {
	if b.done {
		return 0, io.EOF
	}
	n, err := b.r.Read(p)
	if err == io.EOF {
		b.done = true
	}
	if n > 0 || b.done {
		if b.pl.RequestBody(b.x, p[:n], b.done) == Respond || b.done && requestTrailersH1(b.pl, b.x) == Respond {
			return 0, errStoppedByStage
		}
	}
	return n, err
}

// lengthAnnouncesBody reports whether fasthttp's request Content-Length (-1 for
// chunked, -2 when the head names no length) announces a body.
func lengthAnnouncesBody(contentLength int) bool { return contentLength > 0 || contentLength == -1 }
