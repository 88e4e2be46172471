package evloop

import (
	"bytes"

	"github.com/meridian-platform/meridian/internal/dataplane/h1"
)

// reqHead is what the loop needs to know about one request head. Every
// slice points into the connection's read buffer.
type reqHead struct {
	method, target, host []byte
	http11               bool
	// headers is the raw header block after the request line, without the
	// empty line that ends the head.
	headers []byte
	// size is the length of the whole head including the empty line.
	size int
	// body framing
	contentLength int64
	chunked       bool
	contentType   bool
	// connection handling
	close   bool
	upgrade bool
	// skip is the number of empty lines before the request line.
	skip int
	// conn are the other options of the Connection field.
	conn connOptions
}

// connOptions are the options of a head's Connection fields other than
// close, keep-alive and upgrade: names of fields that are
// connection-specific (RFC 9110 7.6.1) and are not forwarded.
type connOptions struct {
	names [8][]byte
	n     int
	// fields is the whole header block when there were more options
	// than names holds: the rest are looked up there.
	fields []byte
}

func (co *connOptions) add(tok, fields []byte) {
	if co.n < len(co.names) {
		co.names[co.n] = tok
		co.n++
		return
	}
	co.fields = fields
}

// has reports whether the Connection fields name the field name. The
// framing fields are never reported: the loop forwards the body as it
// came, framed by them (the goroutine engine's HTTP library keeps a
// message's framing apart from its fields too).
func (co *connOptions) has(name []byte) bool {
	if co.n == 0 || h1.EqualFold(name, "content-length") || h1.EqualFold(name, "transfer-encoding") {
		return false
	}
	for _, n := range co.names[:co.n] {
		if len(n) == len(name) && bytes.EqualFold(n, name) {
			return true
		}
	}
	if co.fields == nil {
		return false
	}
	found := false
	forEachHeader(co.fields, func(fname, value []byte) {
		if !found && h1.EqualFold(fname, "connection") {
			forEachToken(value, func(tok []byte) {
				if len(tok) == len(name) && bytes.EqualFold(tok, name) {
					found = true
				}
			})
		}
	})
	return found
}

// namedInConnection reports whether the request's Connection fields name
// the field name; Host is kept (the goroutine engine keeps it too).
func (rh *reqHead) namedInConnection(name []byte) bool {
	return rh.conn.has(name) && !h1.EqualFold(name, "host")
}

// problems of the request line that h1 does not cover.
var (
	problemVersion = &h1.Problem{Status: 505, Reason: "HTTP version not supported"}
	problemLine    = &h1.Problem{Status: 400, Reason: "malformed request line"}
)

// findHeadEnd returns the index just past the CRLFCRLF that ends a head in
// b, searching from from (which may lie inside the terminator), or -1.
func findHeadEnd(b []byte, from int) int {
	if from > 3 {
		from -= 3
	} else {
		from = 0
	}
	i := bytes.Index(b[from:], crlfcrlf)
	if i < 0 {
		return -1
	}
	return from + i + 4
}

var crlfcrlf = []byte("\r\n\r\n")

// parseRequest parses and validates a complete request head b (ending in
// CRLFCRLF, possibly preceded by empty lines). It applies the same checks
// as the goroutine engine (h1.CheckRequestLine, h1.CheckHeaders) and RFC
// 9112's framing rules.
func parseRequest(b []byte, lim h1.Limits) (reqHead, *h1.Problem) {
	var rh reqHead
	rh.size = len(b)
	// RFC 9112 2.2: ignore at least one empty line before the request line.
	for len(b)-rh.skip >= 2 && b[rh.skip] == '\r' && b[rh.skip+1] == '\n' {
		rh.skip += 2
	}
	b = b[rh.skip:]
	eol := bytes.IndexByte(b, '\n')
	if eol < 1 || b[eol-1] != '\r' {
		return rh, problemLine
	}
	line := b[:eol-1]
	sp1 := bytes.IndexByte(line, ' ')
	if sp1 < 0 {
		return rh, problemLine
	}
	rest := line[sp1+1:]
	sp2 := bytes.IndexByte(rest, ' ')
	if sp2 < 0 {
		return rh, problemLine
	}
	rh.method, rh.target = line[:sp1], rest[:sp2]
	version := rest[sp2+1:]
	switch string(version) {
	case "HTTP/1.1":
		rh.http11 = true
	case "HTTP/1.0":
	default:
		if len(version) == 8 && bytes.HasPrefix(version, []byte("HTTP/")) {
			return rh, problemVersion
		}
		return rh, problemLine
	}
	if p := h1.CheckRequestLine(rh.method, rh.target, lim); p != nil {
		return rh, p
	}
	rh.headers = b[eol+1 : len(b)-2]
	if p := h1.CheckHeaders(b[eol+1:], rh.http11, lim); p != nil {
		return rh, p
	}
	rh.close = !rh.http11
	forEachHeader(rh.headers, func(name, value []byte) {
		switch {
		case h1.EqualFold(name, "content-length"):
			rh.contentLength = parseDecimal(value)
		case h1.EqualFold(name, "content-type"):
			rh.contentType = true
		case h1.EqualFold(name, "transfer-encoding"):
			rh.chunked = true // CheckHeaders admits only "chunked"
		case h1.EqualFold(name, "connection"):
			forEachToken(value, func(tok []byte) {
				switch {
				case h1.EqualFold(tok, "close"):
					rh.close = true
				case h1.EqualFold(tok, "keep-alive"):
					// HTTP/1.0 keep-alive is not offered: such
					// connections close after one answer.
				case h1.EqualFold(tok, "upgrade"):
					rh.upgrade = true
				default:
					rh.conn.add(tok, rh.headers)
				}
			})
		case h1.EqualFold(name, "upgrade"):
			rh.upgrade = true
		case h1.EqualFold(name, "host"):
			rh.host = value
		}
	})
	return rh, nil
}

// respHead is what the loop needs to know about a response head.
type respHead struct {
	status        int
	contentLength int64 // -1 when absent
	chunked       bool
	close         bool
	size          int
	// conn are the other options of the Connection field: fields that
	// are not forwarded to the client.
	conn connOptions
	// hop says the head has a hop-by-hop field (Connection among them,
	// which comes with any field conn names).
	hop bool
}

var problemOrigin = &h1.Problem{Status: 502, Reason: "invalid response from origin"}

// parseResponse parses a complete response head b (ending in CRLFCRLF).
func parseResponse(b []byte) (respHead, *h1.Problem) {
	rh := respHead{contentLength: -1, size: len(b)}
	eol := bytes.IndexByte(b, '\n')
	if eol < 13 || b[eol-1] != '\r' || !bytes.HasPrefix(b, []byte("HTTP/1.")) || b[8] != ' ' {
		return rh, problemOrigin
	}
	if b[7] == '0' {
		rh.close = true
	} else if b[7] != '1' {
		return rh, problemOrigin
	}
	for _, c := range b[9:12] {
		if c < '0' || c > '9' {
			return rh, problemOrigin
		}
		rh.status = rh.status*10 + int(c-'0')
	}
	if rh.status < 100 || (len(b) > 12 && b[12] != ' ' && b[12] != '\r') {
		return rh, problemOrigin
	}
	if !wellFormedFields(b[eol+1 : len(b)-2]) {
		return rh, problemOrigin
	}
	var bad bool
	var nCL int
	fields := b[eol+1 : len(b)-2]
	forEachHeader(fields, func(name, value []byte) {
		switch {
		case h1.EqualFold(name, "content-length"):
			nCL++
			v := parseDecimal(value)
			if v < 0 || nCL > 1 && v != rh.contentLength {
				bad = true
			}
			rh.contentLength = v
		case h1.EqualFold(name, "transfer-encoding"):
			// Only chunked (last) is understood; anything else is read
			// until the origin closes.
			if hasLastToken(value, "chunked") {
				rh.chunked = true
			} else {
				rh.close = true
				rh.chunked = false
			}
		case h1.EqualFold(name, "connection"):
			forEachToken(value, func(tok []byte) {
				switch {
				case h1.EqualFold(tok, "close"):
					rh.close = true
				case h1.EqualFold(tok, "keep-alive"):
				default:
					rh.conn.add(tok, fields)
				}
			})
		}
		if hopByHop(name) {
			rh.hop = true
		}
		for _, c := range value {
			if c < ' ' && c != '\t' || c == 0x7f {
				bad = true
			}
		}
	})
	if bad {
		return rh, problemOrigin
	}
	if rh.chunked {
		rh.contentLength = -1 // RFC 9112 6.3: Transfer-Encoding wins
	}
	return rh, nil
}

// wellFormedFields reports whether every line of a header block ends in
// CRLF, has no other CR or LF, is not an obs-fold continuation, and starts
// with a token followed by a colon: what is forwarded as it is must not be
// able to split an answer.
func wellFormedFields(b []byte) bool {
	for len(b) > 0 {
		eol := bytes.IndexByte(b, '\n')
		if eol < 1 || b[eol-1] != '\r' {
			return false
		}
		line := b[:eol-1]
		b = b[eol+1:]
		if bytes.IndexByte(line, '\r') >= 0 {
			return false
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 || !h1.IsToken(line[:colon]) {
			return false
		}
	}
	return true
}

// forEachHeader calls f for every "name: value" line of a header block
// whose lines end in CRLF (already validated).
func forEachHeader(b []byte, f func(name, value []byte)) {
	for len(b) > 0 {
		eol := bytes.IndexByte(b, '\n')
		var line []byte
		if eol < 0 {
			line, b = b, nil
		} else {
			line, b = b[:eol], b[eol+1:]
		}
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			continue
		}
		f(line[:colon], h1.TrimOWS(line[colon+1:]))
	}
}

// forEachToken calls f for each element of a comma-separated list.
func forEachToken(v []byte, f func(tok []byte)) {
	for len(v) > 0 {
		i := bytes.IndexByte(v, ',')
		var tok []byte
		if i < 0 {
			tok, v = v, nil
		} else {
			tok, v = v[:i], v[i+1:]
		}
		if tok = h1.TrimOWS(tok); len(tok) > 0 {
			f(tok)
		}
	}
}

func hasLastToken(v []byte, lower string) bool {
	var last []byte
	forEachToken(v, func(tok []byte) { last = tok })
	return h1.EqualFold(last, lower)
}

// parseDecimal parses a non-negative decimal of at most 18 digits, or -1.
func parseDecimal(b []byte) int64 {
	if len(b) == 0 || len(b) > 18 {
		return -1
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return -1
		}
		n = n*10 + int64(c-'0')
	}
	return n
}

// hopByHop reports whether a header is connection-specific and must not be
// forwarded (RFC 9110 7.6.1), or is one the proxy sets itself.
func hopByHop(name []byte) bool {
	switch len(name) {
	case 2:
		return h1.EqualFold(name, "te")
	case 7:
		return h1.EqualFold(name, "upgrade") || h1.EqualFold(name, "trailer")
	case 10:
		return h1.EqualFold(name, "connection") || h1.EqualFold(name, "keep-alive")
	case 16:
		return h1.EqualFold(name, "proxy-connection")
	}
	return false
}

// chunkFramer follows chunked framing (RFC 9112 7.1) over a byte stream to
// find where the message ends; the bytes themselves are forwarded as they
// are. It is h1.Chunked, which the goroutine engine's guard uses too, so
// that both engines refuse the same chunked bodies (a chunk-size line with
// whitespace or an ill-formed extension, a chunk's data not followed by
// CRLF, an ill-formed or forbidden trailer field: what is forwarded as it
// is must parse one way only).
type chunkFramer struct{ h1.Chunked }

// feed consumes b and returns how many bytes belong to the message, whether
// the message is complete, and whether the framing is invalid.
func (f *chunkFramer) feed(b []byte) (n int, done, bad bool) {
	n, done, err := f.Feed(b)
	return n, done, err != nil
}

// normalPath splits an origin-form target into path and query when the
// path needs no normalization (no percent-encoding, no dot or empty
// segments); otherwise path is nil and routing is left to the goroutine
// engine, which normalizes.
func normalPath(target []byte) (path, query []byte) {
	path = target
	if i := bytes.IndexByte(target, '?'); i >= 0 {
		path, query = target[:i], target[i+1:]
	}
	if len(path) == 0 || path[0] != '/' {
		return nil, query
	}
	for i, c := range path {
		switch c {
		case '%', '\\', '#':
			return nil, query
		case '/':
			if i+1 < len(path) && path[i+1] == '/' {
				return nil, query
			}
		case '.':
			if path[i-1] == '/' && (i+1 == len(path) || path[i+1] == '/' || path[i+1] == '.' && (i+2 == len(path) || path[i+2] == '/')) {
				return nil, query
			}
		}
	}
	return path, query
}

func equalFoldString(b []byte, s string) bool {
	for i, c := range b {
		d := s[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if d >= 'A' && d <= 'Z' {
			d += 'a' - 'A'
		}
		if c != d {
			return false
		}
	}
	return true
}

// appendRequestHead writes the head sent to the origin: the request line,
// the end-to-end headers and X-Forwarded-For/-Proto for the peer.
func appendRequestHead(b []byte, rh *reqHead, peer []byte, requestID func([]byte) []byte) []byte {
	b = append(b, rh.method...)
	b = append(b, ' ')
	b = append(b, rh.target...)
	if rh.http11 {
		b = append(b, " HTTP/1.1\r\n"...)
	} else {
		// An HTTP/1.0 client cannot read a chunked answer: the origin
		// must not send one.
		b = append(b, " HTTP/1.0\r\n"...)
	}
	hs := rh.headers
	for len(hs) > 0 {
		eol := 0
		for eol < len(hs) && hs[eol] != '\n' {
			eol++
		}
		line := hs[:eol+1]
		hs = hs[eol+1:]
		colon := 0
		for colon < len(line) && line[colon] != ':' {
			colon++
		}
		name := line[:colon]
		if hopByHop(name) || h1.EqualFold(name, "x-forwarded-for") || h1.EqualFold(name, "x-forwarded-proto") || rh.namedInConnection(name) ||
			h1.EqualFold(name, "expect") || h1.EqualFold(name, "proxy-authorization") || requestID != nil && h1.EqualFold(name, "x-request-id") {
			continue
		}
		b = append(b, line...)
	}
	if rh.contentLength > 0 && !rh.contentType {
		// As the goroutine engine does (its HTTP library names a body
		// with a length that has no type).
		b = append(b, "Content-Type: application/octet-stream\r\n"...)
	}
	if requestID != nil {
		b = append(b, "X-Request-Id: "...)
		b = requestID(b)
		b = append(b, "\r\n"...)
	}
	b = append(b, "X-Forwarded-For: "...)
	b = append(b, peer...)
	b = append(b, "\r\nX-Forwarded-Proto: http\r\n\r\n"...)
	return b
}
