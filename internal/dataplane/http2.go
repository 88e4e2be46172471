package dataplane

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"

	"github.com/meridian-platform/meridian/internal/dataplane/config"
	"github.com/meridian-platform/meridian/internal/dataplane/h1"
	"github.com/meridian-platform/meridian/internal/lb"
)

type ctxKey int

const (
	metaKey ctxKey = iota
	endpointKey
)

// stdHeaders adapts net/http headers to Headers.
type stdHeaders struct{ h http.Header }

func (a stdHeaders) Peek(n string) ([]byte, bool) {
	v, ok := a.h[http.CanonicalHeaderKey(n)]
	if !ok || len(v) == 0 {
		return nil, false
	}
	return []byte(v[0]), true
}
func (a stdHeaders) Set(n, v string)             { a.h.Set(n, v) }
func (a stdHeaders) SetBytes(n string, v []byte) { a.h.Set(n, string(v)) }
func (a stdHeaders) Add(n, v string)             { a.h.Add(n, v) }
func (a stdHeaders) Del(n string)                { a.h.Del(n) }
func (a stdHeaders) VisitAll(f func(k, v []byte)) {
	for k, vv := range a.h {
		for _, v := range vv {
			f([]byte(k), []byte(v))
		}
	}
}

// serveH2 runs the HTTP/2 server on a connection (TLS with ALPN h2, or h2c
// with prior knowledge).
func (s *Server) serveH2(l *listener, c net.Conn, meta *connMeta) {
	ctx := context.WithValue(context.Background(), metaKey, meta)
	h := l.h2.Load()
	h.srv.ServeConn(guardH2(c), &http2.ServeConnOpts{Context: ctx, BaseConfig: h.base, Handler: h.base.Handler})
}

// newHTTP2Server returns the HTTP/2 server of a listener: frames up to the
// protocol's initial 16 KiB, as its SETTINGS_MAX_FRAME_SIZE says (a larger
// header frame is a connection error, RFC 9113 §4.2), and the HPACK table
// size h2Guard's decoder shares.
func newHTTP2Server(idle time.Duration) *http2.Server {
	return &http2.Server{IdleTimeout: idle, MaxReadFrameSize: h2MaxFrameSize, MaxDecoderHeaderTableSize: h2DecoderTableSize}
}

// h2ErrorLog is where the HTTP/2 server reports a client's protocol
// errors: debug lines, so that a client cannot fill the node's log.
func h2ErrorLog(l *slog.Logger) *log.Logger {
	return slog.NewLogLogger(l.Handler(), slog.LevelDebug)
}

// cleanPath normalizes a request path the way routing sees it.
func cleanPath(p string) string {
	if p == "" {
		return "/"
	}
	c := path.Clean(p)
	if c != "/" && strings.HasSuffix(p, "/") {
		c += "/"
	}
	return c
}

func (s *Server) handleH2(w http.ResponseWriter, r *http.Request) {
	meta, _ := r.Context().Value(metaKey).(*connMeta)
	if meta == nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	st := s.state.Load()
	lc := st.table.HTTP[meta.lkey]
	if lc == nil {
		http.Error(w, "listener is being removed", http.StatusServiceUnavailable)
		return
	}
	if p := checkH2Limits(r, s.limits); p != 0 {
		s.metrics.rejected.Inc()
		if p == http.StatusRequestURITooLong {
			http.Error(w, "URI Too Long", p)
		} else {
			http.Error(w, "Request Header Fields Too Large", p)
		}
		return
	}
	switch {
	case r.Method == http.MethodConnect:
		// As on HTTP/1.1: no tunnels (RFC 9113 §8.5), and a 405 lists
		// the methods that are served (RFC 9110 §15.5.6).
		w.Header().Set("Allow", allowedMethods)
		http.Error(w, "CONNECT is not supported", http.StatusMethodNotAllowed)
		return
	case r.RequestURI == "*":
		// OPTIONS * (the server admits "*" for OPTIONS only) asks about
		// the server (RFC 9110 §9.3.7), answered as on HTTP/1.1.
		w.Header().Set("Allow", allowedMethods)
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(http.StatusOK)
		return
	}
	vh := lc.VHost([]byte(r.Host))
	if vh == nil {
		http.Error(w, "no load balancer serves this host", http.StatusNotFound)
		return
	}
	x := &Exchange{
		Method: []byte(r.Method), Path: []byte(cleanPath(r.URL.Path)), RawQuery: []byte(r.URL.RawQuery), Host: []byte(r.Host),
		Scheme: "http", Proto: r.Proto, Peer: meta.peer, Start: time.Now(), Listener: lc, VHost: vh,
		RawTarget: []byte(r.RequestURI), TLS: meta.tlsState, BodyFollows: r.ContentLength != 0,
		ReqHeaders: stdHeaders{r.Header}, RespHeaders: stdHeaders{w.Header()},
	}
	if meta.tls {
		x.Scheme = "https"
	}
	var q map[string][]string
	x.query = func(n string) ([]byte, bool) {
		if q == nil {
			q = r.URL.Query()
		}
		v, ok := q[n]
		if !ok {
			return nil, false
		}
		if len(v) == 0 {
			return []byte{}, true
		}
		return []byte(v[0]), true
	}
	resolveClient(x, vh)
	x.Route = vh.Match(x.routeRequest())
	pl := st.pipelines[vh]
	rw := &statusWriter{ResponseWriter: w}
	var counted *countingBody
	if hasBody(r) && r.ContentLength < 0 {
		// A body of unknown length (streamed, gRPC) is counted as it is
		// read, for the request byte metrics.
		counted = &countingBody{rc: r.Body}
		r.Body = counted
	}
	if rt := x.Route; rt == nil || rt.Pool == nil || rt.Redirect != nil || rt.Direct != nil {
		drainH2Body(w, r, bodyTimeout(lc, vh))
	}
	switch {
	case x.Route == nil:
		x.respond(http.StatusNotFound, "no route\n")
		writeReplyStd(rw, x)
	case pl.RequestHeaders(x) == Respond:
		writeReplyStd(rw, x)
	case x.Route.Redirect != nil:
		writeRedirectStd(rw, r, x)
	case x.Route.Direct != nil:
		d := x.Route.Direct
		if d.ContentType != "" {
			w.Header().Set("Content-Type", d.ContentType)
		}
		x.Status = d.Status
		if pl.ResponseHeaders(x) == Respond {
			writeReplyStd(rw, x)
			break
		}
		rw.WriteHeader(d.Status)
		_, _ = io.WriteString(rw, d.Body)
	case x.Route.Pool == nil:
		x.respond(http.StatusNotFound, "no route\n")
		writeReplyStd(rw, x)
	default:
		rt := x.Route
		retryWanted := rt.Retry != nil && (rt.Retry.NonIdempotent || idempotent(x.Method))
		// A mirror needs its own copy of the body: small bodies are kept
		// for it as for a retry.
		replay, ok := s.requestBodyStd(w, r, x, pl, bodyTimeout(lc, vh), retryWanted || rt.Mirror != nil)
		if !ok {
			writeReplyStd(rw, x)
			break
		}
		s.proxyStd(rw, r, x, st, pl, replay)
	}
	if !x.Aborted && isGRPC(r) {
		x.grpcStatus = sentGRPCStatus(w.Header())
	}
	x.Status = rw.status
	x.BytesOut = rw.n
	if r.ContentLength > 0 {
		x.BytesIn = r.ContentLength
	}
	if counted != nil {
		x.BytesIn = counted.n.Load()
	}
	st.observe(x)
	pl.Done(x)
	if x.Aborted {
		// A response-trailer stage answered after the head was sent: the
		// stream is reset (RST_STREAM) instead of ended with trailers.
		panic(http.ErrAbortHandler)
	}
}

// checkH2Limits applies the request-head limits of the HTTP/1.1 path to an
// HTTP/2 request: 414 for a :path longer than MaxURI, 431 for a header
// list larger than MaxHeaderBytes (counted as HPACK does: name, value and
// 32 bytes per field). It returns 0 when the request is within them.
func checkH2Limits(r *http.Request, l h1.Limits) int {
	if l.MaxURI > 0 && len(r.RequestURI) > l.MaxURI {
		return http.StatusRequestURITooLong
	}
	if l.MaxHeaderBytes > 0 {
		n := len(r.Host) + 32
		for k, vv := range r.Header {
			for _, v := range vv {
				n += len(k) + len(v) + 32
			}
		}
		if n > l.MaxHeaderBytes {
			return http.StatusRequestHeaderFieldsTooLarge
		}
	}
	return 0
}

type statusWriter struct {
	http.ResponseWriter
	status int
	n      int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.n += int64(n)
	return n, err
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func writeReplyStd(w http.ResponseWriter, x *Exchange) {
	r := &x.Reply
	for _, h := range r.Headers {
		w.Header().Add(h.Name, h.Value)
	}
	if r.ContentType != "" {
		w.Header().Set("Content-Type", r.ContentType)
	} else if len(r.Body) > 0 {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	}
	w.WriteHeader(r.Status)
	_, _ = w.Write(r.Body)
}

func writeRedirectStd(w http.ResponseWriter, r *http.Request, x *Exchange) {
	rd := x.Route.Redirect
	scheme := rd.Scheme
	if scheme == "" {
		scheme = x.Scheme
	}
	host := r.Host
	if rd.Host != "" || rd.Port != 0 {
		h := rd.Host
		if h == "" {
			h = r.Host
			if hh, _, err := net.SplitHostPort(r.Host); err == nil {
				h = hh
			}
		}
		if rd.Port != 0 {
			h = net.JoinHostPort(h, itoa(rd.Port))
		}
		host = h
	}
	p := r.URL.EscapedPath()
	if rd.Path != "" {
		p = rd.Path
	}
	loc := scheme + "://" + host + p
	if r.URL.RawQuery != "" && !rd.StripQuery {
		loc += "?" + r.URL.RawQuery
	}
	w.Header().Set("Location", loc)
	w.WriteHeader(rd.Code)
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}

// h2Body reads a request body from an HTTP/2 (or h2c) stream: the body
// timeout bounds each wait for more data, and the first error is kept to
// tell a client's failure from an origin's.
type h2Body struct {
	rc      io.ReadCloser
	ctl     *http.ResponseController
	timeout time.Duration
	err     error
}

func (b *h2Body) Read(p []byte) (int, error) {
	if b.timeout > 0 {
		_ = b.ctl.SetReadDeadline(time.Now().Add(b.timeout))
	}
	n, err := b.rc.Read(p)
	if err != nil && err != io.EOF && b.err == nil {
		b.err = err
	}
	return n, err
}

func (b *h2Body) Close() error { return b.rc.Close() }

// h2DrainLimit bounds what drainH2Body reads.
const h2DrainLimit = 64 << 10

// drainH2Body reads (up to h2DrainLimit, each wait bounded by the body
// timeout) the body of a request the proxy answers itself (a direct
// response, a redirect, no route), as the HTTP/1.1 engines read a body
// before they answer: the stream stays open until the client has sent
// it, so that a client's error on it (a body of another length than its
// content-length, a flow-control overflow) is still its stream error
// (RFC 9113 §8.1.1, §6.9.1) rather than a stream already closed by the
// answer. A longer body is answered early (RFC 9113 §8.1 allows it); the
// answer goes out whatever the read gave.
func drainH2Body(w http.ResponseWriter, r *http.Request, timeout time.Duration) {
	if !hasBody(r) || isGRPC(r) {
		return
	}
	hb := &h2Body{rc: r.Body, ctl: http.NewResponseController(w), timeout: timeout}
	_, _ = io.CopyN(io.Discard, hb, h2DrainLimit)
}

// hasBody reports whether a request carries a body.
func hasBody(r *http.Request) bool {
	return r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0
}

// requestBodyStd readies the body of a request that arrived over HTTP/2
// for the stages and the origin, before anything is sent to the origin:
//
//   - A stage that asks for N bytes gets the whole body when it has at
//     most N bytes, else its first N+1 bytes with end false (a body over a
//     stage's limit can be refused before the origin sees a byte); the
//     rest passes through the stages as it is forwarded.
//   - A body a retry may have to send again is kept when it has at most
//     Options.MaxReplayBodySize bytes; replay is that body (nil: the
//     request cannot be replayed; an empty slice: it has no body).
//
// gRPC bodies are never read ahead (a streaming call would wait for an
// answer before sending more): stages see their chunks as they pass.
// It returns ok false when x.Reply is the answer (a stage refused the
// body, or the client's body failed: 408 on the body timeout).
func (s *Server) requestBodyStd(w http.ResponseWriter, r *http.Request, x *Exchange, pl *Pipeline, timeout time.Duration, retryWanted bool) (replay []byte, ok bool) {
	if !hasBody(r) {
		if r.Body != nil {
			r.Body = http.NoBody
		}
		return []byte{}, true
	}
	hb := &h2Body{rc: r.Body, ctl: http.NewResponseController(w), timeout: timeout}
	r.Body = hb
	stages := pl.WantsRequestBody()
	if isGRPC(r) {
		// A streaming call may rightly send nothing for long: its
		// deadline (grpc-timeout) bounds it, not the body timeout.
		hb.timeout = 0
		if stages {
			r.Body = &stageBody{rc: hb, x: x, pl: pl}
		}
		return nil, true
	}
	stageLimit, keep := 0, 0
	if stages {
		stageLimit = pl.BufferRequest
		if stageLimit <= 0 {
			stageLimit = 32 << 10
		}
	}
	if retryWanted && r.ContentLength <= int64(s.opts.MaxReplayBodySize) {
		keep = s.opts.MaxReplayBodySize
	}
	n := max(stageLimit, keep)
	if n == 0 {
		return nil, true
	}
	if r.ContentLength > 0 && r.ContentLength <= int64(n) {
		n = int(r.ContentLength) // the whole body, nothing more to tell
	} else {
		n++ // one more byte tells a body longer than n
	}
	b := make([]byte, n)
	got, err := io.ReadFull(hb, b)
	end := err == io.EOF || err == io.ErrUnexpectedEOF || err == nil && int64(got) == r.ContentLength
	if err != nil && !end {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			x.respond(http.StatusRequestTimeout, "request body timeout\n")
		} else {
			x.respond(http.StatusBadRequest, "reading request body failed\n")
		}
		return nil, false
	}
	b = b[:got]
	if end {
		if stages && pl.RequestBody(x, b, true) == Respond {
			return nil, false
		}
		r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(b)), int64(len(b))
		if keep > 0 && len(b) <= keep {
			return b, true
		}
		return nil, true
	}
	var rest io.Reader = io.MultiReader(bytes.NewReader(b), hb)
	if stages {
		first := min(stageLimit+1, len(b)) // one more than asked: the body is longer
		if pl.RequestBody(x, b[:first], false) == Respond {
			return nil, false
		}
		rest = io.MultiReader(bytes.NewReader(b[:first]), &stageBody{rc: io.NopCloser(io.MultiReader(bytes.NewReader(b[first:]), hb)), x: x, pl: pl})
	}
	r.Body = readCloser{rest, hb}
	return nil, true
}

// readCloser reads from one reader and closes another.
type readCloser struct {
	io.Reader
	c io.Closer
}

func (rc readCloser) Close() error { return rc.c.Close() }

// clientBodyErr is the error reading the client's body, if that failed.
func clientBodyErr(r *http.Request, orig io.ReadCloser) error {
	for b := orig; b != nil; {
		switch v := b.(type) {
		case *h2Body:
			return v.err
		case *stageBody:
			b = v.rc
		case readCloser:
			if hb, ok := v.c.(*h2Body); ok {
				return hb.err
			}
			return nil
		default:
			return nil
		}
	}
	return nil
}

// stageBody feeds request body chunks to the pipeline as they stream.
type stageBody struct {
	rc io.ReadCloser
	x  *Exchange
	pl *Pipeline
}

var errStoppedByStage = errors.New("request stopped by a stage")

func (b *stageBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if n > 0 || err == io.EOF {
		if b.pl.RequestBody(b.x, p[:n], err == io.EOF) == Respond {
			return 0, errStoppedByStage
		}
	}
	return n, err
}

func (b *stageBody) Close() error { return b.rc.Close() }

var hopByHopStd = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authorization", "Trailer", "Transfer-Encoding", "Upgrade"}

func removeHopByHop(h http.Header) {
	for _, v := range h.Values("Connection") {
		for _, tok := range strings.Split(v, ",") {
			if tok = strings.TrimSpace(tok); tok != "" {
				h.Del(tok)
			}
		}
	}
	for _, n := range hopByHopStd {
		h.Del(n)
	}
	// TE is hop-by-hop, but "trailers" must reach gRPC origins.
	if te := h.Get("Te"); te != "" && !strings.EqualFold(strings.TrimSpace(te), "trailers") {
		h.Del("Te")
	}
}

// transports holds the net/http and HTTP/2 clients of each pool.
type poolTransports struct {
	key string
	h1  *http.Transport
	h2  *http2.Transport
}

type transports struct{ m sync.Map } // pool ID -> *poolTransports

func (t *transports) get(gate pendingGate, p *config.Pool) *poolTransports {
	if v, ok := t.m.Load(p.ID); ok && v.(*poolTransports).key == p.TransportKey {
		return v.(*poolTransports)
	}
	dial := func(ctx context.Context, alpn []string) (net.Conn, error) {
		ep, _ := ctx.Value(endpointKey).(*lb.Endpoint)
		if ep == nil {
			return nil, errors.New("no endpoint chosen")
		}
		return dialOrigin(ctx, gate, p, ep, alpn)
	}
	pt := &poolTransports{key: p.TransportKey}
	pt.h1 = &http.Transport{
		DialContext:         func(ctx context.Context, _, _ string) (net.Conn, error) { return dial(ctx, []string{"http/1.1"}) },
		DialTLSContext:      func(ctx context.Context, _, _ string) (net.Conn, error) { return dial(ctx, []string{"http/1.1"}) },
		MaxIdleConnsPerHost: max(p.MaxIdleConns, 1),
		IdleConnTimeout:     p.IdleConnTimeout,
		ForceAttemptHTTP2:   false,
	}
	pt.h2 = &http2.Transport{
		AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, _, _ string, _ *tls.Config) (net.Conn, error) {
			return dial(ctx, []string{"h2"})
		},
		IdleConnTimeout: p.IdleConnTimeout,
	}
	if old, loaded := t.m.Swap(p.ID, pt); loaded {
		o := old.(*poolTransports)
		o.h1.CloseIdleConnections()
		o.h2.CloseIdleConnections()
	}
	return pt
}

func isGRPC(r *http.Request) bool {
	return strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc")
}

// proxyStd forwards a request that arrived over HTTP/2 (or any net/http
// request). gRPC goes to origins over HTTP/2 (h2c or TLS), everything else
// over HTTP/1.1 keep-alive.
//
// replay is the request body kept for retries (see requestBodyStd).
func (s *Server) proxyStd(w *statusWriter, r *http.Request, x *Exchange, st *state, pl *Pipeline, replay []byte) {
	rt := x.Route
	cp := rt.Pool
	pool := s.reg.Pool(cp.ID)
	if pool == nil {
		x.respond(http.StatusServiceUnavailable, "pool not ready\n")
		writeReplyStd(w, x)
		return
	}
	if err := pool.Acquire(); err != nil {
		x.respond(http.StatusServiceUnavailable, "circuit breaker open\n")
		writeReplyStd(w, x)
		return
	}
	defer pool.Release()
	ctx := r.Context()
	if rt.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, rt.Timeout)
		defer cancel()
	}
	grpc := isGRPC(r)
	if grpc {
		// The call's deadline bounds the proxy's wait as the route's
		// timeout does; the origin is told the nearer of the two.
		if d, ok := grpcTimeout(r.Header.Get("Grpc-Timeout")); ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, d)
			defer cancel()
		}
	}
	out := r.Clone(ctx)
	if dl, ok := ctx.Deadline(); ok && grpc {
		out.Header.Set("Grpc-Timeout", encodeGRPCTimeout(time.Until(dl)))
	}
	out.RequestURI = ""
	out.Close = false
	if r.Body == nil || r.Body == http.NoBody {
		out.Body = nil
	} else if len(r.Trailer) > 0 {
		// The request's announced trailers: the server fills r.Trailer
		// when the body ends (Clone copied it empty), the stages see them
		// then, and the client sends them after the body.
		out.Trailer = r.Trailer
		out.Body = &trailerHook{rc: out.Body, end: func() error {
			for k := range r.Trailer {
				if !trailerAllowed(k) {
					delete(r.Trailer, k)
				}
			}
			if pl.RequestTrailers(x, stdHeaders{r.Trailer}) == Respond {
				return errStoppedByStage
			}
			return nil
		}}
	}
	removeHopByHop(out.Header)
	xff := x.Peer.Addr().Unmap().String()
	if prior := r.Header.Get("X-Forwarded-For"); prior != "" && x.TrustedPeer {
		xff = prior + ", " + xff
	}
	out.Header.Set("X-Forwarded-For", xff)
	if out.Header.Get("X-Forwarded-Proto") == "" || !x.TrustedPeer {
		out.Header.Set("X-Forwarded-Proto", x.Scheme)
	}
	if rt.HostRewrite != "" {
		out.Host = rt.HostRewrite
	}
	if rt.PrefixRewrite != "" {
		p := rt.PrefixRewrite
		if rt.PathKind == config.PathPrefix {
			p = strings.Replace(p+string(x.Path[len(rt.PathValue):]), "//", "/", 1)
		}
		out.URL.Path, out.URL.RawPath = p, ""
	}
	pt := s.transports.get(pool, cp)
	var rtp http.RoundTripper = pt.h1
	// The pool's protocol decides, except for gRPC, which needs HTTP/2. A
	// client's "te: trailers" says only that it takes trailers (browsers
	// send it on every HTTP/2 request); an HTTP/1.1 origin's trailers reach
	// it through the chunked coding.
	if grpc || cp.HTTP2 {
		rtp = pt.h2
	}
	out.URL.Scheme = "http"
	if cp.TLS != nil {
		out.URL.Scheme = "https"
	}
	if rtp == pt.h2 {
		out.Proto, out.ProtoMajor, out.ProtoMinor = "HTTP/2.0", 2, 0
	} else {
		out.Proto, out.ProtoMajor, out.ProtoMinor = "HTTP/1.1", 1, 1
		if len(out.Trailer) > 0 {
			out.ContentLength = -1 // chunked: HTTP/1.1 carries trailers only so
		}
	}
	if rt.Mirror != nil {
		if tee := s.mirrorStd(out, x, rt.Mirror, replay, grpc); tee != nil {
			defer tee.finish()
		}
	}
	hash := hashFor(x, cp)
	attempts := 1
	// Only bodiless requests and bodies kept in full can be replayed on
	// another endpoint.
	if rr := rt.Retry; rr != nil && replay != nil && (rr.NonIdempotent || idempotent(x.Method)) {
		attempts += rr.Attempts
	}
	rm := st.routeMetrics[rt]
	if out.Host == "" {
		out.Host = r.Host
	}
	var affinity *lb.Endpoint
	if cp.AffinityCookie != "" {
		if c, err := r.Cookie(cp.AffinityCookie); err == nil {
			if e := pool.ByID(c.Value); e != nil && e.Available() {
				affinity = e
			}
		}
	}
	resp, ep, err := tryOrigins(x, rm, pool, hash, affinity, attempts, func(try int, ep *lb.Endpoint) (*http.Response, error) {
		out.URL.Host = ep.Addr()
		if try > 0 && len(replay) > 0 {
			out.Body = io.NopCloser(bytes.NewReader(replay))
		}
		tctx, cancel := ctx, context.CancelFunc(func() {})
		if d := tryDeadline(x, time.Time{}); !d.IsZero() {
			tctx, cancel = context.WithDeadline(ctx, d)
		}
		resp, err := rtp.RoundTrip(out.WithContext(context.WithValue(tctx, endpointKey, ep)))
		if err != nil {
			cancel()
			return nil, err
		}
		resp.Body = &h2Answer{rc: resp.Body, cancel: cancel}
		return resp, nil
	})
	if err != nil && !grpc && !errors.Is(err, errStoppedByStage) {
		if berr := clientBodyErr(r, r.Body); berr != nil {
			// The client's body failed, not the origin.
			if errors.Is(berr, os.ErrDeadlineExceeded) {
				x.respond(http.StatusRequestTimeout, "request body timeout\n")
			} else {
				x.respond(http.StatusBadRequest, "reading request body failed\n")
			}
			writeReplyStd(w, x)
			return
		}
	}
	if err != nil && grpc && !errors.Is(err, errStoppedByStage) {
		code := 14 // UNAVAILABLE
		if deadlinePassed(r, x.Start) || errors.Is(err, context.DeadlineExceeded) {
			code = 4 // DEADLINE_EXCEEDED
		}
		writeGRPCError(w, x, code, err.Error())
		return
	}
	if err != nil {
		switch {
		case errors.Is(err, lb.ErrNoHealthyEndpoint), errors.Is(err, lb.ErrCircuitOpen):
			x.respond(http.StatusServiceUnavailable, err.Error()+"\n")
		case errors.Is(err, context.DeadlineExceeded):
			x.respond(http.StatusGatewayTimeout, "origin timeout\n")
		case errors.Is(err, errStoppedByStage):
			// x.Reply was set by the stage.
		default:
			x.respond(http.StatusBadGateway, "origin unreachable\n")
		}
		writeReplyStd(w, x)
		return
	}
	defer resp.Body.Close()
	h := w.Header()
	removeHopByHop(resp.Header)
	var trailersOnly http.Header
	if grpc && resp.ContentLength == 0 && len(pl.respTrailers) > 0 && resp.Header.Get("Grpc-Status") != "" {
		// A gRPC "Trailers-Only" answer (one HEADERS frame ending the
		// stream): its status fields are trailers to the stages, and
		// reach the client as trailers after the head, as an answer
		// without messages would carry them.
		trailersOnly = grpcTrailersOnly(resp.Header)
	}
	for k, vv := range resp.Header {
		h[k] = vv
	}
	for k := range resp.Trailer {
		h.Add("Trailer", k)
	}
	if cp.AffinityCookie != "" {
		if c, err := r.Cookie(cp.AffinityCookie); err != nil || c.Value != ep.ID() {
			h.Add("Set-Cookie", affinityCookie(cp, ep).String())
		}
	}
	x.Status = resp.StatusCode
	if pl.ResponseHeaders(x) == Respond {
		writeReplyStd(w, x)
		return
	}
	w.WriteHeader(resp.StatusCode)
	buf := make([]byte, 32<<10)
	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			if pl.WantsResponseBody() && pl.ResponseBody(x, buf[:n], false) == Respond {
				return
			}
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
			w.Flush()
		}
		if rerr != nil {
			if rerr != io.EOF && grpc && len(resp.Trailer) == 0 {
				// The origin stream broke: end the gRPC call with a status
				// instead of a stream without trailers.
				code := "14"
				if deadlinePassed(r, x.Start) {
					code = "4"
				}
				tr := http.Header{"Grpc-Status": {code}, "Grpc-Message": {"origin stream ended: " + rerr.Error()}}
				// The response-trailer stages see the status the client
				// gets.
				if len(pl.respTrailers) > 0 && pl.ResponseTrailers(x, stdHeaders{tr}) == Respond {
					x.Aborted = true
					return
				}
				for k, vv := range tr {
					h[http.TrailerPrefix+k] = vv
				}
				return
			}
			break
		}
	}
	if pl.WantsResponseBody() {
		pl.ResponseBody(x, nil, true)
	}
	if len(resp.Trailer) > 0 || len(trailersOnly) > 0 {
		tr := http.Header{}
		for k, vv := range trailersOnly {
			tr[k] = vv
		}
		for k, vv := range resp.Trailer {
			tr[k] = vv
		}
		if len(dropUnsent(tr)) > 0 && pl.ResponseTrailers(x, stdHeaders{tr}) == Respond {
			// Too late to answer: the head and the body are sent. The
			// exchange is aborted (handleH2 resets the stream).
			x.Aborted = true
			return
		}
		for k, vv := range tr {
			h[http.TrailerPrefix+k] = vv
		}
	}
}

// originTry sends one try of a request to ep over a net/http round
// tripper.
type originTry func(try int, ep *lb.Endpoint) (*http.Response, error)

// tryOrigins is the retry loop of the requests forwarded with a net/http
// round tripper (HTTP/2 clients, and HTTP/1.1 clients of HTTP/2 pools):
// up to attempts tries, each on a newly picked endpoint (the first on
// affinity when not nil), a retry only when the route's policy asks for
// it (status, reset or connect failure) and its retry budget allows one.
// It counts each try on its endpoint (active requests, outlier
// detection) and on x (endpoint, upstream time, retries).
//
// It returns the answer to pass on with the endpoint that gave it, or the
// last error. An answer a retry was wanted for is kept until the retry is
// sent: when no retry can be made (budget spent, no endpoint left) that
// answer is passed on.
func tryOrigins(x *Exchange, rm *routeMetrics, pool *lb.Pool, hash uint64, affinity *lb.Endpoint, attempts int, send originTry) (*http.Response, *lb.Endpoint, error) {
	rr := x.Route.Retry
	var (
		kept   *http.Response // an answer a retry may replace
		keptEP *lb.Endpoint
		last   *lb.Endpoint
	)
	for try := 0; ; try++ {
		ep := affinity
		affinity = nil
		if ep == nil {
			var err error
			if ep, err = pool.Pick(hash, last); err != nil {
				if kept != nil {
					return kept, keptEP, nil
				}
				return nil, last, err
			}
		}
		if kept != nil {
			kept.Body.Close()
			kept = nil
		}
		last = ep
		ep.Begin()
		t0 := time.Now()
		resp, err := send(try, ep)
		d := time.Since(t0)
		x.UpstreamTime += d
		x.Endpoint = ep.Addr()
		res := lb.Result{Duration: d, ConnectFailed: isDialError(err)}
		if err == nil {
			res.Status = resp.StatusCode
		}
		ep.End(res)
		var again bool
		switch {
		case rr == nil || try+1 >= attempts:
		case err == nil:
			again = rr.RetryOnStatus(resp.StatusCode)
		case res.ConnectFailed:
			again = rr.ConnectFailure
		default:
			// Not when a stage stopped the body, nor when the route's
			// deadline has passed (no try could finish).
			again = rr.Reset && !errors.Is(err, errStoppedByStage) && !errors.Is(err, context.DeadlineExceeded)
		}
		if !again || !rm.allowRetry() {
			return resp, ep, err
		}
		x.Retries++
		rm.retries.Inc()
		kept, keptEP = resp, ep
	}
}

// deadlinePassed reports whether the gRPC deadline of r (grpc-timeout) has
// passed since start.
func deadlinePassed(r *http.Request, start time.Time) bool {
	d, ok := grpcTimeout(r.Header.Get("Grpc-Timeout"))
	if !ok {
		return r.Context().Err() == context.DeadlineExceeded
	}
	return time.Since(start) >= d
}

// grpcTimeout parses a grpc-timeout value: at most 8 digits and a unit
// (H, M, S, m, u, n).
func grpcTimeout(v string) (time.Duration, bool) {
	if len(v) < 2 || len(v) > 9 {
		return 0, false
	}
	var n int64
	for _, c := range v[:len(v)-1] {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	var unit time.Duration
	switch v[len(v)-1] {
	case 'H':
		unit = time.Hour
	case 'M':
		unit = time.Minute
	case 'S':
		unit = time.Second
	case 'm':
		unit = time.Millisecond
	case 'u':
		unit = time.Microsecond
	case 'n':
		unit = time.Nanosecond
	default:
		return 0, false
	}
	return time.Duration(n) * unit, true
}

// encodeGRPCTimeout writes d as a grpc-timeout value (at most 8 digits,
// the finest unit that fits; never zero).
func encodeGRPCTimeout(d time.Duration) string {
	if d <= 0 {
		return "1n"
	}
	for _, u := range []struct {
		d time.Duration
		c string
	}{{time.Nanosecond, "n"}, {time.Microsecond, "u"}, {time.Millisecond, "m"}, {time.Second, "S"}, {time.Minute, "M"}} {
		if n := (d + u.d - 1) / u.d; n < 1e8 {
			return strconv.FormatInt(int64(n), 10) + u.c
		}
	}
	return strconv.FormatInt(int64(min((d+time.Hour-1)/time.Hour, 99999999)), 10) + "H"
}

// writeGRPCError answers a gRPC call with a trailers-only status.
func writeGRPCError(w *statusWriter, x *Exchange, code int, msg string) {
	h := w.Header()
	h.Set("Content-Type", "application/grpc")
	h.Set("Grpc-Status", itoa(code))
	h.Set("Grpc-Message", msg)
	x.Status = http.StatusOK
	w.WriteHeader(http.StatusOK)
}

// mirrorStd sends a copy of a request that arrived over HTTP/2 (out, ready
// for the origin: hop-by-hop fields gone, forwarding fields set, rewrites
// done) to the shadow pool, in the background; its answer is discarded and
// nothing about it reaches the client or delays the primary request. The
// semantics are those of the HTTP/1.1 path (mirrorH1): the route's
// percentage, at most 64 mirrors in flight (more are dropped), the same
// Host, endpoints picked without a hash, the default route timeout.
//
// The body: one kept in memory (replay, for a retry or this mirror) is sent
// as it is. A body that streams (gRPC, or longer than
// Options.MaxReplayBodySize is not known yet) is copied as it passes to the
// primary origin, up to Options.MaxReplayBodySize bytes: the mirror leaves
// when that body has ended within the bound, and is dropped if it grows
// past it or never ends. The returned tee (nil when the body needs none)
// must be finished when the exchange ends.
func (s *Server) mirrorStd(out *http.Request, x *Exchange, m *config.Mirror, replay []byte, grpc bool) *mirrorTee {
	if m.Pool == nil || (m.Percent < 100 && int(requestIDCounter.Load()%100) >= m.Percent) {
		return nil
	}
	select {
	case s.mirrorSem <- struct{}{}:
	default:
		return nil
	}
	u := *out.URL
	mreq := &http.Request{Method: out.Method, URL: &u, Host: out.Host, Header: out.Header.Clone(), Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}
	// The primary's choice of protocol, for the shadow pool.
	if grpc || m.Pool.HTTP2 || out.Header.Get("Te") == "trailers" {
		mreq.Proto, mreq.ProtoMajor, mreq.ProtoMinor = "HTTP/2.0", 2, 0
	}
	h2 := mreq.ProtoMajor == 2
	send := func(body []byte) {
		go func() {
			defer func() { <-s.mirrorSem }()
			s.sendMirror(mreq, m, body, h2)
		}()
	}
	switch {
	case replay != nil:
		send(replay)
	case out.Body == nil || out.Body == http.NoBody:
		send(nil)
	default:
		tee := &mirrorTee{rc: out.Body, limit: s.opts.MaxReplayBodySize, send: send, drop: func() { <-s.mirrorSem }}
		out.Body = tee
		return tee
	}
	return nil
}

// sendMirror sends one mirrored request to an endpoint of the shadow pool
// and discards the answer.
func (s *Server) sendMirror(mreq *http.Request, m *config.Mirror, body []byte, h2 bool) {
	pool := s.reg.Pool(m.Pool.ID)
	if pool == nil {
		return
	}
	ep, err := pool.Pick(0, nil)
	if err != nil {
		return
	}
	pt := s.transports.get(pool, m.Pool)
	var rtp http.RoundTripper = pt.h1
	if h2 {
		rtp = pt.h2
	}
	mreq.URL.Scheme = "http"
	if m.Pool.TLS != nil {
		mreq.URL.Scheme = "https"
	}
	mreq.URL.Host = ep.Addr()
	mreq.ContentLength = int64(len(body))
	if len(body) > 0 {
		mreq.Body = io.NopCloser(bytes.NewReader(body))
	}
	ctx, cancel := context.WithTimeout(context.WithValue(context.Background(), endpointKey, ep), s.opts.DefaultRouteTimeout)
	defer cancel()
	ep.Begin()
	t0 := time.Now()
	resp, err := rtp.RoundTrip(mreq.WithContext(ctx))
	res := lb.Result{ConnectFailed: isDialError(err)}
	if err == nil {
		res.Status = resp.StatusCode
		// Read a short answer whole so that its connection is kept.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
	}
	res.Duration = time.Since(t0)
	ep.End(res)
}

// mirrorTee copies a streaming request body, as the primary origin reads
// it, for a mirror: at most limit bytes. send gets the copy when the body
// ended within the bound; drop runs instead when it did not (longer, a
// read failed, or the exchange ended first). Exactly one of them runs.
type mirrorTee struct {
	rc    io.ReadCloser
	limit int
	send  func([]byte)
	drop  func()

	mu   sync.Mutex
	buf  []byte
	over bool
	done bool
}

func (t *mirrorTee) Read(p []byte) (int, error) {
	n, err := t.rc.Read(p)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.done {
		return n, err
	}
	if !t.over {
		if len(t.buf)+n > t.limit {
			t.over, t.buf = true, nil
		} else {
			t.buf = append(t.buf, p[:n]...)
		}
	}
	switch {
	case err == io.EOF && !t.over:
		t.done = true
		t.send(t.buf)
	case err != nil || t.over:
		t.done = true
		t.drop()
	}
	return n, err
}

func (t *mirrorTee) Close() error {
	t.finish()
	return t.rc.Close()
}

// finish drops the mirror if the body has not ended yet.
func (t *mirrorTee) finish() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.done {
		t.done = true
		t.buf = nil
		t.drop()
	}
}

// affinityCookie is the session-affinity cookie that pins a client to ep
// (as setAffinityCookie sets it on the HTTP/1.1 path).
func affinityCookie(p *config.Pool, ep *lb.Endpoint) *http.Cookie {
	c := &http.Cookie{Name: p.AffinityCookie, Value: ep.ID(), Path: "/", HttpOnly: true}
	if p.AffinityTTL > 0 {
		c.MaxAge = int(p.AffinityTTL.Seconds())
	}
	return c
}

// grpcTrailersOnly moves the fields of a gRPC Trailers-Only answer's
// head that are trailers (all but those that may not be: Content-Type,
// Date...) out of h, and returns them.
func grpcTrailersOnly(h http.Header) http.Header {
	tr := http.Header{}
	for k, vv := range h {
		if trailerAllowed(k) {
			tr[k] = vv
			delete(h, k)
		}
	}
	return tr
}

// trailerHook runs end when a request body has been read to its end (its
// trailers are known then); an error from end replaces io.EOF.
type trailerHook struct {
	rc  io.ReadCloser
	end func() error
}

func (t *trailerHook) Read(p []byte) (int, error) {
	n, err := t.rc.Read(p)
	if err == io.EOF && t.end != nil {
		end := t.end
		t.end = nil
		if e := end(); e != nil {
			return n, e
		}
	}
	return n, err
}

func (t *trailerHook) Close() error { return t.rc.Close() }

// countingBody counts the bytes read from a request body (the origin's
// client may still read it while the handler ends: the count is atomic).
type countingBody struct {
	rc io.ReadCloser
	n  atomic.Int64
}

func (c *countingBody) Read(p []byte) (int, error) {
	n, err := c.rc.Read(p)
	c.n.Add(int64(n))
	return n, err
}

func (c *countingBody) Close() error { return c.rc.Close() }
