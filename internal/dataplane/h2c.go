package dataplane

import (
	"bufio"
	"bytes"
)

// h2cHTTP1 reports whether a connection to an h2c listener that did not
// start with the HTTP/2 client preface may be an HTTP/1.x request: its
// first line (after empty ones) ends in an HTTP/x.y version. Anything
// else, such as a mistyped preface, gets the connection closed (RFC 9113
// §3.4: a server that does not receive the preface may close it) rather
// than an HTTP/1.1 400 the client does not read. It also says true when
// the line is not complete within the reader's buffer or the client stops
// sending: the HTTP/1.1 engine then answers as it does for any request.
func h2cHTTP1(br *bufio.Reader) bool {
	for n := 1; ; {
		b, err := br.Peek(n)
		line := bytes.TrimLeft(b, "\r\n")
		if i := bytes.IndexByte(line, '\n'); i >= 0 {
			return endsInHTTPVersion(bytes.TrimSuffix(line[:i], []byte("\r")))
		}
		if err != nil || len(b) >= br.Size() {
			return true
		}
		n = min(max(br.Buffered(), len(b)+1), br.Size())
	}
}

// endsInHTTPVersion reports whether a request line ends in " HTTP/d.d".
func endsInHTTPVersion(line []byte) bool {
	i := bytes.LastIndexByte(line, ' ')
	if i < 0 {
		return false
	}
	v := line[i+1:]
	return len(v) == 8 && string(v[:5]) == "HTTP/" && isDigit(v[5]) && v[6] == '.' && isDigit(v[7])
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// upgradesToH2C reports whether an Upgrade field value lists h2c. Such a
// request is not proxied as an upgrade: the node does not switch an
// HTTP/1.1 connection to HTTP/2 (RFC 9113 §3.1 deprecates it; RFC 9110
// §7.8 lets a server ignore Upgrade), and an origin that did would take
// HTTP/2 straight from the client, past the routes and stages. The
// request goes on as plain HTTP/1.1, its Upgrade removed as hop-by-hop.
func upgradesToH2C(v []byte) bool {
	for len(v) > 0 {
		var tok []byte
		tok, v, _ = bytes.Cut(v, []byte(","))
		if tok = bytes.TrimSpace(tok); bytes.EqualFold(tok, []byte("h2c")) {
			return true
		}
	}
	return false
}
