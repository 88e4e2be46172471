package dataplane

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/meridian-platform/meridian/internal/dataplane/dptest"
)

// TestLingeringClose checks, for both HTTP/1.1 engines, that the answer
// a connection ends with reaches a client that is still sending: the
// server shuts its side and reads on (lingering close) instead of closing
// with unread bytes, which resets the connection.
func TestLingeringClose(t *testing.T) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(origin.Close)
	addrs, _ := startEngines(t, func(port int) string { return pool("a", hostOf(origin.URL)) + lbYAML(port, "a") }, nil)
	for _, engine := range engineNames {
		t.Run(engine, func(t *testing.T) {
			c, err := net.Dial("tcp", addrs[engine])
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			stop := dptest.KeepSending(c, "GET /"+strings.Repeat("a", 80<<10), 4096)
			time.Sleep(100 * time.Millisecond) // the server has answered and is done with the connection
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("reading the answer: %v", err)
			}
			if _, err := io.ReadAll(resp.Body); err != nil {
				t.Fatalf("reading the answer's body: %v", err)
			}
			if resp.StatusCode != http.StatusRequestURITooLong {
				t.Errorf("status %d, want 414", resp.StatusCode)
			}
			if _, err := br.ReadByte(); err != io.EOF {
				t.Errorf("after the answer: %v, want EOF", err)
			}
			if err := stop(); err != nil {
				t.Errorf("the client's sending failed: %v (the server closed instead of lingering)", err)
			}
		})
	}
}
