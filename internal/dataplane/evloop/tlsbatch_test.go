//go:build linux

package evloop

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// batchConn holds what the tls.Conn writes until the next read or an
// explicit flush, then writes all of it in one system call: records the
// client writes one after another reach the proxy in one segment.
type batchConn struct {
	net.Conn
	mu  sync.Mutex
	buf []byte
}

func (b *batchConn) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	return len(p), nil
}

func (b *batchConn) flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.buf) == 0 {
		return nil
	}
	_, err := b.Conn.Write(b.buf)
	b.buf = b.buf[:0]
	return err
}

func (b *batchConn) Read(p []byte) (int, error) {
	if err := b.flush(); err != nil {
		return 0, err
	}
	return b.Conn.Read(p)
}

// TestTLSBatchedRecordsAnswered: requests whose TLS records reach the
// loop together (several records in one segment, several requests in one
// record, the first request in the segment of the client's Finished) are
// all answered without the client sending anything more. A loop that read
// the segment but handled one record, then waited for an edge-triggered
// event that never comes, stalls here until the deadline.
func TestTLSBatchedRecordsAnswered(t *testing.T) {
	origin := startOrigin(t)
	var on atomic.Bool
	on.Store(true)
	p, pool, _ := startTLSProxy(t, origin, &on, nil)
	req := func(i int, pad int) string {
		return fmt.Sprintf("GET /r%d HTTP/1.1\r\nHost: x\r\nX-Pad: %s\r\n\r\n", i, strings.Repeat("p", pad))
	}
	for _, tc := range []struct {
		name    string
		records []string // one tls.Conn Write each, all sent in one segment
	}{
		{"two records", []string{req(0, 0), req(1, 0)}},
		{"two requests in one record", []string{req(0, 0) + req(1, 0)}},
		{"many records", func() []string {
			var r []string
			for i := 0; i < 24; i++ {
				r = append(r, req(i, 1500)) // more than a tlsSock buffer in all
			}
			return r
		}()},
		{"records split mid-request", []string{req(0, 0) + "GET /r1 HTTP/1.1\r\nHo", "st: x\r\n\r\n" + req(2, 0)}},
	} {
		for _, warm := range []bool{false, true} {
			name := tc.name + " with the Finished"
			if warm {
				name = tc.name + " after an exchange"
			}
			t.Run(name, func(t *testing.T) { batchExchange(t, p.Addr().String(), pool, tc.records, warm) })
		}
	}
}

// batchExchange sends records in one segment (with the client's Finished
// unless warm: then after a first exchange) and reads their answers.
func batchExchange(t *testing.T, addr string, pool *x509.CertPool, records []string, warm bool) {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	bc := &batchConn{Conn: nc}
	c := tls.Client(bc, &tls.Config{RootCAs: pool, ServerName: "proxy.test", NextProtos: []string{"http/1.1"}})
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if err := c.Handshake(); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	if warm {
		records = append([]string{"GET /warm HTTP/1.1\r\nHost: x\r\n\r\n"}, records...)
		if _, err := io.WriteString(c, records[0]); err != nil {
			t.Fatal(err)
		}
		if err := bc.flush(); err != nil {
			t.Fatal(err)
		}
		if _, err := br.Peek(1); err != nil {
			t.Fatal(err)
		}
	}
	// Unless warm, the client's Finished is still held: it goes
	// with the requests.
	for _, r := range records[b2i(warm):] {
		if _, err := io.WriteString(c, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := bc.flush(); err != nil {
		t.Fatal(err)
	}
	n := strings.Count(strings.Join(records, ""), "GET ")
	for i := 0; i < n; i++ {
		resp, err := http.ReadResponse(br, &http.Request{Method: "GET"})
		if err != nil {
			t.Fatalf("answer %d of %d: %v", i, n, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		want := fmt.Sprintf("hello /r%d", i-b2i(warm))
		if warm && i == 0 {
			want = "hello /warm"
		}
		if string(b) != want {
			t.Fatalf("answer %d: %d %q, want %q", i, resp.StatusCode, b, want)
		}
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestTLSRequestRightAfterHandshake: a request sent in its own segment
// right after the client's Finished, while the handshake goroutine hands
// the connection back to the loop, is answered (the loop's event for it
// may come before the loop has taken the connection back).
func TestTLSRequestRightAfterHandshake(t *testing.T) {
	origin := startOrigin(t)
	var on atomic.Bool
	on.Store(true)
	p, pool, _ := startTLSProxy(t, origin, &on, nil)
	for i := 0; i < 30; i++ {
		nc, err := net.Dial("tcp", p.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		bc := &batchConn{Conn: nc}
		c := tls.Client(bc, &tls.Config{RootCAs: pool, ServerName: "proxy.test", NextProtos: []string{"http/1.1"}})
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if err := c.Handshake(); err != nil {
			t.Fatal(err)
		}
		if err := bc.flush(); err != nil { // the Finished alone
			t.Fatal(err)
		}
		if _, err := fmt.Fprintf(c, "GET /n%d HTTP/1.1\r\nHost: x\r\n\r\n", i); err != nil {
			t.Fatal(err)
		}
		if err := bc.flush(); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: "GET"})
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := fmt.Sprintf("hello /n%d", i); string(b) != want {
			t.Fatalf("connection %d: %d %q, want %q", i, resp.StatusCode, b, want)
		}
		c.Close()
	}
}
