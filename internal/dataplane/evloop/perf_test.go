//go:build linux

package evloop

import (
	"bytes"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// Answers after a connection's first are not held back by Nagle's
// algorithm until the client acknowledges the previous one (the loop sets
// TCP_NODELAY lazily, before a client's second write): pipelined pairs of
// requests, whose second answer is written while the first may be
// unacknowledged, are answered without the client's delayed-ACK wait
// (40 ms and more on Linux) on any round.
func TestPipelinedAnswersNotDelayed(t *testing.T) {
	addr := startProxy(t, fixedOrigin(t, 19))
	c := dial(t, addr)
	req := "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
	buf := make([]byte, 4096)
	const rounds = 100
	var slowest time.Duration
	for i := 0; i < rounds; i++ {
		start := time.Now()
		if _, err := io.WriteString(c, req+req); err != nil {
			t.Fatal(err)
		}
		n := 0
		for bytes.Count(buf[:n], []byte("HTTP/1.1 200")) < 2 || !bytes.HasSuffix(buf[:n], []byte(strings.Repeat("y", 19))) {
			k, err := c.Read(buf[n:])
			if err != nil {
				t.Fatalf("round %d: %v (read %q)", i, err, buf[:n])
			}
			n += k
		}
		slowest = max(slowest, time.Since(start))
	}
	if slowest >= 30*time.Millisecond {
		t.Fatalf("slowest pipelined pair took %v: an answer waited for an acknowledgement", slowest)
	}
}

// A connection per request ("Connection: close") is answered and closed by
// the loop.
func TestConnectionPerRequest(t *testing.T) {
	addr := startProxy(t, fixedOrigin(t, 19))
	for i := 0; i < 50; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(c) // until the loop closes
		c.Close()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(b, []byte("HTTP/1.1 200")) || !bytes.Contains(b, []byte("\r\nConnection: close\r\n")) || !bytes.HasSuffix(b, []byte(strings.Repeat("y", 19))) {
			t.Fatalf("answer %q", b)
		}
	}
}
