package dataplane

import (
	"bytes"
	"net/http"
	"strconv"
	"time"
)

// LoopStage is implemented by a stage that the event-loop engine may run
// on its loops for the requests without a body (a request with a body, and
// every request of a load balancer with a stage that is not a LoopStage or
// says false, goes to the goroutine engine). On the loop the stage gets
// OnRequestHeaders with Exchange.OnLoop set, then OnDone right after the
// request-head callbacks; no body, trailer or response callback comes. So
// a stage says true only when, as built:
//   - it decides everything in OnRequestHeaders and OnDone (it needs
//     neither the request body nor the response, or does with OnLoop set
//     what it would have done with them);
//   - it changes no request header (Exchange.ReqHeaders is read-only on
//     the loop: a change panics); on a TLS listener Exchange.TLS is the
//     connection's state as the goroutine engine gives it (server name,
//     ALPN, the client's certificates as the handshake verified them);
//   - it never blocks: a loop serves many connections.
type LoopStage interface {
	Stage
	LoopServable() bool
}

// stageValue is one stage's per-exchange value.
type stageValue struct{ key, val any }

// StageValue returns the value a stage keeps for this exchange under key
// (by convention the stage itself; see SetStageValue), nil when none.
func (x *Exchange) StageValue(key any) any {
	for i := range x.vals {
		if x.vals[i].key == key {
			return x.vals[i].val
		}
	}
	if x.more != nil {
		return x.more[key]
	}
	return nil
}

// SetStageValue keeps v for this exchange under key (a comparable value,
// by convention the stage's own pointer) until the exchange ends: a stage
// carries its state from one callback to the next without a map shared by
// all exchanges. A few values (a pointer each) cost no allocation; nil v
// removes the value.
func (x *Exchange) SetStageValue(key, v any) {
	free := -1
	for i := range x.vals {
		switch x.vals[i].key {
		case key:
			if v == nil {
				x.vals[i] = stageValue{}
			} else {
				x.vals[i].val = v
			}
			return
		case nil:
			if free < 0 {
				free = i
			}
		}
	}
	if x.more != nil {
		if _, ok := x.more[key]; ok || v == nil {
			if v == nil {
				delete(x.more, key)
			} else {
				x.more[key] = v
			}
			return
		}
	}
	if v == nil {
		return
	}
	if free >= 0 {
		x.vals[free] = stageValue{key, v}
		return
	}
	if x.more == nil {
		x.more = map[any]any{}
	}
	x.more[key] = v
}

// rawHeaderView is the read-only Headers of a request head as received (an
// HTTP/1.1 header block: field lines ending in CRLF), for the exchanges the
// event loops run stages on.
type rawHeaderView struct{ b []byte }

// Peek returns the first value of the named field (ASCII
// case-insensitive), trimmed of blanks.
func (h *rawHeaderView) Peek(name string) ([]byte, bool) {
	b := h.b
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		c := bytes.IndexByte(line, ':')
		if c != len(name) || !equalFoldASCII(line[:c], name) {
			continue
		}
		return bytes.Trim(bytes.TrimSuffix(line[c+1:], []byte("\r")), " \t"), true
	}
	return nil, false
}

// VisitAll calls f for each field, in order.
func (h *rawHeaderView) VisitAll(f func(name, value []byte)) {
	visitRawBlock(h.b, f)
}

func (h *rawHeaderView) Set(string, string)      { panic(errLoopHeaders) }
func (h *rawHeaderView) SetBytes(string, []byte) { panic(errLoopHeaders) }
func (h *rawHeaderView) Add(string, string)      { panic(errLoopHeaders) }
func (h *rawHeaderView) Del(string)              { panic(errLoopHeaders) }
func equalFoldASCII(b []byte, s string) bool     { return len(b) == len(s) && bytesEqualFold(b, s) }
func bytesEqualFold(b []byte, s string) bool {
	for i := 0; i < len(s); i++ {
		c, d := b[i], s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if 'A' <= d && d <= 'Z' {
			d += 'a' - 'A'
		}
		if c != d {
			return false
		}
	}
	return true
}

type loopHeadersError struct{}

func (loopHeadersError) Error() string {
	return "dataplane: a stage changed a request header on an event loop (it must not say LoopServable)"
}

var errLoopHeaders error = loopHeadersError{}

// queryView finds decoded query arguments in a raw query string, as the
// goroutine engine's (the first argument of that name, '+' and
// percent-escapes decoded); the values it returns stay valid for the
// exchange.
type queryView struct {
	raw []byte
	buf []byte
}

func (q *queryView) lookup(name string) ([]byte, bool) {
	s := q.raw
	for len(s) > 0 {
		arg := s
		if i := bytes.IndexByte(s, '&'); i >= 0 {
			arg, s = s[:i], s[i+1:]
		} else {
			s = nil
		}
		if len(arg) == 0 {
			continue
		}
		k, v := arg, []byte(nil)
		if i := bytes.IndexByte(arg, '='); i >= 0 {
			k, v = arg[:i], arg[i+1:]
		}
		at := len(q.buf)
		q.buf = appendUnescaped(q.buf, k)
		if string(q.buf[at:]) != name {
			q.buf = q.buf[:at]
			continue
		}
		q.buf = q.buf[:at]
		q.buf = appendUnescaped(q.buf, v)
		return q.buf[at:len(q.buf):len(q.buf)], true
	}
	return nil, false
}

// appendUnescaped appends s with '+' as a space and %XX decoded (a '%'
// not followed by two hex digits stays as it is).
func appendUnescaped(b, s []byte) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '+':
			c = ' '
		case c == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]):
			c = unhex(s[i+1])<<4 | unhex(s[i+2])
			i += 2
		}
		b = append(b, c)
	}
	return b
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

// appendReply appends the HTTP/1.1 response a stage's Reply makes, as the
// goroutine engine writes it (writeReplyH1): the reply's fields, its
// content type (text/plain when it has a body and names none), the
// body's length, and the body unless the request was HEAD.
func appendReply(b []byte, r *Reply, head, closing bool) []byte {
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(r.Status), 10)
	b = append(b, ' ')
	b = append(b, http.StatusText(r.Status)...)
	for _, h := range r.Headers {
		b = append(b, "\r\n"...)
		b = append(b, h.Name...)
		b = append(b, ": "...)
		b = append(b, h.Value...)
	}
	b = append(b, "\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(r.Body)), 10)
	switch {
	case r.ContentType != "":
		b = append(b, "\r\nContent-Type: "...)
		b = append(b, r.ContentType...)
	case len(r.Body) > 0:
		b = append(b, "\r\nContent-Type: text/plain; charset=utf-8"...)
	}
	b = append(b, "\r\nDate: "...)
	b = time.Now().UTC().AppendFormat(b, http.TimeFormat)
	if closing {
		b = append(b, "\r\nConnection: close"...)
	}
	b = append(b, "\r\n\r\n"...)
	if !head {
		b = append(b, r.Body...)
	}
	return b
}
