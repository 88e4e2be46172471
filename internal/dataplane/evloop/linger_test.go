//go:build linux

package evloop

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meridian-platform/meridian/internal/dataplane/dptest"
)

func TestHeadTooLarge(t *testing.T) {
	tests := []struct {
		head string
		want int
	}{
		{"GET /" + strings.Repeat("a", 100), 414},
		{"GET / HTTP/1.1\r\nHost: a\r\nX: aaaa", 431},
		{"GET / HTTP/1.1\n", 431},
	}
	for _, tt := range tests {
		if got := headTooLarge([]byte(tt.head)).Status; got != tt.want {
			t.Errorf("headTooLarge(%.20q...) = %d, want %d", tt.head, got, tt.want)
		}
	}
}

// TestLingeringClose checks that an answer the loop ends the connection
// with reaches a client that is still sending, over plain TCP and TLS:
// the loop reads on after the answer instead of closing with unread bytes
// (which resets the connection and can discard the answer), and closes
// when the client does.
func TestLingeringClose(t *testing.T) {
	origin := startOrigin(t)
	plain, err := Start(Config{Listen: "127.0.0.1:0", Origin: origin, Loops: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { plain.Close() })
	var on atomic.Bool
	on.Store(true)
	secure, pool, _ := startTLSProxy(t, origin, &on, func(c net.Conn, _ []byte) { c.Close() })
	dialers := []struct {
		name string
		p    *Proxy
		dial func(addr string) (net.Conn, error)
	}{
		{"tcp", plain, func(addr string) (net.Conn, error) { return net.Dial("tcp", addr) }},
		{"tls", secure, func(addr string) (net.Conn, error) {
			return tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, ServerName: "proxy.test", NextProtos: []string{"http/1.1"}})
		}},
	}
	tests := []struct {
		name, head string
		status     int
		reason     string
	}{
		{"request line too long", "GET /" + strings.Repeat("a", 80<<10), 414, "URI Too Long"},
		{"head too large", "GET / HTTP/1.1\r\nHost: a\r\nX: " + strings.Repeat("a", 80<<10), 431, "Request Header Fields Too Large"},
	}
	for _, d := range dialers {
		for _, tt := range tests {
			t.Run(d.name+"/"+tt.name, func(t *testing.T) {
				c, err := d.dial(d.p.Addr().String())
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				// The client goes on sending after the head that the loop
				// answers, until it has read the answer.
				stop := dptest.KeepSending(c, tt.head, 4096)
				time.Sleep(100 * time.Millisecond) // the answer is written and the loop is done with the request
				br := bufio.NewReader(c)
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatalf("reading the answer: %v", err)
				}
				body, err := io.ReadAll(resp.Body)
				if err != nil {
					t.Fatalf("reading the answer's body: %v", err)
				}
				if resp.StatusCode != tt.status || !strings.HasSuffix(resp.Status, tt.reason) || resp.Header.Get("Date") == "" || !resp.Close {
					t.Errorf("got %q, Date %q, close %v; want %d %s with a Date, closing", resp.Status, resp.Header.Get("Date"), resp.Close, tt.status, tt.reason)
				}
				if len(body) == 0 {
					t.Error("the answer has no body")
				}
				// After the answer the loop's side is shut: EOF (after
				// close_notify), not a reset.
				if _, err := br.ReadByte(); err != io.EOF {
					t.Errorf("after the answer: %v, want EOF", err)
				}
				if err := stop(); err != nil {
					t.Errorf("the client's sending failed: %v (the loop closed instead of lingering)", err)
				}
				// The connection counts as open until the client closes it.
				if n := d.p.Active(); n != 1 {
					t.Errorf("Active() = %d while lingering, want 1", n)
				}
				c.Close()
				for deadline := time.Now().Add(5 * time.Second); d.p.Active() != 0; time.Sleep(10 * time.Millisecond) {
					if time.Now().After(deadline) {
						t.Fatalf("Active() = %d after the client closed, want 0", d.p.Active())
					}
				}
			})
		}
	}
}

// TestLingeringCloseEndsWithDrain checks that a draining proxy does not
// wait for a lingering connection.
func TestLingeringCloseEndsWithDrain(t *testing.T) {
	p, err := Start(Config{Listen: "127.0.0.1:0", Origin: startOrigin(t), Loops: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	c := dial(t, p.Addr().String())
	if _, err := io.WriteString(c, "GET /"+strings.Repeat("a", 80<<10)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != 414 {
		t.Fatalf("answer: %v %v, want 414", resp, err)
	}
	// The client keeps its side open: the drain does not wait for it.
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown with a lingering connection: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Shutdown took %v with a lingering connection", d)
	}
}

// TestLingeringCloseEarlyAnswer checks the lingering close after an origin
// answered before the request body was all sent: the client, still
// sending its body, gets the whole answer and an EOF.
func TestLingeringCloseEarlyAnswer(t *testing.T) {
	origin := dptest.ServeConns(t, func(c net.Conn) {
		if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 413 Content Too Large\r\nContent-Length: 9\r\nConnection: close\r\n\r\ntoo large")
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		io.Copy(io.Discard, c) // the origin lingers too
	})
	p, err := Start(Config{Listen: "127.0.0.1:0", Origin: origin, Loops: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	c := dial(t, p.Addr().String())
	stop := dptest.KeepSending(c, "POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 100000000\r\n\r\n", 16<<10)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 413 || string(body) != "too large" {
		t.Fatalf("got %d %q (%v), want 413 \"too large\"", resp.StatusCode, body, err)
	}
	time.Sleep(100 * time.Millisecond) // the client sends on after the answer
	if _, err := br.ReadByte(); err != io.EOF {
		t.Errorf("after the answer: %v, want EOF", err)
	}
	if err := stop(); err != nil {
		t.Errorf("the client's sending failed: %v (the loop closed instead of lingering)", err)
	}
}
