package h1

import (
	"bytes"
	"errors"
)

// ErrBareLF is returned by HeadGuard.Scan when a request head has a line
// ending in LF without CR before it.
var ErrBareLF = errors.New("bare LF in request head")

// HeadGuard follows the bytes read from a client connection and finds
// request heads whose start line or field lines end in a bare LF.
//
// Meridian rejects such heads (RFC 9112 2.2 lets a recipient accept LF
// alone; an intermediary that does is one way for the proxy and an origin
// to see different message boundaries, so Meridian takes the strict side,
// as it does for bare CR). The HTTP/1.1 engine waits for a CRLFCRLF
// terminator, so a head ending in LF LF would otherwise wait for the
// header timeout; the guard lets the connection answer 400 at once.
//
// The guard follows message framing as far as it is cheap and exact:
// heads, bodies framed by Content-Length, and chunked bodies (chunk sizes,
// data, trailers). After a head with an Upgrade, another transfer coding
// or anything else it cannot follow, it stops looking at the connection
// (it reports nothing further; the engine's own checks still apply).
//
// The zero value is ready to use. A guard is not safe for concurrent use.
type HeadGuard struct {
	phase    uint8
	prevCR   bool
	started  bool // a non-empty line of the current head was seen
	lineLen  int
	carry    [40]byte
	bodyLeft int64
	cl       int64
	framed   bool // a head the guard cannot follow past (Upgrade, ...)
	chunked  bool // Transfer-Encoding: chunked in the current head
	ch       Chunked
	// heads counts the heads that ended; Bad is the 1-based number of the
	// head that had a bare LF (0: none yet).
	heads int
	Bad   int
	// BadAt is, after Scan returned ErrBadChunked, the offset in the bytes
	// of that call where the chunked body broke: the bytes before it are
	// the body's, the engine must not see the rest.
	BadAt int
}

const (
	phaseHead uint8 = iota
	phaseBody
	phaseChunked
	phaseOff
)

// AtBoundary reports whether the bytes scanned end where a request ends
// (or before the first): not inside a head or a body.
func (g *HeadGuard) AtBoundary() bool {
	return g.phase == phaseHead && !g.started && g.lineLen == 0 && !g.prevCR
}

// InRequestLine reports whether the bytes scanned end inside a request
// line: a head has begun (or is due) and none of its lines has ended.
func (g *HeadGuard) InRequestLine() bool { return g.phase == phaseHead && !g.started }

// Scan looks at the next bytes read from the connection. It returns
// ErrBareLF once, for the bytes where the bare LF is, or ErrBadChunked
// once, for the bytes where a chunked body breaks RFC 9112 7.1 (see
// Chunked and BadAt); later calls return nil and look no further.
//
// The goroutine engine's HTTP library is lenient with chunked bodies
// (whitespace after the chunk size, any bytes in extensions, trailer lines
// it does not check, a trailer section ending in a bare LF it waits on
// forever): the guard holds both engines to the same framing.
func (g *HeadGuard) Scan(p []byte) error {
	all := len(p)
	for len(p) > 0 {
		switch g.phase {
		case phaseOff:
			return nil
		case phaseChunked:
			n, done, err := g.ch.Feed(p)
			if err != nil {
				g.phase = phaseOff
				g.BadAt = all - len(p) + n
				return err
			}
			p = p[n:]
			if done {
				g.phase, g.ch = phaseHead, Chunked{}
			}
			continue
		case phaseBody:
			n := int64(len(p))
			if n > g.bodyLeft {
				n = g.bodyLeft
			}
			g.bodyLeft -= n
			p = p[n:]
			if g.bodyLeft == 0 {
				g.phase = phaseHead
			}
			continue
		}
		j := bytes.IndexByte(p, '\n')
		if j < 0 {
			g.take(p)
			return nil
		}
		seg := p[:j]
		p = p[j+1:]
		cr := len(seg) > 0 && seg[len(seg)-1] == '\r' || len(seg) == 0 && g.prevCR
		if !cr {
			g.phase = phaseOff
			g.Bad = g.heads + 1
			return ErrBareLF
		}
		g.prevCR = false
		if g.lineLen == 0 {
			// The whole line is in p: no copy.
			g.endLine(seg[:len(seg)-1], false)
			continue
		}
		g.take(seg)
		g.prevCR = false
		n := g.lineLen - 1 // without CR
		g.lineLen = 0
		g.endLine(g.carry[:min(n, len(g.carry))], n > len(g.carry))
	}
	return nil
}

// take adds bytes of the current line.
func (g *HeadGuard) take(b []byte) {
	if len(b) == 0 {
		return
	}
	if g.lineLen < len(g.carry) {
		copy(g.carry[g.lineLen:], b)
	}
	g.lineLen += len(b)
	g.prevCR = b[len(b)-1] == '\r'
}

// endLine handles a complete line without its CRLF; truncated says line
// holds only the first bytes of a longer one.
func (g *HeadGuard) endLine(line []byte, truncated bool) {
	switch {
	case len(line) == 0 && !g.started:
		// Empty lines before a request line are ignored.
	case len(line) == 0:
		g.heads++
		g.started = false
		switch {
		case g.framed:
			g.phase = phaseOff
			return
		case g.chunked:
			g.phase, g.ch = phaseChunked, Chunked{}
		case g.cl > 0:
			g.phase, g.bodyLeft = phaseBody, g.cl
		}
		g.cl, g.framed, g.chunked = 0, false, false
	case !g.started:
		g.started = true
		g.cl, g.framed, g.chunked = 0, false, false
	default:
		if c := line[0] | 0x20; c != 'c' && c != 't' && c != 'u' {
			return // not a framing field: the common case, decided cheaply
		}
		colon := bytes.IndexByte(line, ':')
		if colon < 0 {
			if truncated && (hasFoldPrefix(line, "transfer-encoding") || hasFoldPrefix(line, "content-length") || hasFoldPrefix(line, "upgrade")) {
				g.framed = true // a name too long to tell: stop to be safe
			}
			return
		}
		name := TrimOWS(line[:colon])
		switch {
		case EqualFold(name, "transfer-encoding"):
			if g.chunked || truncated || !EqualFold(TrimOWS(line[colon+1:]), "chunked") {
				g.framed = true // the engine refuses it; stop to be safe
			}
			g.chunked = true
		case EqualFold(name, "upgrade"):
			g.framed = true
		case EqualFold(name, "content-length"):
			v := TrimOWS(line[colon+1:])
			if truncated || len(v) == 0 || len(v) > 18 {
				g.framed = true // not a length the guard can follow
				return
			}
			var cl int64
			for _, c := range v {
				if c < '0' || c > '9' {
					g.framed = true
					return
				}
				cl = cl*10 + int64(c-'0')
			}
			g.cl = cl
		}
	}
}

func hasFoldPrefix(b []byte, lower string) bool {
	if len(b) > len(lower) {
		b = b[:len(lower)]
	}
	return EqualFold(b, lower[:len(b)])
}
