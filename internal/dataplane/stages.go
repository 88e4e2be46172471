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

// Flush writes buffered lines out.
func (a *AccessLogWriter) Flush() {
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
	return &accessLogStage{fields: f, w: env.AccessLog, lb: vh.Name, ns: vh.Namespace}
}

func (s *accessLogStage) Name() string { return "accesslog" }

func (s *accessLogStage) OnDone(x *Exchange) {
	bp := logBufPool.Get().(*[]byte)
	b := (*bp)[:0]
	b = append(b, '{')
	for i, f := range s.fields {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, f...)
		b = append(b, '"', ':')
		switch f {
		case "time":
			b = append(b, '"')
			b = x.Start.UTC().AppendFormat(b, time.RFC3339Nano)
			b = append(b, '"')
		case "loadBalancer":
			b = appendJSONString(b, s.lb)
		case "namespace":
			b = appendJSONString(b, s.ns)
		case "route":
			if x.Route != nil {
				b = appendJSONString(b, x.Route.Name)
			} else {
				b = append(b, "null"...)
			}
		case "pool":
			if x.Route != nil && x.Route.Pool != nil {
				b = appendJSONString(b, x.Route.Pool.Name)
			} else {
				b = append(b, "null"...)
			}
		case "endpoint":
			b = appendJSONString(b, x.Endpoint)
		case "client":
			b = append(b, '"')
			b = x.Client.AppendTo(b)
			b = append(b, '"')
		case "method":
			b = appendJSONBytes(b, x.Method)
		case "host":
			b = appendJSONBytes(b, x.Host)
		case "path":
			b = appendJSONBytes(b, x.Path)
		case "query":
			b = appendJSONBytes(b, x.RawQuery)
		case "protocol":
			b = appendJSONString(b, x.Proto)
		case "status":
			b = strconv.AppendInt(b, int64(x.Status), 10)
		case "bytesIn":
			b = strconv.AppendInt(b, x.BytesIn, 10)
		case "bytesOut":
			b = strconv.AppendInt(b, x.BytesOut, 10)
		case "duration":
			b = strconv.AppendFloat(b, time.Since(x.Start).Seconds(), 'f', 6, 64)
		case "upstreamDuration":
			b = strconv.AppendFloat(b, x.UpstreamTime.Seconds(), 'f', 6, 64)
		case "requestId":
			b = appendJSONBytes(b, x.RequestID)
		case "userAgent":
			v, _ := x.ReqHeaders.Peek("User-Agent")
			b = appendJSONBytes(b, v)
		case "referer":
			v, _ := x.ReqHeaders.Peek("Referer")
			b = appendJSONBytes(b, v)
		case "tls":
			b = strconv.AppendBool(b, x.Scheme == "https")
		case "retries":
			b = strconv.AppendInt(b, int64(x.Retries), 10)
		default:
			b = append(b, "null"...)
		}
	}
	b = append(b, '}', '\n')
	_, _ = s.w.Write(b)
	*bp = b
	logBufPool.Put(bp)
}

func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		b = appendJSONByte(b, s[i])
	}
	return append(b, '"')
}

func appendJSONBytes(b []byte, s []byte) []byte {
	b = append(b, '"')
	for _, c := range s {
		b = appendJSONByte(b, c)
	}
	return append(b, '"')
}

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
