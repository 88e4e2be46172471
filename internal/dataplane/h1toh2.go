package dataplane

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/meridian-platform/meridian/internal/dataplane/config"
	"github.com/meridian-platform/meridian/internal/lb"
)

// forwardH1ToH2 sends a request that arrived over HTTP/1.1 to a pool that
// speaks HTTP/2 (spec.protocol http2 or h2c), on the pool's multiplexed
// HTTP/2 client. The request has been prepared (hop-by-hop headers gone,
// forwarding headers set, rewrites done); the answer's body streams back
// to the client. attempts > 1 only when the body is in memory.
//
// Trailers cross the protocol change both ways:
//
//   - Request trailers of a chunked body are sent as the HTTP/2 stream's
//     trailers (the request-trailer stages see them when they come while
//     the request is being handled, that is before the origin answered).
//   - Response trailers reach an HTTP/1.1 client in the trailer section of
//     a chunked answer (RFC 9112 7.1.2), after the response-trailer stages
//     saw them at the answer's end (which comes after the handler
//     returned: tailStages keeps the exchange until then). An answer of unknown length is
//     chunked anyway and always carries them: a recipient may discard
//     trailer fields, so sending them costs nothing and loses nothing. An
//     answer whose length the origin gave, and that announced trailers
//     (Trailer), is turned into a chunked one only when the client said
//     "TE: trailers" (RFC 9110 10.1.4: it will not discard them); without
//     that it keeps its Content-Length and the trailers are dropped, which
//     is what nginx does without a trailer-expecting module and Envoy
//     with HTTP/1 trailers off. HTTP/1.0 clients, HEAD requests and 204 /
//     304 answers get no trailers. Fields that must not be trailers
//     (framing, routing, authentication, Content-Type...) and hop-by-hop
//     fields are dropped.
//
// "TE: trailers" from the client is passed to the origin (gRPC servers
// want it); no other TE value is valid in HTTP/2.
func (s *Server) forwardH1ToH2(ctx *fasthttp.RequestCtx, hx *h1Exchange, rm *routeMetrics, pool *lb.Pool, hash uint64,
	affinity *lb.Endpoint, attempts int, deadline time.Time) {
	x, req := &hx.x, &ctx.Request
	cp := x.Route.Pool
	pt := s.transports.get(pool, cp)
	// The URI holds the route's rewrites; its RequestURI is the path and
	// query, also for an absolute-form target.
	target, err := url.ParseRequestURI(string(req.URI().RequestURI()))
	if err != nil {
		x.respond(fasthttp.StatusBadRequest, "invalid request target\n")
		writeReplyH1(ctx, x)
		return
	}
	target.Scheme = "http"
	if cp.TLS != nil {
		target.Scheme = "https"
	}
	hdr := make(http.Header, 16)
	for k, v := range req.Header.All() {
		switch {
		case bytes.EqualFold(k, []byte("Host")), bytes.EqualFold(k, []byte("Content-Length")),
			bytes.EqualFold(k, []byte("Transfer-Encoding")), bytes.EqualFold(k, []byte("Connection")),
			bytes.EqualFold(k, []byte("Trailer")), bytes.EqualFold(k, []byte("TE")):
			continue
		}
		hdr.Add(string(k), string(v))
	}
	teTrailers := clientAcceptsTrailers(x)
	if teTrailers {
		hdr.Set("Te", "trailers")
	}
	host := string(req.Header.Host())
	var body []byte
	var stream io.Reader
	size := int64(req.Header.ContentLength())
	if req.IsBodyStream() {
		stream = req.BodyStream()
	} else {
		body = req.Body()
		size = int64(len(body))
	}
	if size < 0 {
		size = -1
	}
	// Request trailers: those already received (a chunked body read
	// ahead), or, for a chunked body still streaming, those the body's
	// end brings (trailer is filled then; a non-nil map makes the HTTP/2
	// client end the stream with a trailer block when it has fields).
	var trailer http.Header
	var rt *reqTrailers
	switch {
	case stream != nil && size < 0:
		// The names the client announced are announced to the origin
		// (some servers, Go's among them, keep only announced ones).
		trailer = announcedTrailers(x)
		rt = &reqTrailers{r: stream, h: &req.Header, out: trailer, x: x, pl: s.state.Load().pipelines[x.VHost], live: true}
		stream = rt
	case stream == nil:
		if tb := req.Header.TrailerHeader(); len(tb) > 2 {
			trailer = http.Header{}
			parseTrailerSection(tb, trailer)
			if pl := s.state.Load().pipelines[x.VHost]; pl != nil && pl.RequestTrailers(x, stdHeaders{trailer}) == Respond {
				writeReplyH1(ctx, x)
				return
			}
		}
	}
	if rt != nil {
		// Past this point the exchange may be reused: a trailer that
		// comes later reaches the origin without the stages.
		defer rt.end()
	}
	resp, ep, err := tryOrigins(x, rm, pool, hash, affinity, attempts, func(try int, ep *lb.Endpoint) (*http.Response, error) {
		u := *target
		u.Host = ep.Addr()
		tctx, cancel := context.WithDeadline(context.Background(), tryDeadline(x, deadline))
		out := (&http.Request{Method: string(x.Method), URL: &u, Host: host, Header: hdr, ContentLength: size,
			Proto: "HTTP/2.0", ProtoMajor: 2, Trailer: trailer}).WithContext(context.WithValue(tctx, endpointKey, ep))
		switch {
		case stream != nil:
			out.Body = io.NopCloser(stream)
		case len(body) > 0:
			out.Body = io.NopCloser(bytes.NewReader(body))
		}
		resp, err := pt.h2.RoundTrip(out)
		if err != nil {
			cancel()
			return nil, err
		}
		// Closing the body ends the stream and its deadline.
		resp.Body = &h2Answer{rc: resp.Body, cancel: cancel}
		return resp, nil
	})
	if err != nil {
		switch {
		case rt != nil && rt.stoppedByStage():
			// A request-trailer stage answered (x.Reply).
		case hx.body.err != nil && !errors.Is(err, errStoppedByStage):
			failBody(ctx, x, hx.body.err)
			return
		case errors.Is(err, errStoppedByStage):
		case errors.Is(err, lb.ErrNoHealthyEndpoint), errors.Is(err, lb.ErrCircuitOpen):
			x.respond(fasthttp.StatusServiceUnavailable, err.Error()+"\n")
		case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
			x.respond(fasthttp.StatusGatewayTimeout, "origin timeout\n")
		default:
			x.respond(fasthttp.StatusBadGateway, "origin unreachable\n")
		}
		writeReplyH1(ctx, x)
		return
	}
	removeHopByHop(resp.Header)
	r := &ctx.Response
	r.SetStatusCode(resp.StatusCode)
	for k, vv := range resp.Header {
		if k == "Content-Length" {
			continue
		}
		for _, v := range vv {
			r.Header.Add(k, v)
		}
	}
	if cp.AffinityCookie != "" && string(req.Header.Cookie(cp.AffinityCookie)) != ep.ID() {
		setAffinityCookie(r, cp, ep)
	}
	a := resp.Body.(*h2Answer)
	grpc := bytes.HasPrefix(req.Header.ContentType(), []byte("application/grpc"))
	if grpc {
		// A Trailers-Only answer's status (Exchange.GRPCStatus); the
		// trailers' replaces it at the answer's end.
		x.grpcStatus = sentGRPCStatus(resp.Header)
	}
	if pl := s.state.Load().pipelines[x.VHost]; pl != nil && (len(pl.respTrailers) > 0 || grpc) {
		// The response-trailer stages see the origin's trailers at the
		// answer's end, also when the client gets none (HTTP/1.0, HEAD, a
		// length the origin gave and no TE: trailers). A gRPC call's
		// status comes there too: its exchange is completed (access log,
		// completion hooks) once the answer has ended, with the status.
		a.trailer = resp
		a.stages = &tailStages{hx: hx, pl: pl}
		a.grpc = grpc
	}
	head := req.Header.IsHead()
	if head || resp.StatusCode == http.StatusNoContent || resp.StatusCode == http.StatusNotModified {
		if a.stages != nil && drainBodiless(a) == errStoppedByStage {
			// A response-trailer stage answered before the head was sent.
			a.Close()
			writeReplyH1(ctx, x)
			return
		}
		a.Close()
		if resp.ContentLength >= 0 {
			r.Header.SetContentLength(int(resp.ContentLength))
		}
		r.SkipBody = true
		return
	}
	n := int(resp.ContentLength)
	if x.Proto == "HTTP/1.0" {
		// The origin request was made HTTP/1.1; the engine frames the
		// answer by the request's version. An HTTP/1.0 client cannot read
		// chunked: see http10Answer for an answer of unknown length.
		req.Header.SetProtocolBytes(strHTTP10)
		if n < 0 {
			r.SetBodyStream(a, -1)
			if a.stages != nil {
				hx.tail = a
			}
			s.http10Answer(ctx, hx)
			return
		}
	}
	if x.Proto == "HTTP/1.1" && (resp.ContentLength < 0 || teTrailers && (len(resp.Trailer) > 0 || grpc)) {
		// Chunked, with the origin's trailers in its trailer section
		// (after the response-trailer stages saw them). A gRPC call's
		// status comes in trailers the origin need not announce: a
		// client that takes trailers gets them whatever the length.
		n = -1
		a.trailer, a.resp = resp, &r.Header
		for k := range resp.Trailer {
			if trailerAllowed(k) {
				_ = r.Header.AddTrailer(k) // refused names are dropped
			}
		}
	}
	if a.stages != nil {
		hx.tail = a
	}
	// The engine writes the body after the handler returns and closes it
	// then, which ends the origin stream.
	r.SetBodyStream(a, n)
}

// drainBodiless reads the rest of an HTTP/2 origin's answer that has no
// body (to HEAD, 204, 304) up to its end, where its trailers come, so that
// the response-trailer stages see them (a.stages is set); a body the
// origin sends anyway is discarded, and not more than 64 KiB of it is
// read. It returns errStoppedByStage when a stage answered.
func drainBodiless(a *h2Answer) error {
	var buf [512]byte
	for read := 0; read < 64<<10; {
		n, err := a.Read(buf[:])
		read += n
		if err != nil {
			return err
		}
	}
	return nil
}

// h2Answer is an origin's response body read with a net/http client (the
// HTTP/2 one towards HTTP/2 pools); closing it ends the stream and the
// context of its try. Towards an HTTP/1.1 client, with trailer set,
// the origin's trailers are copied into resp's trailer section when the
// body ends (the engine writes that section after the last chunk).
type h2Answer struct {
	rc      io.ReadCloser
	cancel  context.CancelFunc
	trailer *http.Response
	resp    *fasthttp.ResponseHeader
	// stages, when set, runs the response-trailer stages on the
	// trailers before they are copied.
	stages *tailStages
	// grpc says the answer is a gRPC call's: its trailers' grpc-status,
	// as the stages left it, is the exchange's grpcStatus.
	grpc bool
}

func (a *h2Answer) Read(p []byte) (int, error) {
	n, err := a.rc.Read(p)
	a.stages.count(n)
	if err == io.EOF && a.trailer != nil {
		tr := a.trailer.Trailer
		a.trailer = nil
		if serr := a.stages.run(tr); serr != nil {
			return n, serr
		}
		if a.grpc && a.stages != nil && a.stages.hx != nil {
			if gs := sentGRPCStatus(tr); gs != 0 {
				a.stages.hx.x.grpcStatus = gs
			}
		}
		if a.resp != nil {
			addTrailers(a.resp, tr)
		}
	}
	return n, err
}

func (a *h2Answer) Close() error {
	err := a.rc.Close()
	a.cancel()
	a.stages.end()
	return err
}

func (a *h2Answer) handOver(st *state, pl *Pipeline) { a.stages.handOver(st, pl) }

// answerTail is an origin's answer body that the engine writes to an
// HTTP/1.1 client after the handler returned, with response-trailer
// stages to run when it ends (h1Exchange.tail): the handler hands the
// exchange over to it instead of completing it, and its Close completes
// it (metrics, completion hooks) and releases it.
type answerTail interface {
	io.Reader
	handOver(st *state, pl *Pipeline)
}

// errAbortedByStage ends an answer whose head has been sent when a
// response-trailer stage answers (Exchange.Aborted).
var errAbortedByStage = errors.New("answer aborted by a response-trailer stage")

// tailStages runs the response-trailer stages of an exchange on the
// trailers of its answer's end, which may come after the handler
// returned: the exchange (and the client's request it lends from, which
// the engine keeps until the answer is written) then stays out of the
// pool until the answer's body is closed, and is completed then (metrics,
// completion hooks, access log: after the stages, so that these see what
// the stages saw and did, with the body bytes that passed).
//
// A stage that answers (Respond) while the handler still runs (an answer
// read whole for an HTTP/1.0 client) stops the answer before its head is
// sent: run returns errStoppedByStage and x.Reply is sent instead. Once
// the handler has returned the head is sent: the answer is aborted (run
// returns errAbortedByStage, the engine closes the connection without
// the answer's end) and Exchange.Aborted is set.
type tailStages struct {
	hx    *h1Exchange
	pl    *Pipeline
	owned bool
	// st and done are the state and pipeline that complete the exchange
	// (set by handOver); n counts the body bytes read.
	st   *state
	done *Pipeline
	n    int64
}

// run runs the stages on tr (nothing when tr is empty or t is nil).
func (t *tailStages) run(tr http.Header) error {
	if t == nil || t.hx == nil || len(dropUnsent(tr)) == 0 {
		return nil
	}
	if t.pl.ResponseTrailers(&t.hx.x, stdHeaders{tr}) != Respond {
		return nil
	}
	if !t.owned {
		return errStoppedByStage
	}
	t.hx.x.Aborted = true
	return errAbortedByStage
}

// count adds n body bytes read.
func (t *tailStages) count(n int) {
	if t != nil {
		t.n += int64(n)
	}
}

// handOver is called by the handler as it returns without completing the
// exchange: st and pl complete it when the body is closed (nil st: the
// caller completes it).
func (t *tailStages) handOver(st *state, pl *Pipeline) {
	if t != nil {
		t.owned, t.st, t.done = true, st, pl
	}
}

// end is called when the body is closed: the exchange is completed and
// released if it was handed over, and not used any more either way.
func (t *tailStages) end() {
	if t == nil || t.hx == nil {
		return
	}
	hx := t.hx
	t.hx = nil
	if t.owned && t.st != nil {
		hx.x.BytesOut = t.n
		hx.complete(t.st, t.done)
	}
}

// dropUnsent removes from tr the names announced (Trailer) for which no
// field came, and returns it.
func dropUnsent(tr http.Header) http.Header {
	for k, vv := range tr {
		if len(vv) == 0 {
			delete(tr, k)
		}
	}
	return tr
}

// addTrailers adds the fields of tr that may be trailers to the trailer
// section of an HTTP/1.1 answer.
func addTrailers(h *fasthttp.ResponseHeader, tr http.Header) {
	for k, vv := range tr {
		if !trailerAllowed(k) || h.AddTrailer(k) != nil {
			continue
		}
		for _, v := range vv {
			h.Add(k, v)
		}
	}
}

// h1Tail is the body of an HTTP/1.1 origin's answer, read into a response
// of its own (o) because the load balancer has response-trailer stages,
// as it streams to the client: at its end the stages see the trailers the
// origin sent (parsed into o) and what they leave is added to the
// client's answer (dst; nil for an HTTP/1.0 client, which gets none).
type h1Tail struct {
	o      *fasthttp.Response
	r      io.Reader
	dst    *fasthttp.ResponseHeader
	stages tailStages
	ended  bool
}

func (t *h1Tail) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	t.stages.count(n)
	if err == io.EOF && !t.ended {
		t.ended = true
		if len(t.o.Header.PeekTrailerKeys()) > 0 || len(t.o.Header.TrailerHeader()) > 2 {
			tr := http.Header{}
			parseTrailerSection(t.o.Header.TrailerHeader(), tr)
			if serr := t.stages.run(tr); serr != nil {
				return n, serr
			}
			if t.dst != nil {
				addTrailers(t.dst, tr)
			}
		}
	}
	return n, err
}

func (t *h1Tail) Close() error {
	if t.o == nil {
		return nil
	}
	err := t.o.CloseBodyStream()
	fasthttp.ReleaseResponse(t.o)
	t.o = nil
	t.stages.end()
	return err
}

func (t *h1Tail) handOver(st *state, pl *Pipeline) { t.stages.handOver(st, pl) }

// http10Bufs hold the start of answers to HTTP/1.0 clients (http10Answer).
var http10Bufs = sync.Pool{New: func() any { return new([smallBody + 1]byte) }}

// http10Answer readies the streamed answer of unknown length in the
// client's response for an HTTP/1.0 client, which cannot read the chunked
// coding. An event stream (by its Content-Type) is
// sent as it comes, delimited by the connection's close (RFC 9112 6.3),
// as is any answer longer than smallBody bytes (the bytes read to tell
// are kept in hx.h10; the handler ends with untilCloseH1); a shorter one is
// read whole and sent with its length (its response-trailer stages run
// at its end, before the head is sent, so that one may still answer). When the response-body
// stages are to read the answer it is read whole, as they need it. It
// returns false when it answered instead: x.Reply when a trailer stage
// answered, 502 when the origin's answer failed.
func (s *Server) http10Answer(ctx *fasthttp.RequestCtx, hx *h1Exchange) bool {
	x, resp := &hx.x, &ctx.Response
	body := resp.BodyStream()
	if s.wantsRespBody(x) {
		return readTailWhole(ctx, x, body)
	}
	bp := http10Bufs.Get().(*[smallBody + 1]byte)
	if bytes.HasPrefix(resp.Header.ContentType(), []byte("text/event-stream")) {
		// Events go as they come: none is held back.
		hx.h10, hx.h10n = bp, 0
		return true
	}
	n, err := io.ReadFull(body, bp[:])
	if err == nil {
		hx.h10, hx.h10n = bp, n
		return true
	}
	_ = resp.CloseBodyStream() // the origin's connection goes back
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		resp.SetBody(bp[:n])
		http10Bufs.Put(bp)
		return true
	}
	http10Bufs.Put(bp)
	if !errors.Is(err, errStoppedByStage) {
		x.respond(fasthttp.StatusBadGateway, "origin answer failed\n")
	}
	writeReplyH1(ctx, x)
	return false
}

// untilCloseH1 ends the handler of an HTTP/1.0 client's answer that is
// delimited by the connection's close (http10Answer): the engine writes
// nothing, and the connection, taken over once the handler returned, gets
// the head (no Content-Length nor Transfer-Encoding, Connection: close),
// the bytes read ahead and the rest of the body as it comes. Then the
// exchange is completed, with the body bytes sent, and the connection
// closed. A response-trailer stage that answers at the end aborts it: the
// connection is reset rather than closed, so that the client can tell an
// answer cut short (Exchange.Aborted).
func (s *Server) untilCloseH1(ctx *fasthttp.RequestCtx, hx *h1Exchange, st *state, pl *Pipeline) {
	body := ctx.Response.BodyStream()
	if t := hx.tail; t != nil && body == t {
		t.handOver(nil, nil) // the head is sent: a stage's answer aborts; completed below
	}
	h := &ctx.Response.Header
	h.Del("Transfer-Encoding")
	h.Del("Content-Length")
	h.SetConnectionClose()
	done := make(chan struct{})
	mc, _ := ctx.Conn().(*metaConn)
	if mc != nil {
		mc.meta.hijacked = done
	}
	ctx.HijackSetNoResponse(true)
	ctx.Hijack(func(c net.Conn) {
		defer close(done)
		var sent int64
		_, err := c.Write(h.Header())
		if err == nil {
			var k int
			k, err = c.Write(hx.h10[:hx.h10n])
			sent = int64(k)
		}
		if err == nil {
			var k int64
			k, err = io.Copy(c, body)
			sent += k
		}
		_ = ctx.Response.CloseBodyStream()
		if errors.Is(err, errAbortedByStage) && mc != nil {
			if tc, ok := mc.meta.raw.(*net.TCPConn); ok {
				_ = tc.SetLinger(0) // a reset, not the close that ends the answer
				mc.meta.reset.Store(true)
			}
		}
		http10Bufs.Put(hx.h10)
		hx.h10 = nil
		hx.x.BytesOut = sent
		hx.complete(st, pl)
	})
}

// readTailWhole reads an origin's streamed answer with response-trailer
// stages (t, the client's response body) whole, before its head is sent
// (for an HTTP/1.0 client, which cannot read chunked, or for the
// response-body stages): the trailer stages run at its end then. It
// returns false when it answered instead: x.Reply when a trailer stage
// answered, 502 when the origin's answer failed.
func readTailWhole(ctx *fasthttp.RequestCtx, x *Exchange, t io.Reader) bool {
	b, err := io.ReadAll(t)
	_ = ctx.Response.CloseBodyStream() // t.Close: the origin's connection goes back
	if err != nil {
		if !errors.Is(err, errStoppedByStage) {
			x.respond(fasthttp.StatusBadGateway, "origin answer failed\n")
		}
		writeReplyH1(ctx, x)
		return false
	}
	ctx.Response.SetBody(b)
	return true
}

// adoptAnswerH1 moves the answer of an HTTP/1.1 origin, read into o (see
// proxyH1), into the client's response; ok is false when no answer is to
// be sent (o is only released then). An answer read whole is copied with
// its trailers (responseTrailersH1 runs the stages on them); a streamed
// one streams on through an h1Tail.
func (s *Server) adoptAnswerH1(hx *h1Exchange, o *fasthttp.Response, ok bool, pl *Pipeline) {
	if !ok {
		_ = o.CloseBodyStream()
		fasthttp.ReleaseResponse(o)
		return
	}
	r := &hx.ctx.Response
	o.Header.CopyTo(&r.Header)
	r.SkipBody = o.SkipBody
	if !o.IsBodyStream() {
		r.SetBody(o.Body())
		fasthttp.ReleaseResponse(o)
		return
	}
	t := &h1Tail{o: o, r: o.BodyStream(), dst: &r.Header, stages: tailStages{hx: hx, pl: pl}}
	if hx.x.Proto == "HTTP/1.0" {
		t.dst = nil
	}
	r.SetBodyStream(t, o.Header.ContentLength())
	hx.tail = t
}

// reqTrailers passes a chunked HTTP/1.1 request body through and, at its
// end, copies the trailer fields the engine parsed into out (the HTTP/2
// request's Trailer) after the request-trailer stages saw them. A stage
// that answers stops the body (errStoppedByStage).
type reqTrailers struct {
	r   io.Reader
	h   *fasthttp.RequestHeader
	out http.Header
	x   *Exchange
	pl  *Pipeline
	// mu guards live: the stages run only while the exchange is handled.
	mu      sync.Mutex
	live    bool
	stopped bool
	done    bool
}

func (t *reqTrailers) Read(p []byte) (int, error) {
	if t.done {
		return 0, io.EOF
	}
	n, err := t.r.Read(p)
	if err != io.EOF {
		return n, err
	}
	t.done = true
	parseTrailerSection(t.h.TrailerHeader(), t.out)
	if len(t.out) == 0 || t.pl == nil {
		return n, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.live && t.pl.RequestTrailers(t.x, stdHeaders{t.out}) == Respond {
		t.stopped = true
		clear(t.out)
		return n, errStoppedByStage
	}
	return n, err
}

func (t *reqTrailers) stoppedByStage() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.stopped
}

// end marks the exchange as no longer handled.
func (t *reqTrailers) end() {
	t.mu.Lock()
	t.live = false
	t.mu.Unlock()
}

// announcedTrailers is a Trailer map with the names the HTTP/1.1 client
// announced in its Trailer fields (read from the head as received), each
// without a value yet.
func announcedTrailers(x *Exchange) http.Header {
	h := http.Header{}
	x.VisitRawHeaders(func(name, value []byte) {
		if !bytes.EqualFold(name, []byte("Trailer")) {
			return
		}
		for _, k := range bytes.Split(value, []byte(",")) {
			if k := http.CanonicalHeaderKey(string(bytes.TrimSpace(k))); k != "" && trailerAllowed(k) {
				h[k] = nil
			}
		}
	})
	return h
}

// tryDeadline is the deadline of one try: the route's, or sooner the
// retry policy's per-try timeout.
func tryDeadline(x *Exchange, deadline time.Time) time.Time {
	if rr := x.Route.Retry; rr != nil && rr.PerTryTimeout > 0 {
		if d := time.Now().Add(rr.PerTryTimeout); deadline.IsZero() || d.Before(deadline) {
			return d
		}
	}
	return deadline
}

// parseTrailerSection adds the fields of a serialized trailer section
// ("Name: value" CRLF lines, as the engine keeps it) to h, leaving out
// fields that must not be trailers.
func parseTrailerSection(b []byte, h http.Header) {
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		line := b
		if i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		c := bytes.IndexByte(line, ':')
		if c <= 0 {
			continue
		}
		k := http.CanonicalHeaderKey(string(bytes.TrimSpace(line[:c])))
		if trailerAllowed(k) {
			h.Add(k, string(bytes.Trim(line[c+1:], " \t")))
		}
	}
}

// trailerAllowed reports whether a field (canonical name) may be passed on
// as a trailer: not a hop-by-hop field, nor one of those RFC 9110 6.5.1
// keeps out of trailers (framing, routing, request modifiers,
// authentication, response control, content handling).
func trailerAllowed(k string) bool {
	switch http.CanonicalHeaderKey(k) {
	case "Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authorization", "Proxy-Authenticate",
		"Te", "Trailer", "Transfer-Encoding", "Upgrade", "Content-Length", "Content-Type", "Content-Encoding",
		"Content-Range", "Host", "Authorization", "Www-Authenticate", "Set-Cookie", "Cookie", "Cache-Control",
		"Expect", "Max-Forwards", "Pragma", "Range", "If-Match", "If-None-Match", "If-Modified-Since",
		"If-Unmodified-Since", "If-Range", "Realm", "Age", "Expires", "Date", "Location", "Retry-After", "Vary", "Warning":
		return false
	}
	return k != "" && k[0] != ':'
}

// clientAcceptsTrailers reports whether the HTTP/1.1 client listed
// "trailers" in TE (read from the head as received: TE is removed before
// forwarding).
func clientAcceptsTrailers(x *Exchange) bool {
	ok := false
	x.VisitRawHeaders(func(name, value []byte) {
		if ok || !bytes.EqualFold(name, []byte("TE")) {
			return
		}
		for len(value) > 0 {
			i := bytes.IndexByte(value, ',')
			tok := value
			if i >= 0 {
				tok, value = value[:i], value[i+1:]
			} else {
				value = nil
			}
			if j := bytes.IndexByte(tok, ';'); j >= 0 {
				tok = tok[:j]
			}
			if bytes.EqualFold(bytes.TrimSpace(tok), []byte("trailers")) {
				ok = true
				return
			}
		}
	})
	return ok
}

// mirrorH1ToH2 sends a mirrored HTTP/1.1 request (prepared for the origin,
// its body in memory) to a shadow pool that speaks HTTP/2.
func (s *Server) mirrorH1ToH2(mreq *fasthttp.Request, m *config.Mirror) {
	u, err := url.ParseRequestURI(string(mreq.URI().RequestURI()))
	if err != nil {
		return
	}
	hdr := make(http.Header, 16)
	for k, v := range mreq.Header.All() {
		switch {
		case bytes.EqualFold(k, []byte("Host")), bytes.EqualFold(k, []byte("Content-Length")),
			bytes.EqualFold(k, []byte("Transfer-Encoding")), bytes.EqualFold(k, []byte("Connection")),
			bytes.EqualFold(k, []byte("Trailer")), bytes.EqualFold(k, []byte("TE")):
			continue
		}
		hdr.Add(string(k), string(v))
	}
	out := &http.Request{Method: string(mreq.Header.Method()), URL: u, Host: string(mreq.Header.Host()), Header: hdr,
		Proto: "HTTP/2.0", ProtoMajor: 2}
	s.sendMirror(out, m, mreq.Body(), true)
}

// dropConnectionNamed removes from an origin's HTTP/1.1 answer the fields
// its Connection header names (hop-by-hop, RFC 9110 7.6.1), and that
// header (the engine sets Connection for the client's connection).
func dropConnectionNamed(rh *fasthttp.ResponseHeader) {
	delConnectionNamed(rh.Peek("Connection"), rh.DelBytes)
	rh.Del("Connection") // the client's connection has its own
}

// delConnectionNamed calls del with each field name a Connection value c
// lists (not the close and keep-alive options). c is copied first: a
// fasthttp Peek slice moves as fields are deleted.
func delConnectionNamed(c []byte, del func(name []byte)) {
	if len(c) == 0 {
		return
	}
	var buf [128]byte
	c = append(buf[:0], c...)
	for len(c) > 0 {
		i := bytes.IndexByte(c, ',')
		tok := c
		if i >= 0 {
			tok, c = c[:i], c[i+1:]
		} else {
			c = nil
		}
		tok = bytes.TrimSpace(tok)
		if len(tok) > 0 && !bytes.EqualFold(tok, []byte("close")) && !bytes.EqualFold(tok, []byte("keep-alive")) {
			del(tok)
		}
	}
}

// originTrailersH1 handles the trailer fields of an HTTP/1.1 origin's
// answer on the HTTP/1.1 path. Fields already received (an answer read
// whole) stay trailers for an HTTP/1.1 client (the engine sends the answer
// chunked with them, as the origin did) and are dropped for an HTTP/1.0
// client; they never become header fields, which deleting the Trailer
// field alone would make them. An answer still streaming forgets the
// announced names; its fields come with its end.
func originTrailersH1(rh *fasthttp.ResponseHeader, http10 bool) {
	if keys := rh.PeekTrailerKeys(); len(keys) > 0 && len(rh.TrailerHeader()) > 2 {
		if !http10 {
			return
		}
		names := make([]string, len(keys))
		for i, k := range keys {
			names[i] = string(k)
		}
		for _, k := range names {
			rh.Del(k)
		}
	}
	rh.Del("Trailer")
}

// fastTrailers is the part of fasthttp's request and response headers the
// trailer stages write back through.
type fastTrailers interface {
	PeekTrailerKeys() [][]byte
	TrailerHeader() []byte
	Del(key string)
	Add(key, value string)
	AddTrailer(key string) error
}

// runTrailerStages runs stage on the trailer fields already in h (a body
// read to its end) and writes back what the stages changed. It does
// nothing, and costs one length check, when h has no trailer fields.
func runTrailerStages(h fastTrailers, stage func(Headers) Action) Action {
	if len(h.PeekTrailerKeys()) == 0 {
		return Continue
	}
	tb := h.TrailerHeader()
	if len(tb) <= 2 {
		return Continue
	}
	tr := http.Header{}
	parseTrailerSection(tb, tr)
	before := tr.Clone()
	a := stage(stdHeaders{tr})
	for k, vv := range before {
		if nv, ok := tr[k]; !ok || !slices.Equal(nv, vv) {
			h.Del(k)
		}
	}
	for k, vv := range tr {
		ov, ok := before[k]
		if ok && slices.Equal(ov, vv) {
			continue
		}
		h.Del(k)
		if !ok && (!trailerAllowed(k) || h.AddTrailer(k) != nil) {
			continue // a field a stage added is announced, or dropped
		}
		for _, v := range vv {
			h.Add(k, v)
		}
	}
	return a
}

// requestTrailersH1 runs the request-trailer stages on the trailers of a
// chunked request body an HTTP/1.1 client sent to an HTTP/1.1 pool, once
// the body has been read to its end: by the request-body stages' reader,
// or by requestTrailersAtEnd when there are none (forwardH1ToH2 runs them
// for HTTP/2 pools).
func requestTrailersH1(pl *Pipeline, x *Exchange) Action {
	if len(pl.reqTrailers) == 0 || x.Route == nil || x.Route.Pool == nil || x.Route.Pool.HTTP2 {
		return Continue
	}
	rh, ok := x.ReqHeaders.(*h1ReqHeaders)
	if !ok {
		return Continue
	}
	return runTrailerStages(rh.h, func(t Headers) Action { return pl.RequestTrailers(x, t) })
}

// requestTrailerStagesH1 is the pipeline of x when its request-trailer
// stages are to be run by the forwarding of the body to an HTTP/1.1 pool:
// it has some and no request-body stages (whose reader runs them at the
// body's end).
func (s *Server) requestTrailerStagesH1(x *Exchange) *Pipeline {
	pl := s.state.Load().pipelines[x.VHost]
	if pl == nil || len(pl.reqTrailers) == 0 || len(pl.reqBody) > 0 || x.Route.Pool == nil || x.Route.Pool.HTTP2 {
		return nil
	}
	return pl
}

// requestTrailersAtEnd passes a streamed request body through and runs
// the request-trailer stages when it ends; a stage that answers stops it
// (errStoppedByStage).
func requestTrailersAtEnd(r io.Reader, pl *Pipeline, x *Exchange) io.Reader {
	return &trailerHook{rc: io.NopCloser(r), end: func() error {
		if requestTrailersH1(pl, x) == Respond {
			return errStoppedByStage
		}
		return nil
	}}
}

// responseTrailersH1 runs the response-trailer stages on the trailers of
// an HTTP/1.1 origin's answer read whole (a streamed answer's run when it
// ends: h1Tail).
func (s *Server) responseTrailersH1(x *Exchange, rh *fasthttp.ResponseHeader) Action {
	pl := s.state.Load().pipelines[x.VHost]
	if pl == nil || len(pl.respTrailers) == 0 {
		return Continue
	}
	return runTrailerStages(rh, func(t Headers) Action { return pl.ResponseTrailers(x, t) })
}
