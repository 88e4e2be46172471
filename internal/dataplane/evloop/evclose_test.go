//go:build linux

package evloop

import (
	"io"
	"testing"
	"time"
)

// TestDeferAccept: with DeferAccept a connection that has sent nothing is
// not accepted yet; one whose request is there is accepted, read at once
// (readAfterAccept) and answered, with and without keep-alive.
func TestDeferAccept(t *testing.T) {
	origin := startOrigin(t)
	p, err := Start(Config{Listen: "127.0.0.1:0", Origin: origin, Loops: 2, DeferAccept: true})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	addr := p.Addr().String()

	silent := dial(t, addr)
	time.Sleep(150 * time.Millisecond)
	if n := p.Active(); n != 0 {
		t.Errorf("a connection that sent nothing was accepted (%d active)", n)
	}
	resp, body := silent.roundTrip(t, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n", "GET")
	if resp.StatusCode != 200 || body != "hello /a" {
		t.Errorf("first request after a pause: %d %q", resp.StatusCode, body)
	}
	if n := p.Active(); n != 1 {
		t.Errorf("%d active connections, want 1", n)
	}
	resp, _ = silent.roundTrip(t, "GET /b HTTP/1.1\r\nHost: x\r\n\r\n", "GET")
	if resp.StatusCode != 200 {
		t.Errorf("second request: %d", resp.StatusCode)
	}
	for i := 0; i < 20; i++ {
		c := dial(t, addr)
		resp, body := c.roundTrip(t, "GET /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "GET")
		if resp.StatusCode != 200 || !resp.Close || body != "hello /c" {
			t.Fatalf("request %d on a new connection: %d close=%v %q", i, resp.StatusCode, resp.Close, body)
		}
		if _, err := c.br.ReadByte(); err != io.EOF {
			t.Fatalf("request %d: connection not closed after the answer: %v", i, err)
		}
	}
}
