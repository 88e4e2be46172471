//go:build linux

package evloop

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// testCert is a self-signed certificate for "proxy.test".
func testCert(t testing.TB) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "proxy.test"}, DNSNames: []string{"proxy.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// startTLSProxy runs a proxy to origin whose listener has TLS (ALPN h2
// and http/1.1) while tlsOn says so.
func startTLSProxy(t testing.TB, origin string, tlsOn *atomic.Bool, handoff func(net.Conn, []byte)) (*Proxy, *x509.CertPool, *atomic.Int64) {
	t.Helper()
	cert, pool := testCert(t)
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}}
	var failed atomic.Int64
	p, err := Start(Config{Listen: "127.0.0.1:0", Origin: origin, Loops: 2, Handoff: handoff, HandshakeTimeout: 300 * time.Millisecond,
		TLS: func() *tls.Config {
			if tlsOn.Load() {
				return cfg
			}
			return nil
		},
		TLSError: func() { failed.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p, pool, &failed
}

func TestTLSProxy(t *testing.T) {
	origin := startOrigin(t)
	var on atomic.Bool
	on.Store(true)
	handed := make(chan string, 1)
	p, pool, failed := startTLSProxy(t, origin, &on, func(c net.Conn, buffered []byte) {
		tc, ok := c.(*tls.Conn)
		if !ok {
			handed <- "not a *tls.Conn"
			c.Close()
			return
		}
		st := tc.ConnectionState()
		handed <- st.NegotiatedProtocol + " " + st.ServerName
		c.Close()
	})
	addr := p.Addr().String()
	cc := &tls.Config{RootCAs: pool, ServerName: "proxy.test", NextProtos: []string{"http/1.1"}}
	c, err := tls.Dial("tcp", addr, cc)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	body := strings.Repeat("b", 200<<10)
	for i, tc := range []struct{ req, method, want string }{
		{"GET /a HTTP/1.1\r\nHost: x\r\nX-Forwarded-Proto: http\r\n\r\n", "GET", "hello /a"},
		{"GET /big HTTP/1.1\r\nHost: x\r\n\r\n", "GET", strings.Repeat("z", 300<<10)},
		{"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body, "POST", "POST " + strconv.Itoa(len(body)) + " " + body},
		{"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", "POST", "POST 3 abc"},
		{"GET /chunked HTTP/1.1\r\nHost: x\r\n\r\n", "GET", "part0;part1;part2;"},
	} {
		if _, err := io.WriteString(c, tc.req); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(br, &http.Request{Method: tc.method})
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != tc.want {
			t.Fatalf("request %d: %d %.200q", i, resp.StatusCode, b)
		}
		if i == 0 && resp.Header.Get("X-Seen-Proto") != "https" {
			t.Fatalf("the origin saw X-Forwarded-Proto %q", resp.Header.Get("X-Seen-Proto"))
		}
	}
	if st := p.Stats(); st.Requests != 5 || st.Connections != 1 {
		t.Fatalf("stats %+v", st)
	}

	// HTTP/2 goes to Handoff as the tls.Conn, after the handshake.
	h2, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, ServerName: "proxy.test", NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	h2.Close()
	select {
	case got := <-handed:
		if got != "h2 proxy.test" {
			t.Fatalf("handed off: %q", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no hand-off of the h2 connection")
	}

	// A client that stops in its handshake is let go at the timeout, and
	// counted.
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	_, _ = raw.Write([]byte{22, 3, 1, 0, 200, 1})
	_ = raw.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(raw); err != nil {
		t.Fatalf("the stalled handshake was not closed: %v", err)
	}
	if failed.Load() != 1 {
		t.Fatalf("%d failed handshakes counted, want 1", failed.Load())
	}

	// The listener's TLS can go (a reload): new connections are plain.
	on.Store(false)
	pc := dial(t, addr)
	if resp, b := pc.roundTrip(t, "GET /plain HTTP/1.1\r\nHost: x\r\n\r\n", "GET"); b != "hello /plain" || resp.Header.Get("X-Seen-Proto") != "http" {
		t.Fatalf("plain after TLS went: %q %v", b, resp.Header)
	}
}

// TestTLSCloseDuringHandshake closes the proxy while handshakes wait: they
// end and their sockets close.
func TestTLSCloseDuringHandshake(t *testing.T) {
	origin := startOrigin(t)
	var on atomic.Bool
	on.Store(true)
	p, _, _ := startTLSProxy(t, origin, &on, nil)
	var conns []net.Conn
	for i := 0; i < 4; i++ {
		c, err := net.Dial("tcp", p.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c)
	}
	deadline := time.Now().Add(5 * time.Second)
	for p.Active() != 4 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	p.Close()
	for _, c := range conns {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("read after close: %v, want EOF", err)
		}
	}
}

// BenchmarkProxyTLS is BenchmarkProxy over TLS: one keep-alive TLS
// client (in the same process: allocations are both sides').
func BenchmarkProxyTLS(b *testing.B) {
	for _, size := range []int{19, 16 << 10} {
		b.Run(strconv.Itoa(size), func(b *testing.B) {
			origin := fixedOrigin(b, size)
			var on atomic.Bool
			on.Store(true)
			p, pool, _ := startTLSProxy(b, origin, &on, nil)
			c, err := tls.Dial("tcp", p.Addr().String(), &tls.Config{RootCAs: pool, ServerName: "proxy.test", NextProtos: []string{"http/1.1"}})
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			benchRoundTrips(b, c, size)
		})
	}
}

// TestTLSSockGivesRecords checks that the tls.Conn gets buffered
// ciphertext one record at a time, whatever the sizes asked for.
func TestTLSSockGivesRecords(t *testing.T) {
	var stream []byte
	var ends []int // where each record ends in stream
	for _, n := range []int{0, 1, 300, 16 << 10, 5} {
		stream = append(stream, 23, 3, 3, byte(n>>8), byte(n))
		stream = append(stream, bytes.Repeat([]byte{byte(n)}, n)...)
		ends = append(ends, len(stream))
	}
	for _, ask := range []int{1, 2, 5, 7, 512, 1 << 20} {
		s := &tlsSock{in: append([]byte(nil), stream...), inW: len(stream)}
		var got []byte
		for s.inR < s.inW {
			p := make([]byte, ask)
			n := s.give(p)
			if n == 0 {
				t.Fatalf("ask %d: nothing given at %d", ask, len(got))
			}
			start := len(got)
			got = append(got, p[:n]...)
			for _, e := range ends {
				if start < e && len(got) > e {
					t.Fatalf("ask %d: a read from %d to %d crosses the record end %d", ask, start, len(got), e)
				}
			}
		}
		if !bytes.Equal(got, stream) {
			t.Fatalf("ask %d: the stream changed", ask)
		}
		if s.more() {
			t.Fatalf("ask %d: more() with nothing buffered and the socket not ready", ask)
		}
	}
}

// TestTLSHandshakeDuringShutdown: a handshake under way when the proxy
// starts shutting down completes; the connection then closes at once when
// no request came with it, and Shutdown returns.
func TestTLSHandshakeDuringShutdown(t *testing.T) {
	origin := startOrigin(t)
	var on atomic.Bool
	on.Store(true)
	p, pool, _ := startTLSProxy(t, origin, &on, nil)
	raw, err := net.Dial("tcp", p.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	deadline := time.Now().Add(5 * time.Second)
	for p.Active() != 1 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	p.StopAccepting()
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		done <- p.Shutdown(ctx)
	}()
	c := tls.Client(raw, &tls.Config{RootCAs: pool, ServerName: "proxy.test", NextProtos: []string{"http/1.1"}})
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if err := c.Handshake(); err != nil {
		t.Fatalf("handshake during shutdown: %v", err)
	}
	start := time.Now()
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("read: %v, want EOF", err)
	}
	if err := <-done; err != nil || time.Since(start) > 2*time.Second {
		t.Fatalf("shutdown: %v after %v", err, time.Since(start))
	}
}
