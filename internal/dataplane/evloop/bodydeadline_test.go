//go:build linux

package evloop

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/meridian-platform/meridian/internal/dataplane/dptest"
)

// pausingOrigin reads a request head, then nothing for pause, then the
// body of the length the head names, and answers with the count.
func pausingOrigin(t *testing.T, pause time.Duration) string {
	t.Helper()
	return dptest.ServeConns(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		time.Sleep(pause)
		n, _ := io.Copy(io.Discard, req.Body)
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: %d\r\n\r\ngot %d", len("got ")+len(strconv.FormatInt(n, 10)), n)
	})
}

// The body timeout bounds the client's pauses, not the origin's: a client
// that sends its body at once to an origin that takes it only after
// three body timeouts (the loop holds the body back meanwhile, reading
// no more from the client) is answered, not cut with 408; the origin's
// own timeout bounds such a wait. A client that stops sending still gets
// 408 after the body timeout.
func TestBodyTimeoutCountsClientPausesOnly(t *testing.T) {
	// Long enough for the client (a goroutine of this process, which a
	// loaded machine with -race starves for most of a second at times)
	// not to pause past it once the origin takes the body again.
	const bodyTO = time.Second
	p, err := Start(Config{Listen: "127.0.0.1:0", Origin: pausingOrigin(t, 3*bodyTO), Loops: 1, BodyTimeout: bodyTO})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	addr := p.Addr().String()

	// More than the socket buffers on both sides and the loop's hold.
	const size = 64 << 20
	// The whole request is made before a byte of it is sent: the client
	// itself must not pause once it has started.
	req := append([]byte(fmt.Sprintf("POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n", size)), bytes.Repeat([]byte("b"), size)...)
	c := dial(t, addr)
	go c.Write(req)
	resp, body := c.roundTrip(t, "", "POST")
	if resp.StatusCode != 200 || body != fmt.Sprintf("got %d", size) {
		t.Fatalf("a body held back by the origin: %d %q, want 200 and the whole body", resp.StatusCode, body)
	}

	// A client that stops sending: 408 after about the body timeout.
	c2 := dial(t, addr)
	start := time.Now()
	resp, _ = c2.roundTrip(t, "POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc", "POST")
	if resp.StatusCode != 408 {
		t.Fatalf("a stalled body: %d, want 408", resp.StatusCode)
	}
	if d := time.Since(start); d < bodyTO {
		t.Fatalf("408 after %v, before the body timeout", d)
	}
}
