package wafstage

import (
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	v1 "github.com/meridian-platform/meridian/api/v1"
)

// TestHugeBodyIsRefusedEarly sends a body far over the firewall's limit:
// the answer must be 413 and come without the whole body being read.
func TestHugeBodyIsRefusedEarly(t *testing.T) {
	addr := startFront(t, "huge", v1.AppFirewallSpec{RequestBody: v1.WAFRequestBody{Limit: 64 << 10}}, reflectBackend(t))
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const size = 32 << 20
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	fmt.Fprintf(c, "POST /upload HTTP/1.1\r\nHost: a\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n", size)
	done := make(chan error, 1)
	go func() {
		chunk := []byte(strings.Repeat("a", 64<<10))
		for sent := 0; sent < size; sent += len(chunk) {
			_ = c.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if _, err := c.Write(chunk); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	buf := make([]byte, 400)
	n, _ := io.ReadAtLeast(c, buf, 12)
	_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if m, _ := c.Read(buf[n:]); m > 0 {
		n += m
	}
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	t.Logf("answer %q, heap grew by %d MiB", buf[:n], (int64(after.HeapAlloc)-int64(before.HeapAlloc))>>20)
	if !strings.HasPrefix(string(buf[:n]), "HTTP/1.1 413") {
		t.Errorf("answer %q, want 413", buf[:n])
	}
}
