package main

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/meridian-platform/meridian/internal/dataplane/h1"
)

// Limits of what a response may hold before the parser gives up.
const (
	maxHead = 16 << 10 // status line and header fields
	maxLine = 4 << 10  // a chunk-size line or a trailer field
)

// Parser states.
const (
	stHead      = iota // waiting for a whole head (status line, fields, empty line)
	stBody             // Content-Length body: remain bytes left
	stEOFBody          // body delimited by the connection's close
	stChunkSize        // chunked: the chunk-size line
	stChunkData        // chunked: remain bytes of chunk data left
	stChunkCRLF        // chunked: the CRLF after chunk data
	stTrailer          // chunked: trailer fields up to the empty line
	stDone             // a final response has ended
)

var (
	errHeadTooLarge = fmt.Errorf("response head larger than %d bytes", maxHead)
	errLineTooLong  = fmt.Errorf("chunk-size or trailer line longer than %d bytes", maxLine)
	errBareLF       = errors.New("line ended by a bare LF")
	errStatusLine   = errors.New("malformed status line")
	errField        = errors.New("malformed header field")
	errFold         = errors.New("obsolete line folding in a header field")
	errLength       = errors.New("invalid Content-Length")
	errTwoLengths   = errors.New("conflicting Content-Length fields")
	errChunkSize    = errors.New("invalid chunk size")
	errChunkEnd     = errors.New("chunk data not followed by CRLF")
	errSwitch       = errors.New("unexpected 101 Switching Protocols")
)

// respParser follows one HTTP/1.1 response (to a GET) through a byte
// stream fed in pieces of any size: the status line, the framing fields
// (Content-Length, Transfer-Encoding, Connection), then the body by its
// length, chunk by chunk, or up to the connection's end. Interim (1xx)
// responses are skipped. It keeps no bytes and allocates nothing: the
// caller keeps the bytes it did not consume and feeds them again with
// more (see respReader).
type respParser struct {
	state   uint8
	status  int   // the final response's status code
	remain  int64 // body or chunk bytes left
	bodyLen int64 // body bytes seen so far (chunk data only, for chunked)
	close   bool  // the connection cannot carry another request
	chunked bool
}

func (p *respParser) reset() { *p = respParser{} }

// feed parses as much of b as it can. It returns how many bytes it
// consumed and whether a final response ended at b[n-1]; bytes not
// consumed are an incomplete line or head, to be fed again with what
// follows them. After done, reset before the next response.
func (p *respParser) feed(b []byte) (n int, done bool, err error) {
	for {
		rest := b[n:]
		switch p.state {
		case stDone:
			return n, true, nil
		case stHead:
			i := bytes.Index(rest, crlfcrlf)
			if i < 0 {
				if len(rest) >= maxHead {
					return n, false, errHeadTooLarge
				}
				return n, false, nil
			}
			if i+4 > maxHead {
				return n, false, errHeadTooLarge
			}
			if err := p.head(rest[:i+2]); err != nil {
				return n, false, err
			}
			n += i + 4
		case stBody, stChunkData:
			if len(rest) == 0 {
				return n, false, nil
			}
			k := p.remain
			if int64(len(rest)) < k {
				k = int64(len(rest))
			}
			n += int(k)
			p.remain -= k
			p.bodyLen += k
			if p.remain > 0 {
				return n, false, nil
			}
			if p.state == stBody {
				p.state = stDone
			} else {
				p.state = stChunkCRLF
			}
		case stEOFBody:
			p.bodyLen += int64(len(rest))
			return len(b), false, nil
		case stChunkCRLF:
			if len(rest) < 2 {
				if len(rest) == 1 && rest[0] != '\r' {
					return n, false, errChunkEnd
				}
				return n, false, nil
			}
			if rest[0] != '\r' || rest[1] != '\n' {
				return n, false, errChunkEnd
			}
			n += 2
			p.state = stChunkSize
		case stChunkSize, stTrailer:
			line, used, err := nextLine(rest)
			if err != nil || used == 0 {
				return n, false, err
			}
			n += used
			if p.state == stTrailer {
				if len(line) == 0 {
					p.state = stDone
				}
				continue
			}
			size, err := chunkSize(line)
			if err != nil {
				return n, false, err
			}
			if size == 0 {
				p.state = stTrailer
			} else {
				p.remain = size
				p.state = stChunkData
			}
		}
	}
}

// ended tells whether the response is complete when the connection ends
// (a body delimited by the close); any other state means it was cut short.
func (p *respParser) ended() bool {
	if p.state == stEOFBody {
		p.state = stDone
		return true
	}
	return p.state == stDone
}

var crlfcrlf = []byte("\r\n\r\n")

// nextLine returns the CRLF-ended line at the start of b without its end,
// and the bytes it took; used is 0 when b holds no whole line yet.
func nextLine(b []byte) (line []byte, used int, err error) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		if len(b) > maxLine {
			return nil, 0, errLineTooLong
		}
		return nil, 0, nil
	}
	if i > maxLine {
		return nil, 0, errLineTooLong
	}
	if i == 0 || b[i-1] != '\r' {
		return nil, 0, errBareLF
	}
	return b[:i-1], i + 1, nil
}

// chunkSize parses a chunk-size line: hexadecimal digits, then optional
// whitespace and chunk extensions after ';'.
func chunkSize(line []byte) (int64, error) {
	var size int64
	i := 0
	for ; i < len(line); i++ {
		d := hexDigit(line[i])
		if d < 0 {
			break
		}
		if size > (1<<62)>>4 {
			return 0, errChunkSize
		}
		size = size<<4 | int64(d)
	}
	if i == 0 {
		return 0, errChunkSize
	}
	for ; i < len(line) && (line[i] == ' ' || line[i] == '\t'); i++ {
	}
	if i < len(line) && line[i] != ';' {
		return 0, errChunkSize
	}
	return size, nil
}

func hexDigit(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// head parses a head (its lines each with their CRLF, without the empty
// line) and sets the state for what follows it.
func (p *respParser) head(h []byte) error {
	line, used, err := nextLine(h)
	if err != nil {
		return err
	}
	if used == 0 {
		return errBareLF
	}
	// HTTP/1.x SSS[ reason]
	if len(line) < 12 || string(line[:7]) != "HTTP/1." || (line[7] != '0' && line[7] != '1') || line[8] != ' ' ||
		(len(line) > 12 && line[12] != ' ') {
		return errStatusLine
	}
	status := 0
	for _, c := range line[9:12] {
		if c < '0' || c > '9' {
			return errStatusLine
		}
		status = status*10 + int(c-'0')
	}
	if status < 100 {
		return errStatusLine
	}
	http10 := line[7] == '0'
	length := int64(-1)
	te, chunked, closing, keepAlive := false, false, false, false
	for h = h[used:]; len(h) > 0; h = h[used:] {
		line, used, err = nextLine(h)
		if err != nil {
			return err
		}
		if used == 0 {
			return errBareLF
		}
		if line[0] == ' ' || line[0] == '\t' {
			return errFold
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 || !h1.IsToken(line[:colon]) {
			return errField
		}
		name, value := line[:colon], h1.TrimOWS(line[colon+1:])
		switch {
		case h1.EqualFold(name, "content-length"):
			v, ok := parseLength(value)
			if !ok {
				return errLength
			}
			if length >= 0 && length != v {
				return errTwoLengths
			}
			length = v
		case h1.EqualFold(name, "transfer-encoding"):
			te = true
			chunked = h1.EqualFold(lastToken(value), "chunked")
		case h1.EqualFold(name, "connection"):
			for v := value; len(v) > 0; {
				var tok []byte
				if i := bytes.IndexByte(v, ','); i >= 0 {
					tok, v = h1.TrimOWS(v[:i]), v[i+1:]
				} else {
					tok, v = h1.TrimOWS(v), nil
				}
				closing = closing || h1.EqualFold(tok, "close")
				keepAlive = keepAlive || h1.EqualFold(tok, "keep-alive")
			}
		}
	}
	if status < 200 {
		if status == 101 {
			return errSwitch
		}
		return nil // interim: the final response follows
	}
	p.status = status
	p.close = closing || (http10 && !keepAlive)
	switch {
	case status == 204 || status == 304:
		p.state = stDone
	case te && chunked:
		// A length beside a transfer coding is ignored, and the
		// connection is not to be trusted with another message.
		p.chunked = true
		p.close = p.close || length >= 0
		p.state = stChunkSize
	case te:
		p.close = true
		p.state = stEOFBody
	case length == 0:
		p.state = stDone
	case length > 0:
		p.remain = length
		p.state = stBody
	default:
		p.close = true
		p.state = stEOFBody
	}
	return nil
}

func parseLength(v []byte) (int64, bool) {
	if len(v) == 0 || len(v) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// lastToken is the last comma-separated element of a list, trimmed.
func lastToken(v []byte) []byte {
	if i := bytes.LastIndexByte(v, ','); i >= 0 {
		v = v[i+1:]
	}
	return h1.TrimOWS(v)
}
