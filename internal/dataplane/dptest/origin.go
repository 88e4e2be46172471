package dptest

import (
	"bytes"
	"net"
	"testing"
)

// CannedOrigin starts a loopback origin that answers every request head it
// reads with a fixed 200 "ok" (bodiless requests only; pipelined heads get
// one answer each), allocating nothing per request, and returns its
// address. It stops when tb's test ends.
func CannedOrigin(tb testing.TB) string {
	const answer = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"
	return ServeConns(tb, func(c net.Conn) {
		buf, out := make([]byte, 16<<10), make([]byte, 0, 4096)
		seen := 0 // bytes of "\r\n\r\n" matched so far
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			out = out[:0]
			for _, ch := range buf[:n] {
				switch {
				case ch == "\r\n\r\n"[seen]:
					seen++
				case ch == '\r':
					seen = 1
				default:
					seen = 0
				}
				if seen == 4 {
					out, seen = append(out, answer...), 0
				}
			}
			if _, err := c.Write(out); err != nil {
				return
			}
		}
	})
}

// CannedRoundTrip writes req on c, a connection to a proxy in front of
// CannedOrigin, and reads the answer into buf until its head and the
// origin's 2-byte body are in; it returns what was read. It allocates
// nothing, for benchmarks of the proxy's path.
func CannedRoundTrip(tb testing.TB, c net.Conn, req, buf []byte) []byte {
	if _, err := c.Write(req); err != nil {
		tb.Fatal(err)
	}
	n := 0
	for {
		m, err := c.Read(buf[n:])
		if err != nil {
			tb.Fatal(err)
		}
		n += m
		if i := bytes.Index(buf[:n], headEnd); i >= 0 && n >= i+len(headEnd)+2 {
			return buf[:n]
		}
	}
}

// headEnd ends an HTTP/1.1 head.
var headEnd = []byte("\r\n\r\n")
