//go:build linux

package evloop

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/meridian-platform/meridian/internal/dataplane/dptest"
)

// startOrigin runs a net/http origin on loopback.
func startOrigin(t testing.TB) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Seen-XFF", r.Header.Get("X-Forwarded-For"))
		w.Header().Set("X-Seen-Proto", r.Header.Get("X-Forwarded-Proto"))
		w.Header().Set("X-Seen-Connection", r.Header.Get("Connection")+r.Header.Get("X-Hop"))
		io.WriteString(w, "hello "+r.URL.Path)
	})
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		fmt.Fprintf(w, "%s %d %s", r.Method, len(b), b)
	})
	mux.HandleFunc("/chunked", func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i < 3; i++ {
			fmt.Fprintf(w, "part%d;", i)
			w.(http.Flusher).Flush()
		}
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		w.Write(bytes.Repeat([]byte("z"), 300<<10))
	})
	mux.HandleFunc("/empty", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

func startProxy(t testing.TB, origin string) string {
	t.Helper()
	p, err := Start(Config{Listen: "127.0.0.1:0", Origin: origin, Loops: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p.Addr().String()
}

type testConn struct {
	net.Conn
	br *bufio.Reader
}

func dial(t testing.TB, addr string) *testConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	t.Cleanup(func() { c.Close() })
	return &testConn{Conn: c, br: bufio.NewReader(c)}
}

func (c *testConn) roundTrip(t *testing.T, raw, method string) (*http.Response, string) {
	t.Helper()
	if raw != "" {
		if _, err := io.WriteString(c, raw); err != nil {
			t.Fatal(err)
		}
	}
	var resp *http.Response
	for resp == nil || resp.StatusCode < 200 {
		var err error
		resp, err = http.ReadResponse(c.br, &http.Request{Method: method})
		if err != nil {
			t.Fatalf("reading answer to %q: %v", raw, err)
		}
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading body of answer to %q: %v", raw, err)
	}
	return resp, string(b)
}

func TestProxyKeepAlive(t *testing.T) {
	addr := startProxy(t, startOrigin(t))
	c := dial(t, addr)
	for i := 0; i < 5; i++ {
		resp, body := c.roundTrip(t, fmt.Sprintf("GET /p%d HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n", i), "GET")
		if resp.StatusCode != 200 || body != fmt.Sprintf("hello /p%d", i) {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
		}
		if got := resp.Header.Get("X-Seen-XFF"); got != "127.0.0.1" {
			t.Errorf("origin saw X-Forwarded-For %q, want the peer only", got)
		}
		if got := resp.Header.Get("X-Seen-Proto"); got != "http" {
			t.Errorf("origin saw X-Forwarded-Proto %q", got)
		}
		if got := resp.Header.Get("X-Seen-Connection"); got != "" {
			t.Errorf("hop-by-hop fields reached the origin: %q", got)
		}
		if resp.Close {
			t.Fatalf("request %d: proxy closes a keep-alive connection", i)
		}
	}
}

func TestProxyFraming(t *testing.T) {
	addr := startProxy(t, startOrigin(t))
	tests := []struct {
		name, raw, method string
		status            int
		body              string
	}{
		{"content-length body", "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nabcde", "POST", 200, "POST 5 abcde"},
		{"chunked body", "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nT: v\r\n\r\n", "POST", 200, "POST 5 abcde"},
		{"chunked answer", "GET /chunked HTTP/1.1\r\nHost: a\r\n\r\n", "GET", 200, "part0;part1;part2;"},
		{"head", "HEAD / HTTP/1.1\r\nHost: a\r\n\r\n", "HEAD", 200, ""},
		{"no content", "GET /empty HTTP/1.1\r\nHost: a\r\n\r\n", "GET", 204, ""},
		{"big answer", "GET /big HTTP/1.1\r\nHost: a\r\n\r\n", "GET", 200, strings.Repeat("z", 300<<10)},
	}
	c := dial(t, addr)
	for _, tt := range tests {
		resp, body := c.roundTrip(t, tt.raw, tt.method)
		if resp.StatusCode != tt.status || body != tt.body {
			t.Errorf("%s: got %d %.60q, want %d %.60q", tt.name, resp.StatusCode, body, tt.status, tt.body)
		}
	}
	// Pipelined requests in one write are answered in order.
	if _, err := io.WriteString(c, "GET /x HTTP/1.1\r\nHost: a\r\n\r\nPOST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhiGET /y HTTP/1.1\r\nHost: a\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"hello /x", "POST 2 hi", "hello /y"} {
		if _, body := c.roundTrip(t, "", "GET"); body != want {
			t.Errorf("pipelined: got %q, want %q", body, want)
		}
	}
	// An HTTP/1.0 client never gets a chunked answer.
	{
		c := dial(t, addr)
		if _, err := io.WriteString(c, "GET /chunked HTTP/1.0\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		raw, err := io.ReadAll(c)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(bytes.ToLower(raw), []byte("transfer-encoding")) || !bytes.HasSuffix(raw, []byte("part0;part1;part2;")) {
			t.Errorf("HTTP/1.0 client got %q", raw)
		}
	}
	// HTTP/1.0 and Connection: close end the connection after the answer.
	for _, raw := range []string{"GET / HTTP/1.0\r\n\r\n", "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"} {
		c := dial(t, addr)
		resp, _ := c.roundTrip(t, raw, "GET")
		if !resp.Close {
			t.Errorf("%q: answer without Connection: close", raw)
		}
		if n, err := c.br.ReadByte(); err != io.EOF {
			t.Errorf("%q: connection still open after the answer (%v, %v)", raw, n, err)
		}
	}
}

func TestProxyRejects(t *testing.T) {
	addr := startProxy(t, startOrigin(t))
	tests := []struct {
		name, raw string
		status    int
	}{
		{"CL and TE", "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
		{"duplicate CL", "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc", 400},
		{"bad CL", "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: -3\r\n\r\n", 400},
		{"TE without chunked", "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 400},  // RFC 9112 6.3
		{"unknown TE", "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501}, // RFC 9112 6.1
		{"no host", "GET / HTTP/1.1\r\n\r\n", 400},
		{"two hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
		{"version", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505},
		{"folding", "GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", 400},
		{"bare LF", "GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n", 400},
		{"space in name", "GET / HTTP/1.1\r\nHost: a\r\nX Y: b\r\n\r\n", 400},
		{"upgrade", "GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n", 501},
		{"absolute form", "GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"bad chunk", "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400},
		{"huge head", "GET / HTTP/1.1\r\nHost: a\r\nX: " + strings.Repeat("a", 64<<10) + "\r\n\r\n", 431},
	}
	for _, tt := range tests {
		c := dial(t, addr)
		resp, body := c.roundTrip(t, tt.raw, "GET")
		if resp.StatusCode != tt.status || !resp.Close {
			t.Errorf("%s: got %d (close %v) %q, want %d and close", tt.name, resp.StatusCode, resp.Close, body, tt.status)
		}
	}
}

// rawOrigin answers every request on a connection with answer and then
// closes the connection when closeAfter is set.
func rawOrigin(t *testing.T, answer string, closeAfter bool) string {
	t.Helper()
	return dptest.ServeConns(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			io.Copy(io.Discard, req.Body)
			if _, err := io.WriteString(c, answer); err != nil || closeAfter {
				return
			}
		}
	})
}

func TestProxyOriginAnswers(t *testing.T) {
	tests := []struct {
		name, answer string
		closeAfter   bool
		status       int
		body         string
		clientClose  bool
	}{
		{"read until close", "HTTP/1.1 200 OK\r\n\r\nuntil close", true, 200, "until close", true},
		{"interim answer", "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\nKeep-Alive: timeout=5\r\n\r\nok", false, 200, "ok", false},
		{"origin closes each connection", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", true, 200, "ok", false},
		{"malformed status", "HTTP/1.1 2x0 OK\r\n\r\n", true, 502, "bad gateway\n", true},
		{"conflicting lengths", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok", true, 502, "bad gateway\n", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dial(t, startProxy(t, rawOrigin(t, tt.answer, tt.closeAfter)))
			for i := 0; i < 3; i++ {
				resp, body := c.roundTrip(t, "GET / HTTP/1.1\r\nHost: a\r\n\r\n", "GET")
				if resp.StatusCode != tt.status || body != tt.body || resp.Close != tt.clientClose {
					t.Fatalf("request %d: got %d %q close=%v, want %d %q close=%v", i, resp.StatusCode, body, resp.Close, tt.status, tt.body, tt.clientClose)
				}
				if tt.clientClose {
					break
				}
			}
		})
	}
}

func TestProxyOriginDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c := dial(t, startProxy(t, addr))
	resp, _ := c.roundTrip(t, "GET / HTTP/1.1\r\nHost: a\r\n\r\n", "GET")
	if resp.StatusCode != 502 {
		t.Fatalf("got %d, want 502", resp.StatusCode)
	}
}

func TestStartErrors(t *testing.T) {
	for _, cfg := range []Config{{Listen: "nope", Origin: "127.0.0.1:1"}, {Listen: "127.0.0.1:0", Origin: "x"}} {
		if p, err := Start(cfg); err == nil {
			p.Close()
			t.Errorf("%+v: no error", cfg)
		}
	}
}

func TestTimeoutsAndAdmit(t *testing.T) {
	// An origin that accepts and never answers.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	refused := netip.MustParseAddr("127.0.0.2")
	p, err := Start(Config{Listen: "127.0.0.1:0", Origin: silent.Addr().String(), Loops: 1,
		HeaderTimeout: 300 * time.Millisecond, IdleTimeout: 300 * time.Millisecond, OriginTimeout: 300 * time.Millisecond,
		Admit: func(peer, _ netip.AddrPort) (bool, bool) { return peer.Addr() != refused, false }})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	addr := p.Addr().String()

	start := time.Now()
	c := dial(t, addr)
	resp, _ := c.roundTrip(t, "GET / HTTP/1.1\r\nHost: a\r\n", "GET") // no end of head
	if resp.StatusCode != 408 {
		t.Errorf("slow head: got %d, want 408", resp.StatusCode)
	}
	c = dial(t, addr)
	resp, _ = c.roundTrip(t, "GET / HTTP/1.1\r\nHost: a\r\n\r\n", "GET")
	if resp.StatusCode != 504 {
		t.Errorf("silent origin: got %d, want 504", resp.StatusCode)
	}
	c = dial(t, addr)
	if _, err := c.br.ReadByte(); err != io.EOF {
		t.Errorf("idle connection: got %v, want EOF", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("timeouts took %v", d)
	}
	// A refused peer is closed at once.
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: refused.AsSlice()}}
	rc, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	rc.SetDeadline(time.Now().Add(2 * time.Second))
	io.WriteString(rc, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	if n, err := rc.Read(make([]byte, 1)); err == nil || n > 0 {
		t.Errorf("refused peer: read %d bytes, %v", n, err)
	}
	if st := p.Stats(); st.Connections != 3 {
		t.Errorf("stats %+v: want 3 admitted connections", st)
	}
}

func TestShutdownAndMaxConnections(t *testing.T) {
	// An origin that answers after 300 ms.
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(300 * time.Millisecond)
		io.WriteString(w, "late")
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	defer srv.Close()
	p, err := Start(Config{Listen: "127.0.0.1:0", Origin: ln.Addr().String(), Loops: 1, MaxConnections: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	addr := p.Addr().String()
	idle := dial(t, addr)
	busy := dial(t, addr)
	if _, err := io.WriteString(busy, "GET / HTTP/1.1\r\nHost: a\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	// A third connection is over the limit and closed at accept.
	for deadline := time.Now().Add(2 * time.Second); p.Active() < 2 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	extra := dial(t, addr)
	if _, err := extra.br.ReadByte(); err == nil {
		t.Error("connection over MaxConnections was served")
	}
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		done <- p.Shutdown(ctx)
	}()
	if _, err := idle.br.ReadByte(); err != io.EOF {
		t.Errorf("idle connection on shutdown: %v, want EOF", err)
	}
	resp, body := busy.roundTrip(t, "", "GET")
	if resp.StatusCode != 200 || body != "late" || !resp.Close {
		t.Errorf("request in flight: %d %q close=%v, want 200 \"late\" with Connection: close", resp.StatusCode, body, resp.Close)
	}
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Error("still accepting after Shutdown")
	}
	if n := p.Active(); n != 0 {
		t.Errorf("%d connections left", n)
	}
}

// FuzzProxyStream sends arbitrary bytes to a running proxy (in front of a
// net/http origin): the proxy must answer or close, never panic, and keep
// serving other connections.
func FuzzProxyStream(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabcGET /x HTTP/1.0\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nConnection: close, x\r\nX: y\r\n\r\n",
		"HEAD /chunked HTTP/1.1\r\nHost: a\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	p, err := Start(Config{Listen: "127.0.0.1:0", Origin: startOrigin(f), Loops: 1})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { p.Close() })
	addr := p.Addr().String()
	f.Fuzz(func(t *testing.T, in []byte) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		c.Write(in)
		c.(*net.TCPConn).CloseWrite()
		io.Copy(io.Discard, c)
		// The proxy still serves.
		h, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		h.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(h, "GET /alive HTTP/1.1\r\nHost: a\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(h), nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("after %q the proxy does not serve: %v", in, err)
		}
		if n := p.Stats().Panics; n > 0 {
			t.Fatalf("after %q: %d panics in the loop", in, n)
		}
	})
}

// TestRetryOnReusedConnection: an origin that closes a kept-alive
// connection when the next request arrives, without answering it; the
// proxy must send that (idempotent) request again on a new connection.
func TestRetryOnReusedConnection(t *testing.T) {
	origin := dptest.ServeConns(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		http.ReadRequest(br) // the next request: closed unanswered
	})
	p, err := Start(Config{Listen: "127.0.0.1:0", Origin: origin, Loops: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c := dial(t, p.Addr().String())
	for i := 0; i < 4; i++ {
		resp, body := c.roundTrip(t, "GET / HTTP/1.1\r\nHost: a\r\n\r\n", "GET")
		if resp.StatusCode != 200 || body != "ok" {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
		}
	}
	if st := p.Stats(); st.OriginConnects < 4 {
		t.Errorf("stats %+v: want a new origin connection per request", st)
	}
	// A POST is not retried: on the kept-alive connection the origin
	// drops, the client gets 502.
	resp, _ := c.roundTrip(t, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\nx", "POST")
	if resp.StatusCode != 502 {
		t.Errorf("POST on a reused connection the origin dropped: %d, want 502", resp.StatusCode)
	}
}

func TestListenerPerLoop(t *testing.T) {
	origin := startOrigin(t)
	for _, perLoop := range []bool{false, true} {
		p, err := Start(Config{Listen: "127.0.0.1:0", Origin: origin, Loops: 3, ListenerPerLoop: perLoop})
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 6; i++ {
			c := dial(t, p.Addr().String())
			if resp, body := c.roundTrip(t, "GET /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", "GET"); resp.StatusCode != 200 || body != "hello /x" {
				t.Fatalf("per-loop %v: %d %q", perLoop, resp.StatusCode, body)
			}
		}
		// A second proxy on the address fails to bind, whichever kind of
		// listeners either has, rather than sharing the connections.
		for _, second := range []bool{false, true} {
			if q, err := Start(Config{Listen: p.Addr().String(), Origin: origin, Loops: 2, ListenerPerLoop: second}); err == nil {
				q.Close()
				t.Errorf("per-loop %v: a second proxy (per-loop %v) bound %s", perLoop, second, p.Addr())
			} else if !errors.Is(err, unix.EADDRINUSE) {
				t.Errorf("per-loop %v: a second proxy (per-loop %v): %v, want EADDRINUSE", perLoop, second, err)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := p.Shutdown(ctx); err != nil {
			t.Fatalf("per-loop %v: %v", perLoop, err)
		}
		cancel()
		if c, err := net.DialTimeout("tcp", p.Addr().String(), time.Second); err == nil {
			c.Close()
			t.Errorf("per-loop %v: still accepting after Shutdown", perLoop)
		}
	}
}

func TestIPv6Peer(t *testing.T) {
	if ln, err := net.Listen("tcp", "[::1]:0"); err != nil {
		t.Skip("no IPv6 loopback:", err)
	} else {
		ln.Close()
	}
	p, err := Start(Config{Listen: "[::1]:0", Origin: startOrigin(t), Loops: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c := dial(t, p.Addr().String())
	resp, _ := c.roundTrip(t, "GET / HTTP/1.1\r\nHost: a\r\n\r\n", "GET")
	if got := resp.Header.Get("X-Seen-XFF"); got != "::1" {
		t.Errorf("origin saw X-Forwarded-For %q, want ::1", got)
	}
}
