package dataplane

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"io"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/internal/dataplane/config"
)

// HeaderKV is one header.
type HeaderKV struct{ Name, Value string }

// ---- request id ----

// requestIDStage sets X-Request-Id: kept from a trusted proxy, otherwise
// generated (a per-process random prefix and a counter, no allocation).
type requestIDStage struct {
	prefix [16]byte
	n      *atomic.Uint64
}

const requestIDHeader = "X-Request-Id"

var requestIDCounter atomic.Uint64

func newRequestIDStage(*config.VHost, *StageEnv) Stage {
	s := &requestIDStage{n: &requestIDCounter}
	var r [8]byte
	_, _ = rand.Read(r[:])
	hex.Encode(s.prefix[:], r[:])
	return s
}

func (s *requestIDStage) Name() string { return "requestid" }

func (s *requestIDStage) OnRequestHeaders(x *Exchange) Action {
	if x.TrustedPeer {
		if v, ok := x.ReqHeaders.Peek(requestIDHeader); ok && len(v) > 0 && len(v) <= len(x.idBuf) {
			n := copy(x.idBuf[:], v)
			x.RequestID = x.idBuf[:n]
			return Continue
		}
	}
	s.fill(&x.idBuf)
	x.RequestID = x.idBuf[:]
	x.ReqHeaders.SetBytes(requestIDHeader, x.RequestID)
	return Continue
}

// fill writes a new id: the prefix and the next counter value in hex.
func (s *requestIDStage) fill(b *[32]byte) {
	copy(b[:16], s.prefix[:])
	v := s.n.Add(1)
	const digits = "0123456789abcdef"
	for i := 31; i >= 16; i-- {
		b[i] = digits[v&0xf]
		v >>= 4
	}
}

// appendID appends a new id to b.
func (s *requestIDStage) appendID(b []byte) []byte {
	var id [32]byte
	s.fill(&id)
	return append(b, id[:]...)
}

// ---- CORS ----

type corsStage struct{}

func newCORSStage(vh *config.VHost, _ *StageEnv) Stage {
	for _, r := range vh.Routes {
		if r.CORS != nil {
			return corsStage{}
		}
	}
	return nil
}

func (corsStage) Name() string { return "cors" }

func corsAllowed(c *v1.CORSPolicy, origin []byte) (string, bool) {
	for _, o := range c.AllowOrigins {
		if o == "*" {
			return "*", true
		}
		if o == string(origin) {
			return o, true
		}
	}
	return "", false
}

func (corsStage) OnRequestHeaders(x *Exchange) Action {
	c := x.Route.CORS
	if c == nil {
		return Continue
	}
	origin, ok := x.ReqHeaders.Peek("Origin")
	if !ok || string(x.Method) != "OPTIONS" {
		return Continue
	}
	if _, pre := x.ReqHeaders.Peek("Access-Control-Request-Method"); !pre {
		return Continue
	}
	allow, ok := corsAllowed(c, origin)
	if !ok {
		x.Reply = Reply{Status: 403, Body: []byte("CORS origin not allowed\n"), ContentType: "text/plain; charset=utf-8"}
		return Respond
	}
	h := []HeaderKV{
		{"Access-Control-Allow-Origin", allow},
		{"Access-Control-Allow-Methods", strings.Join(c.AllowMethods, ", ")},
		{"Vary", "Origin"},
	}
	if len(c.AllowHeaders) > 0 {
		h = append(h, HeaderKV{"Access-Control-Allow-Headers", strings.Join(c.AllowHeaders, ", ")})
	} else if rh, ok := x.ReqHeaders.Peek("Access-Control-Request-Headers"); ok {
		h = append(h, HeaderKV{"Access-Control-Allow-Headers", string(rh)})
	}
	if c.MaxAge.Duration > 0 {
		h = append(h, HeaderKV{"Access-Control-Max-Age", strconv.Itoa(int(c.MaxAge.Seconds()))})
	}
	if c.AllowCredentials {
		h = append(h, HeaderKV{"Access-Control-Allow-Credentials", "true"})
	}
	x.Reply = Reply{Status: 204, Headers: h}
	return Respond
}

func (corsStage) OnResponseHeaders(x *Exchange) Action {
	c := x.Route.CORS
	if c == nil {
		return Continue
	}
	origin, ok := x.ReqHeaders.Peek("Origin")
	if !ok {
		return Continue
	}
	allow, ok := corsAllowed(c, origin)
	if !ok {
		return Continue
	}
	x.RespHeaders.Set("Access-Control-Allow-Origin", allow)
	x.RespHeaders.Add("Vary", "Origin")
	if c.AllowCredentials {
		x.RespHeaders.Set("Access-Control-Allow-Credentials", "true")
	}
	if len(c.ExposeHeaders) > 0 {
		x.RespHeaders.Set("Access-Control-Expose-Headers", strings.Join(c.ExposeHeaders, ", "))
	}
	return Continue
}

// ---- header rewrites ----

type headersStage struct{}

func newHeadersStage(vh *config.VHost, _ *StageEnv) Stage {
	for _, r := range vh.Routes {
		if r.RequestHeaders != nil || r.ResponseHeaders != nil {
			return headersStage{}
		}
	}
	return nil
}

func (headersStage) Name() string { return "headers" }

func applyHeaderMods(h Headers, m *v1.HTTPHeaderModifier) {
	if m == nil {
		return
	}
	for _, n := range m.Remove {
		h.Del(n)
	}
	for _, kv := range m.Set {
		h.Set(kv.Name, kv.Value)
	}
	for _, kv := range m.Add {
		h.Add(kv.Name, kv.Value)
	}
}

func (headersStage) OnRequestHeaders(x *Exchange) Action {
	applyHeaderMods(x.ReqHeaders, x.Route.RequestHeaders)
	return Continue
}

func (headersStage) OnResponseHeaders(x *Exchange) Action {
	applyHeaderMods(x.RespHeaders, x.Route.ResponseHeaders)
	return Continue
}

// ---- access log ----

// AccessLogWriter writes JSON lines, buffered and flushed at least every
// 100 ms.
type AccessLogWriter struct {
	mu   sync.Mutex
	w    *bufio.Writer
	stop chan struct{}
	done chan struct{}
	// subs are buffers of lines written elsewhere (the event loops'),
	// flushed into this writer with it.
	subMu sync.Mutex
	subs  map[lineBuffer]struct{}
}

// NewAccessLogWriter starts a writer; Close flushes and stops it.
func NewAccessLogWriter(w io.Writer) *AccessLogWriter {
	a := &AccessLogWriter{w: bufio.NewWriterSize(w, 64<<10), stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(a.done)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-a.stop:
				return
			case <-t.C:
				a.Flush()
			}
		}
	}()
	return a
}

// Write writes one line.
func (a *AccessLogWriter) Write(b []byte) (int, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.w.Write(b)
}

// Flush writes buffered lines out, those of the attached buffers first.
func (a *AccessLogWriter) Flush() {
	a.flushSubs()
	a.mu.Lock()
	_ = a.w.Flush()
	a.mu.Unlock()
}

// Close flushes and stops the writer.
func (a *AccessLogWriter) Close() {
	select {
	case <-a.stop:
	default:
		close(a.stop)
		<-a.done
	}
	a.Flush()
}

type accessLogStage struct {
	fields []string
	w      *AccessLogWriter
	lb, ns string
	// userAgent and referer say the fields include those headers.
	userAgent, referer bool
}

var logBufPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

func newAccessLogStage(vh *config.VHost, env *StageEnv) Stage {
	if vh.AccessLog == nil || !vh.AccessLog.Enabled || env == nil || env.AccessLog == nil {
		return nil
	}
	f := vh.AccessLog.Fields
	if len(f) == 0 {
		f = v1.AccessLogDefaultFields
	}
	s := &accessLogStage{fields: f, w: env.AccessLog, lb: vh.Name, ns: vh.Namespace}
	for _, name := range f {
		s.userAgent = s.userAgent || name == "userAgent"
		s.referer = s.referer || name == "referer"
	}
	return s
}

func (s *accessLogStage) Name() string { return "accesslog" }

func (s *accessLogStage) OnDone(x *Exchange) {
	var ep [64]byte
	v := logValues{start: x.Start, route: x.Route, endpoint: append(ep[:0], x.Endpoint...), client: x.Client,
		method: x.Method, host: x.Host, path: x.Path, query: x.RawQuery, proto: x.Proto, status: x.Status,
		bytesIn: x.BytesIn, bytesOut: x.BytesOut, duration: time.Since(x.Start), upstream: x.UpstreamTime,
		requestID: x.RequestID, tls: x.Scheme == "https", retries: x.Retries, grpcStatus: x.grpcStatus}
	if s.userAgent {
		v.userAgent, _ = x.ReqHeaders.Peek("User-Agent")
	}
	if s.referer {
		v.referer, _ = x.ReqHeaders.Peek("Referer")
	}
	bp := logBufPool.Get().(*[]byte)
	b := s.appendLine((*bp)[:0], &v)
	_, _ = s.w.Write(b)
	*bp = b
	logBufPool.Put(bp)
}

func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	for len(s) > 0 {
		i := 0
		for i < len(s) && jsonPlain[s[i]] {
			i++
		}
		b = append(b, s[:i]...)
		if i == len(s) {
			break
		}
		b = appendJSONByte(b, s[i])
		s = s[i+1:]
	}
	return append(b, '"')
}

func appendJSONBytes(b []byte, s []byte) []byte {
	b = append(b, '"')
	for len(s) > 0 {
		i := 0
		for i < len(s) && jsonPlain[s[i]] {
			i++
		}
		b = append(b, s[:i]...)
		if i == len(s) {
			break
		}
		b = appendJSONByte(b, s[i])
		s = s[i+1:]
	}
	return append(b, '"')
}

// jsonPlain marks the bytes a JSON string carries as they are (printable
// ASCII but the quote and the backslash): runs of them are copied at once.
var jsonPlain = func() (t [256]bool) {
	for c := 0x20; c < 0x7f; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func appendJSONByte(b []byte, c byte) []byte {
	const hexd = "0123456789abcdef"
	switch {
	case c == '"' || c == '\\':
		return append(b, '\\', c)
	case c < 0x20 || c >= 0x7f:
		// Escape control bytes and non-ASCII bytes so that the line is
		// valid JSON whatever the client sent.
		return append(b, '\\', 'u', '0', '0', hexd[c>>4], hexd[c&0xf])
	}
	return append(b, c)
}
