package h1

import "errors"

// ErrBadChunked is returned when a chunked request body breaks RFC 9112
// 7.1: a chunk-size line, its extensions, the CRLF after a chunk's data or
// the trailer section.
var ErrBadChunked = errors.New("invalid chunked body")

// Chunked follows the chunked transfer coding (RFC 9112 7.1) over a byte
// stream and finds where the body ends; both HTTP/1.1 engines judge a
// request's chunked body with it, so they accept and refuse the same
// bodies. It is strict where origins are known to differ:
//
//   - the chunk size is 1 to 15 hex digits (no sign, no "0x", no
//     whitespace around it);
//   - extensions follow the 7.1.1 grammar (";" name ["=" token or
//     quoted-string]), with optional whitespace around "=" and after ";"
//     but none before ";" (the BWS the grammar allows there is refused,
//     as the goroutine engine's HTTP library refuses it: whitespace after
//     the size is where parsers disagree on where the size ends);
//   - every line ends in CRLF (no bare CR or LF), and so does each chunk's
//     data;
//   - trailer fields are field lines as in a head (a token, a colon, a
//     value without control characters but HTAB; no obs-fold), and fields
//     that frame, route, authenticate or describe the content are refused
//     (RFC 9110 6.5.1: a sender must not send them as trailers; a
//     recipient that merged one would see another request).
//
// The zero value is ready to use.
type Chunked struct {
	state   uint8
	digits  uint8
	size    int64
	lineLen int
	name    [20]byte // the start of a trailer field's name, lower-cased
	nameLen int
}

const (
	ckSize uint8 = iota
	ckExtStart
	ckExtName
	ckExtAfterName
	ckExtValStart
	ckExtVal
	ckExtQuoted
	ckExtQuotedEsc
	ckExtAfterVal
	ckSizeLF
	ckData
	ckDataCR
	ckDataLF
	ckTrailerStart
	ckTrailerName
	ckTrailerValue
	ckTrailerLF
	ckFinalLF
	ckDone
)

// MaxChunkLine bounds a chunk-size line with its extensions, and a
// trailer field line.
const MaxChunkLine = 4096

// Feed consumes b. It returns how many bytes of b belong to the body (all
// of b unless the body ended or broke within it), whether the body is
// complete, and ErrBadChunked when the framing is invalid (n is then the
// offset of the offending byte).
func (c *Chunked) Feed(b []byte) (n int, done bool, err error) {
	for n < len(b) {
		ch := b[n]
		switch c.state {
		case ckData:
			k := int64(len(b) - n)
			if k > c.size {
				k = c.size
			}
			c.size -= k
			n += int(k)
			if c.size == 0 {
				c.state = ckDataCR
			}
			continue
		case ckSize:
			switch {
			case hexVal[ch] < 16:
				if c.digits == 15 {
					return n, false, ErrBadChunked
				}
				c.size = c.size<<4 | int64(hexVal[ch])
				c.digits++
			case c.digits == 0:
				return n, false, ErrBadChunked
			case ch == ';':
				c.state, c.lineLen = ckExtStart, 0
			case ch == '\r':
				c.state = ckSizeLF
			default:
				return n, false, ErrBadChunked
			}
		case ckExtStart, ckExtName, ckExtAfterName, ckExtValStart, ckExtVal, ckExtQuoted, ckExtQuotedEsc, ckExtAfterVal:
			if c.lineLen++; c.lineLen > MaxChunkLine || !c.ext(ch) {
				return n, false, ErrBadChunked
			}
		case ckSizeLF:
			if ch != '\n' {
				return n, false, ErrBadChunked
			}
			if c.size == 0 {
				c.state = ckTrailerStart
			} else {
				c.state = ckData
			}
		case ckDataCR:
			if ch != '\r' {
				return n, false, ErrBadChunked
			}
			c.state = ckDataLF
		case ckDataLF:
			if ch != '\n' {
				return n, false, ErrBadChunked
			}
			c.state, c.digits, c.size = ckSize, 0, 0
		case ckTrailerStart:
			switch {
			case ch == '\r':
				c.state = ckFinalLF
			case tokenChar[ch]:
				c.state, c.lineLen, c.nameLen = ckTrailerName, 1, 0
				c.addName(ch)
			default:
				// obs-fold, an empty name, a bare LF
				return n, false, ErrBadChunked
			}
		case ckTrailerName:
			c.lineLen++
			switch {
			case ch == ':':
				if forbiddenTrailer(c.name[:min(c.nameLen, len(c.name))]) {
					return n, false, ErrBadChunked
				}
				c.state = ckTrailerValue
			case tokenChar[ch] && c.lineLen <= MaxChunkLine:
				c.addName(ch)
			default:
				return n, false, ErrBadChunked
			}
		case ckTrailerValue:
			c.lineLen++
			switch {
			case ch == '\r':
				c.state = ckTrailerLF
			case ch < ' ' && ch != '\t' || ch == 0x7f || c.lineLen > MaxChunkLine:
				return n, false, ErrBadChunked
			}
		case ckTrailerLF:
			if ch != '\n' {
				return n, false, ErrBadChunked
			}
			c.state = ckTrailerStart
		case ckFinalLF:
			if ch != '\n' {
				return n, false, ErrBadChunked
			}
			c.state = ckDone
			return n + 1, true, nil
		case ckDone:
			return n, true, nil
		}
		n++
	}
	return n, c.state == ckDone, nil
}

// ext takes one byte of a chunk-size line's extensions (RFC 9112 7.1.1):
// chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ] ),
// but no whitespace before ";" (see Chunked). It reports whether the byte
// is allowed.
func (c *Chunked) ext(ch byte) bool {
	ws := ch == ' ' || ch == '\t'
	switch c.state {
	case ckExtStart: // after ";"
		switch {
		case ws:
		case tokenChar[ch]:
			c.state = ckExtName
		default:
			return false // an empty name
		}
	case ckExtName, ckExtAfterName:
		switch {
		case tokenChar[ch] && c.state == ckExtName:
		case ws:
			c.state = ckExtAfterName
		case ch == '=':
			c.state = ckExtValStart
		case ch == ';' && c.state == ckExtName:
			c.state = ckExtStart
		case ch == '\r':
			c.state = ckSizeLF
		default:
			return false
		}
	case ckExtValStart:
		switch {
		case ws:
		case ch == '"':
			c.state = ckExtQuoted
		case tokenChar[ch]:
			c.state = ckExtVal
		default:
			return false
		}
	case ckExtVal:
		switch {
		case tokenChar[ch]:
		case ch == ';':
			c.state = ckExtStart
		case ch == '\r':
			c.state = ckSizeLF
		default:
			return false
		}
	case ckExtQuoted: // RFC 9110 5.6.4 qdtext and quoted-pair
		switch {
		case ch == '"':
			c.state = ckExtAfterVal
		case ch == '\\':
			c.state = ckExtQuotedEsc
		case ch < ' ' && ch != '\t' || ch == 0x7f:
			return false
		}
	case ckExtQuotedEsc:
		if ch < ' ' && ch != '\t' || ch == 0x7f {
			return false
		}
		c.state = ckExtQuoted
	case ckExtAfterVal:
		switch ch {
		case ';':
			c.state = ckExtStart
		case '\r':
			c.state = ckSizeLF
		default:
			return false
		}
	}
	return true
}

func (c *Chunked) addName(ch byte) {
	if c.nameLen < len(c.name) {
		if ch >= 'A' && ch <= 'Z' {
			ch += 'a' - 'A'
		}
		c.name[c.nameLen] = ch
	}
	c.nameLen++
}

// forbiddenTrailer reports whether a trailer field named name (lower-cased,
// its first 20 bytes: a longer name is none of the list) is refused: a
// field that frames the message, routes it, authenticates, modifies the
// request or describes the content (RFC 9110 6.5.1), the same list as the
// goroutine engine's HTTP library refuses, so that both engines answer
// alike.
func forbiddenTrailer(name []byte) bool {
	switch string(name) {
	case "authorization", "content-encoding", "content-length", "content-type", "content-range",
		"connection", "cookie", "expect", "host", "keep-alive", "location", "max-forwards",
		"proxy-connection", "proxy-authenticate", "proxy-authorization", "range", "set-cookie",
		"te", "trailer", "transfer-encoding", "www-authenticate", "x-real-ip":
		return true
	}
	return len(name) >= 11 && string(name[:11]) == "x-forwarded"
}

var hexVal = func() (t [256]byte) {
	for i := range t {
		t[i] = 16
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = byte(c - '0')
	}
	for c := 'a'; c <= 'f'; c++ {
		t[c] = byte(c-'a') + 10
		t[c-'a'+'A'] = byte(c-'a') + 10
	}
	return t
}()
