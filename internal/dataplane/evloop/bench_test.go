//go:build linux

package evloop

import (
	"bytes"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/meridian-platform/meridian/internal/dataplane/config"
)

// fixedOrigin answers every request head on a connection with a fixed
// answer, without allocating.
func fixedOrigin(b testing.TB, body int) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	go serveFixed(ln, body)
	return ln.Addr().String()
}

// serveFixed answers every request head of ln's connections with a fixed
// answer of body bytes until ln is closed.
func serveFixed(ln net.Listener, body int) {
	answer := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: keep-alive\r\nContent-Length: " +
		strconv.Itoa(body) + "\r\n\r\n" + strings.Repeat("y", body))
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			buf := make([]byte, 16<<10)
			n := 0
			for {
				k, err := c.Read(buf[n:])
				if err != nil {
					return
				}
				n += k
				for {
					i := bytes.Index(buf[:n], crlfcrlf)
					if i < 0 {
						break
					}
					if _, err := c.Write(answer); err != nil {
						return
					}
					n = copy(buf, buf[i+4:n])
				}
			}
		}()
	}
}

// fixedClient makes keep-alive exchanges, one at a time, with a proxy in
// front of a fixedOrigin whose answers have bodies of size bytes; the
// answers' length is learnt from the first one.
type fixedClient struct {
	c          net.Conn
	size, want int
	buf        []byte
}

var fixedRequest = []byte("GET /b/x?q=1 HTTP/1.1\r\nHost: shop.test\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n")

func newFixedClient(c net.Conn, size int) *fixedClient {
	return &fixedClient{c: c, size: size, buf: make([]byte, size+4<<10)}
}

// roundTrip writes a request and reads its whole answer.
func (f *fixedClient) roundTrip() error {
	if _, err := f.c.Write(fixedRequest); err != nil {
		return err
	}
	n := 0
	for f.want == 0 || n < f.want {
		if n == len(f.buf) {
			return fmt.Errorf("answer longer than %d bytes", n)
		}
		k, err := f.c.Read(f.buf[n:])
		if err != nil {
			return err
		}
		n += k
		if f.want == 0 {
			if i := bytes.Index(f.buf[:n], crlfcrlf); i >= 0 && n >= i+4+f.size {
				f.want = i + 4 + f.size
			}
		}
	}
	if n != f.want {
		return fmt.Errorf("answer of %d bytes, want %d", n, f.want)
	}
	return nil
}

// benchRoundTrips measures b.N exchanges of a fixedClient on c, after a
// first one.
func benchRoundTrips(b *testing.B, c net.Conn, size int) {
	fc := newFixedClient(c, size)
	if err := fc.roundTrip(); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(size))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := fc.roundTrip(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkProxy is one keep-alive client, the event-loop proxy and an
// origin in one process on loopback; allocations are the whole process's.
func BenchmarkProxy(b *testing.B) {
	for _, routed := range []bool{false, true} {
		for _, size := range []int{19, 16 << 10} {
			name := strconv.Itoa(size)
			if routed {
				name = "table-" + name
			}
			b.Run(name, func(b *testing.B) { benchProxy(b, size, routed) })
		}
	}
	// The loops waiting in epoll_wait (KernelWait) instead of parking.
	for _, size := range []int{19, 16 << 10} {
		b.Run("kernelwait-"+strconv.Itoa(size), func(b *testing.B) {
			p, err := Start(Config{Listen: "127.0.0.1:0", Origin: fixedOrigin(b, size), Loops: 2, KernelWait: true})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { p.Close() })
			c, err := net.Dial("tcp", p.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			benchRoundTrips(b, c, size)
		})
	}
}

// benchProxy runs the benchmark, with one fixed origin or (routed) through
// a TableRouter over a compiled configuration.
func benchProxy(b *testing.B, size int, routed bool) {
	origin := fixedOrigin(b, size)
	var addr string
	if routed {
		lc, reg := startTable(b, origin, origin)
		p, err := Start(Config{Listen: "127.0.0.1:0", Loops: 2,
			Router: &TableRouter{Listener: func() *config.HTTPListener { return lc }, Pools: reg.Pool}})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { p.Close() })
		addr = p.Addr().String()
	} else {
		addr = startProxy(b, origin)
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	benchRoundTrips(b, c, size)
}

// BenchmarkProxyNewConn is a new connection per request ("Connection:
// close"): accept, forward over a kept-alive origin connection, answer,
// close. Allocations are the whole process's (the client side's dial
// allocates; see the proxy's own in the profile).
func BenchmarkProxyNewConn(b *testing.B) {
	addr := startProxy(b, fixedOrigin(b, 19))
	req := []byte("GET / HTTP/1.1\r\nHost: shop.test\r\nConnection: close\r\n\r\n")
	buf := make([]byte, 4096)
	roundTrip := func() {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write(req); err != nil {
			b.Fatal(err)
		}
		n := 0
		for {
			k, err := c.Read(buf[n:])
			n += k
			if err != nil {
				break // the loop closes after the answer
			}
		}
		if !bytes.HasSuffix(buf[:n], []byte("yyyyyyyyyyyyyyyyyyy")) {
			b.Fatalf("answer %q", buf[:n])
		}
	}
	roundTrip()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		roundTrip()
	}
}
