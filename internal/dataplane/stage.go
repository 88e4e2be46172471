package dataplane

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"net/netip"
	"time"

	"github.com/meridian-platform/meridian/internal/dataplane/config"
)

// Action is what a filter callback tells the pipeline.
type Action uint8

const (
	// Continue passes the exchange to the next filter.
	Continue Action = iota
	// Respond stops the request and answers with Exchange.Reply.
	Respond
)

// Headers is the header view filters see. Values returned by Peek are lent:
// valid only during the callback.
type Headers interface {
	Peek(name string) ([]byte, bool)
	Set(name, value string)
	SetBytes(name string, value []byte)
	Add(name, value string)
	Del(name string)
	VisitAll(f func(name, value []byte))
}

// Reply is the answer a filter gives when it stops a request.
type Reply struct {
	Status      int
	ContentType string
	Body        []byte
	Headers     []HeaderKV
}

// Exchange is Meridian's own view of one request and its response, fed by
// both the HTTP/1.1 and the HTTP/2 engines. Byte slices are lent and valid
// only during a callback; a filter that keeps anything copies it.
type Exchange struct {
	Method []byte
	// Path is normalized and decoded, without the query.
	Path []byte
	// RawQuery is the query string without "?".
	RawQuery []byte
	// Host is the Host header or :authority.
	Host   []byte
	Scheme string // "http" or "https"
	// Proto is the protocol the client spoke: "HTTP/1.0", "HTTP/1.1" or
	// "HTTP/2.0".
	Proto string
	// RawTarget is the request target exactly as received (the HTTP/1.1
	// request line's target, the HTTP/2 :path), before any decoding or
	// normalisation; Path and RawQuery are the normalised forms.
	RawTarget []byte
	// RawHeaders is the HTTP/1.1 header block exactly as received: the
	// field lines with their CRLFs, names in the client's case and order
	// (see VisitRawHeaders). It is nil for HTTP/2, whose fields reach
	// Meridian only as a map.
	RawHeaders []byte
	// BodyFollows says the client announced a request body: a
	// Content-Length other than 0 or a chunked coding on HTTP/1.x, a
	// stream left open after its HEADERS frame on HTTP/2 (where a body
	// needs no content-length).
	BodyFollows bool
	// TLS is the state of the client's TLS connection, nil on plaintext;
	// see SNI and PeerCertificates. It must not be changed.
	TLS *tls.ConnectionState
	// Peer is the address of the TCP peer (after PROXY protocol); Client
	// is the real client address after trusted X-Forwarded-For.
	Peer   netip.AddrPort
	Client netip.Addr
	// TrustedPeer says Peer is one of the load balancer's trusted proxies.
	TrustedPeer bool
	RequestID   []byte

	ReqHeaders  Headers
	RespHeaders Headers
	// Status is the response status once known.
	Status int

	Listener *config.HTTPListener
	VHost    *config.VHost
	Route    *config.Route
	// Endpoint is the address of the origin that answered.
	Endpoint string
	Retries  int
	BytesIn  int64
	BytesOut int64
	Start    time.Time
	// UpstreamTime is the time spent waiting for origins.
	UpstreamTime time.Duration

	Reply Reply
	// Aborted says the answer was cut after its head had been sent: a
	// response-trailer stage answered (Respond) when it was too late to
	// answer (see ResponseTrailersFilter). Status is the status that was
	// sent.
	Aborted bool
	// grpcStatus is the gRPC status of a gRPC call's answer plus one (0:
	// none, not a gRPC call); see GRPCStatus.
	grpcStatus int32

	// OnLoop says an event loop serves the exchange (see LoopStage): the
	// request has no body, no body or response callback comes, and the
	// completion hooks run right after the request-head callbacks (Status
	// is then the stage's reply status, or 0 when the request goes on to
	// the origin).
	OnLoop bool

	query func(name string) ([]byte, bool)
	idBuf [32]byte
	// vals are the stages' per-exchange values (StageValue), more the
	// ones past len(vals).
	vals [4]stageValue
	more map[any]any
}

// GRPCStatus is the gRPC status the client of a gRPC call got: the
// grpc-status of the answer's trailers (or of the head of a Trailers-Only
// answer) once the response-trailer stages have seen it, or the one the
// proxy sent itself (14, UNAVAILABLE, when the origin could not be
// reached or its stream broke). ok is false for an exchange that is not a
// gRPC call, for a call reset before its status was sent (Aborted), and
// while the status is not known yet (before the completion hooks).
func (x *Exchange) GRPCStatus() (code int, ok bool) {
	return int(x.grpcStatus) - 1, x.grpcStatus != 0
}

// SNI is the server name the client sent in its TLS hello ("" on
// plaintext or when the client sent none).
func (x *Exchange) SNI() string {
	if x.TLS == nil {
		return ""
	}
	return x.TLS.ServerName
}

// PeerCertificates is the certificate chain the client presented (leaf
// first), nil on plaintext or when none was asked for or sent. The chain
// is verified only when the listener requires verified client certificates.
func (x *Exchange) PeerCertificates() []*x509.Certificate {
	if x.TLS == nil {
		return nil
	}
	return x.TLS.PeerCertificates
}

// VisitRawHeaders calls f for each request header field in the order and
// name case the client sent (HTTP/1.1), with the value trimmed of the
// surrounding whitespace. Over HTTP/2 it falls back to ReqHeaders, whose
// names are canonicalised and whose order is not the wire order. f must
// not keep the slices.
func (x *Exchange) VisitRawHeaders(f func(name, value []byte)) {
	if x.RawHeaders == nil {
		if x.ReqHeaders != nil {
			x.ReqHeaders.VisitAll(f)
		}
		return
	}
	visitRawBlock(x.RawHeaders, f)
}

// visitRawBlock calls f for each field line of a raw header block (see
// Exchange.VisitRawHeaders).
func visitRawBlock(b []byte, f func(name, value []byte)) {
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		line := b
		if i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 {
			break // end of the head
		}
		c := bytes.IndexByte(line, ':')
		if c <= 0 {
			continue
		}
		f(line[:c], bytes.Trim(line[c+1:], " \t"))
	}
}

// reset clears the exchange for reuse.
func (x *Exchange) reset() {
	*x = Exchange{}
}

// Header implements config.Request.
func (x *Exchange) Header(name string) ([]byte, bool) { return x.ReqHeaders.Peek(name) }

// Query implements config.Request.
func (x *Exchange) Query(name string) ([]byte, bool) {
	if x.query == nil {
		return nil, false
	}
	return x.query(name)
}

// methodOf and pathOf let *Exchange satisfy config.Request via a wrapper
// without a name clash with the exported fields.
type routeView struct{ x *Exchange }

func (r routeView) Method() []byte                 { return r.x.Method }
func (r routeView) Path() []byte                   { return r.x.Path }
func (r routeView) Header(n string) ([]byte, bool) { return r.x.ReqHeaders.Peek(n) }
func (r routeView) Query(n string) ([]byte, bool)  { return r.x.Query(n) }
func (x *Exchange) routeRequest() config.Request   { return routeView{x} }
func (x *Exchange) respond(status int, body string) {
	x.Reply = Reply{Status: status, Body: []byte(body)}
}
func (x *Exchange) respondBytes(status int, b []byte) { x.Reply = Reply{Status: status, Body: b} }

// Stage is a named filter. It implements any of the callback interfaces
// below; the pipeline calls only those it implements.
type Stage interface {
	Name() string
}

// RequestHeadersFilter sees the request head before it is forwarded.
type RequestHeadersFilter interface {
	OnRequestHeaders(x *Exchange) Action
}

// RequestBodyFilter sees the request body. BufferRequestBody returns how
// many bytes it wants buffered before its first call (0: 32 KiB). On both
// HTTP/1.1 and HTTP/2 the body is read that far before the origin sees any
// of it: a body of at most that many bytes comes whole in one call with
// end true; a longer one comes first as one byte more than that with end
// false (so a stage sees the body is over its limit and can refuse it,
// 413, before anything is forwarded; the WAF's reject limit does), then in
// chunks as it streams to the origin. When several
// stages ask, the largest limit is read. gRPC bodies are not read ahead:
// their chunks come as they pass.
type RequestBodyFilter interface {
	OnRequestBody(x *Exchange, chunk []byte, end bool) Action
	BufferRequestBody() int
}

// RequestTrailersFilter sees request trailers.
type RequestTrailersFilter interface {
	OnRequestTrailers(x *Exchange, trailers Headers) Action
}

// ResponseHeadersFilter sees the response head before it is sent.
type ResponseHeadersFilter interface {
	OnResponseHeaders(x *Exchange) Action
}

// ResponseBodyFilter sees the response body.
type ResponseBodyFilter interface {
	OnResponseBody(x *Exchange, chunk []byte, end bool) Action
	BufferResponseBody() int
}

// ResponseTrailersFilter sees response trailers: the fields the origin
// sent after the answer's body (gRPC's grpc-status among them; a gRPC
// "Trailers-Only" answer's status fields too), on every client and origin
// protocol, also when the client gets none (an HTTP/1.0 client, an
// HTTP/1.1 client of an answer of known length that did not send
// "TE: trailers"). Changes to trailers reach the clients that get them.
// The callbacks run when the answer's body has ended, which for an answer
// that streams is after its head was sent, and always before the
// exchange's completion (DoneHook, metrics, access log), which sees what
// they saw and did.
//
// A callback may answer (Respond, with Exchange.Reply) only while the
// head has not been sent, for an answer read whole before it is forwarded
// to an HTTP/1.x client (an HTTP/1.1 origin's buffered answer, one the
// response-body stages read whole, a short one of unknown length to an
// HTTP/1.0 client, a bodiless one from an HTTP/2 origin): the reply
// replaces it. Once the head has been sent it is too late. As Envoy does
// with a filter's local reply after the response headers went out, the
// exchange is then aborted: an HTTP/2 (and gRPC) client's stream is reset
// (RST_STREAM), an HTTP/1.1 client's connection is closed before the
// answer's end (it never gets the last chunk nor the trailers), an
// HTTP/1.0 client's connection, which a close would end the answer on, is
// reset, and
// Exchange.Aborted is set for the completion hooks, with Status the
// status that was sent. The remaining trailer callbacks do not run.
type ResponseTrailersFilter interface {
	OnResponseTrailers(x *Exchange, trailers Headers) Action
}

// DoneHook runs once the response was sent, or aborted (access log,
// metrics, events), after every other callback of the exchange.
type DoneHook interface {
	OnDone(x *Exchange)
}

// Pipeline is the ordered stages built for one virtual host.
type Pipeline struct {
	Names        []string
	reqHeaders   []RequestHeadersFilter
	reqBody      []RequestBodyFilter
	reqTrailers  []RequestTrailersFilter
	respHeaders  []ResponseHeadersFilter
	respBody     []ResponseBodyFilter
	respTrailers []ResponseTrailersFilter
	done         []DoneHook
	// BufferRequest / BufferResponse are the largest buffering asked for.
	BufferRequest, BufferResponse int
	// evServable is set when the event-loop engine may serve the
	// pipeline: it has no stage but the built-in request id, header
	// changes and access log (which the loop does itself) and stages
	// that declare themselves loop-servable (LoopStage), whose
	// request-head callbacks and completion hooks are evReq and evDone;
	// accessLog is the access-log stage, if any.
	evServable bool
	evReq      []RequestHeadersFilter
	evDone     []DoneHook
	accessLog  *accessLogStage
}

func newPipeline(stages []Stage) *Pipeline {
	p := &Pipeline{}
	for _, s := range stages {
		p.Names = append(p.Names, s.Name())
		if f, ok := s.(RequestHeadersFilter); ok {
			p.reqHeaders = append(p.reqHeaders, f)
		}
		if f, ok := s.(RequestBodyFilter); ok {
			p.reqBody = append(p.reqBody, f)
			p.BufferRequest = max(p.BufferRequest, f.BufferRequestBody())
		}
		if f, ok := s.(RequestTrailersFilter); ok {
			p.reqTrailers = append(p.reqTrailers, f)
		}
		if f, ok := s.(ResponseHeadersFilter); ok {
			p.respHeaders = append(p.respHeaders, f)
		}
		if f, ok := s.(ResponseBodyFilter); ok {
			p.respBody = append(p.respBody, f)
			p.BufferResponse = max(p.BufferResponse, f.BufferResponseBody())
		}
		if f, ok := s.(ResponseTrailersFilter); ok {
			p.respTrailers = append(p.respTrailers, f)
		}
		if f, ok := s.(DoneHook); ok {
			p.done = append(p.done, f)
		}
	}
	// Response callbacks run in reverse order (the first stage to see the
	// request is the last to see the response).
	reverse(p.respHeaders)
	reverse(p.respBody)
	reverse(p.respTrailers)
	return p
}

func reverse[T any](s []T) {
	for i, j := 0, len(s)-1; i < j; i, j = i+1, j-1 {
		s[i], s[j] = s[j], s[i]
	}
}

// WantsRequestBody reports whether any stage looks at request bodies.
func (p *Pipeline) WantsRequestBody() bool { return len(p.reqBody) > 0 }

// WantsResponseBody reports whether any stage looks at response bodies.
func (p *Pipeline) WantsResponseBody() bool { return len(p.respBody) > 0 }

// RequestHeaders runs the request-head callbacks.
func (p *Pipeline) RequestHeaders(x *Exchange) Action {
	for _, f := range p.reqHeaders {
		if f.OnRequestHeaders(x) == Respond {
			return Respond
		}
	}
	return Continue
}

// RequestBody runs the request-body callbacks on one chunk.
func (p *Pipeline) RequestBody(x *Exchange, chunk []byte, end bool) Action {
	for _, f := range p.reqBody {
		if f.OnRequestBody(x, chunk, end) == Respond {
			return Respond
		}
	}
	return Continue
}

// RequestTrailers runs the request-trailer callbacks.
func (p *Pipeline) RequestTrailers(x *Exchange, t Headers) Action {
	for _, f := range p.reqTrailers {
		if f.OnRequestTrailers(x, t) == Respond {
			return Respond
		}
	}
	return Continue
}

// ResponseHeaders runs the response-head callbacks.
func (p *Pipeline) ResponseHeaders(x *Exchange) Action {
	for _, f := range p.respHeaders {
		if f.OnResponseHeaders(x) == Respond {
			return Respond
		}
	}
	return Continue
}

// ResponseBody runs the response-body callbacks on one chunk.
func (p *Pipeline) ResponseBody(x *Exchange, chunk []byte, end bool) Action {
	for _, f := range p.respBody {
		if f.OnResponseBody(x, chunk, end) == Respond {
			return Respond
		}
	}
	return Continue
}

// ResponseTrailers runs the response-trailer callbacks.
func (p *Pipeline) ResponseTrailers(x *Exchange, t Headers) Action {
	for _, f := range p.respTrailers {
		if f.OnResponseTrailers(x, t) == Respond {
			return Respond
		}
	}
	return Continue
}

// Done runs the completion hooks.
func (p *Pipeline) Done(x *Exchange) {
	for _, f := range p.done {
		f.OnDone(x)
	}
}
