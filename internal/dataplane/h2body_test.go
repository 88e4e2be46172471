package dataplane

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/meridian-platform/meridian/internal/dataplane/config"
	"github.com/meridian-platform/meridian/internal/dataplane/dptest"
)

// h2cClient speaks HTTP/2 with prior knowledge over plaintext.
func h2cClient() *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http2.Transport{AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		}}}
}

// evilReader yields n bytes of a pattern with "EVIL" at offset at (-1:
// nowhere), without holding the body in memory.
type evilReader struct {
	n, off, at int
}

func (r *evilReader) Read(p []byte) (int, error) {
	if r.off >= r.n {
		return 0, io.EOF
	}
	p = p[:min(len(p), r.n-r.off)]
	for i := range p {
		o := r.off + i
		c := byte('a' + o%26)
		if r.at >= 0 && o >= r.at && o < r.at+4 {
			c = "EVIL"[o-r.at]
		}
		p[i] = c
	}
	r.off += len(p)
	return len(p), nil
}

// TestHTTP2BodyStageBeforeOrigin checks over h2c and TLS h2 that a body
// stage's verdict comes before the origin sees any byte of the body: the
// data plane reads the body up to the stage's limit first.
func TestHTTP2BodyStageBeforeOrigin(t *testing.T) {
	ca, err := dptest.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	origin, reqs, bytesIn := bodyOrigin(t)
	h2cPort, tlsPort := freePort(t), freePort(t)
	stage := &limitStage{limit: 64 << 10}
	src := certYAML(t, ca, "srv", true, "api.example.test") + pool("a", hostOf(origin.URL)) + fmt.Sprintf(`---
apiVersion: meridian/v1
kind: HTTPLoadBalancer
metadata: {name: lb, namespace: t}
spec:
  domains: ["*"]
  listeners: [{port: %d, address: 127.0.0.1, h2c: true}, {port: %d, address: 127.0.0.1, tls: {certificateRef: srv}}]
  defaultPool: a
`, h2cPort, tlsPort)
	startServer(t, src, Options{Stages: map[string]StageFactory{"waf": func(*config.VHost, *StageEnv) Stage { return stage }}})
	tlsClient := &http.Client{Timeout: 10 * time.Second, Transport: &http2.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool, ServerName: "api.example.test"}}}
	clients := []struct {
		name string
		c    *http.Client
		base string
	}{
		{"h2c", h2cClient(), fmt.Sprintf("http://127.0.0.1:%d", h2cPort)},
		{"h2", tlsClient, fmt.Sprintf("https://127.0.0.1:%d", tlsPort)},
	}
	cases := []struct {
		name      string
		size, at  int
		known     bool
		status    int
		originReq int64
	}{
		{"evil at the end of a body under the limit", 60 << 10, 60<<10 - 4, true, 403, 0},
		{"same, length unknown", 60 << 10, 60<<10 - 4, false, 403, 0},
		{"body over the limit", 200 << 10, -1, true, 413, 0},
		{"body at the limit", 64 << 10, -1, false, 200, 1},
		{"clean small body", 3000, -1, true, 200, 1},
	}
	for _, cl := range clients {
		for _, c := range cases {
			t.Run(cl.name+"/"+c.name, func(t *testing.T) {
				before, beforeBytes := reqs.Load(), bytesIn.Load()
				req, _ := http.NewRequest("POST", cl.base+"/up", &evilReader{n: c.size, at: c.at})
				if c.known {
					req.ContentLength = int64(c.size)
				}
				resp, err := cl.c.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != c.status || reqs.Load()-before != c.originReq {
					t.Fatalf("%d %q, origin requests %d", resp.StatusCode, b, reqs.Load()-before)
				}
				if c.status == 200 && (string(b) != fmt.Sprintf("got %d", c.size) || bytesIn.Load()-beforeBytes != int64(c.size)) {
					t.Fatalf("origin answer %q", b)
				}
				if c.status != 200 && bytesIn.Load() != beforeBytes {
					t.Fatalf("origin saw %d bytes of a refused body", bytesIn.Load()-beforeBytes)
				}
			})
		}
	}
}

// TestHTTP2RetryWithBody checks that an HTTP/2 request whose body is kept
// is replayed in full on the endpoint a retry picks, and that a larger
// body is not retried.
func TestHTTP2RetryWithBody(t *testing.T) {
	origin, _, bytesIn := bodyOrigin(t)
	dead := deadAddr // nothing listens there, unlike a port that was free a moment ago
	port := freePort(t)
	startServer(t, pool("a", dead, hostOf(origin.URL))+strings.Replace(bodyLB(port, ""), "address: 127.0.0.1}", "address: 127.0.0.1, h2c: true}", 1), Options{})
	c := h2cClient()
	url := fmt.Sprintf("http://127.0.0.1:%d/retry", port)
	for _, known := range []bool{true, false} {
		for i := 0; i < 6; i++ {
			before := bytesIn.Load()
			req, _ := http.NewRequest("POST", url, &evilReader{n: 50 << 10, at: -1})
			if known {
				req.ContentLength = 50 << 10
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(b) != fmt.Sprintf("got %d", 50<<10) || bytesIn.Load()-before != 50<<10 {
				t.Fatalf("known length %v, try %d: %d %q", known, i, resp.StatusCode, b)
			}
		}
	}
	bad := statusCount(t, 8, 502, func() (*http.Response, error) {
		req, _ := http.NewRequest("POST", url, &evilReader{n: 200 << 10, at: -1})
		return c.Do(req)
	})
	if bad == 0 {
		t.Fatal("a body over the replay limit was retried (or the dead endpoint was never picked)")
	}
}

// TestHTTP2SlowBody checks that an HTTP/2 body that stops arriving gets
// 408 after the body timeout.
func TestHTTP2SlowBody(t *testing.T) {
	origin, _, _ := bodyOrigin(t)
	port := freePort(t)
	startServer(t, pool("a", hostOf(origin.URL))+strings.Replace(bodyLB(port, ""), "address: 127.0.0.1}", "address: 127.0.0.1, h2c: true}", 1), Options{})
	for _, path := range []string{"/up", "/retry"} {
		t.Run(path, func(t *testing.T) {
			pr, pw := io.Pipe()
			defer pw.Close()
			go func() { _, _ = pw.Write([]byte("some bytes, then nothing")) }()
			req, _ := http.NewRequest("POST", fmt.Sprintf("http://127.0.0.1:%d%s", port, path), pr)
			t0 := time.Now()
			resp, err := h2cClient().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			// (The body timeout is 300ms; 8s leaves room for a loaded
			// machine, under the client's 10s.)
			if resp.StatusCode != 408 || time.Since(t0) > 8*time.Second {
				t.Fatalf("%d %q after %v", resp.StatusCode, b, time.Since(t0))
			}
		})
	}
}

// TestHTTP2GRPCStreamNotCutByBodyTimeout checks that a gRPC request body
// that pauses longer than the body timeout is not cut: streaming calls
// idle rightly.
func TestHTTP2GRPCStreamNotCutByBodyTimeout(t *testing.T) {
	ca, err := dptest.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	origin := newH2Origin(t, ca, false)
	port := freePort(t)
	startServer(t, fmt.Sprintf(`apiVersion: meridian/v1
kind: OriginPool
metadata: {name: g, namespace: t}
spec: {endpoints: [{address: %q}], protocol: h2c}
---
apiVersion: meridian/v1
kind: HTTPLoadBalancer
metadata: {name: lb, namespace: t}
spec:
  domains: ["*"]
  listeners: [{port: %d, address: 127.0.0.1, h2c: true}]
  defaultPool: g
  timeouts: {requestBody: 200ms}
`, hostOf(origin.srv.URL), port), Options{})
	for _, c := range []struct {
		contentType string
		status      int
	}{{"application/grpc", 200}, {"application/octet-stream", 408}} {
		t.Run(c.contentType, func(t *testing.T) {
			pr, pw := io.Pipe()
			answered := make(chan struct{})
			defer close(answered)
			go func() {
				_, _ = pw.Write([]byte("first "))
				if c.status == 408 {
					// The rest never comes: only the body timeout can
					// answer. (A pause of fixed length could shrink, as the
					// proxy sees it, when the client sends its first bytes
					// late on a loaded machine.)
					<-answered
				} else {
					time.Sleep(600 * time.Millisecond)
					_, _ = pw.Write([]byte("second"))
				}
				pw.Close()
			}()
			req, _ := http.NewRequest("POST", fmt.Sprintf("http://127.0.0.1:%d/svc/Method", port), pr)
			req.Header.Set("Content-Type", c.contentType)
			resp, err := h2cClient().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.status || c.status == 200 && !strings.HasSuffix(string(b), "body=first second") {
				t.Fatalf("%d %q", resp.StatusCode, b)
			}
		})
	}
}
