package dataplane

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meridian-platform/meridian/internal/dataplane/config"
)

// patternReader yields n bytes of a repeating pattern without holding
// them in memory.
type patternReader struct{ left int64 }

func (r *patternReader) Read(p []byte) (int, error) {
	if r.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.left {
		p = p[:r.left]
	}
	for i := range p {
		p[i] = 'a' + byte(i%26)
	}
	r.left -= int64(len(p))
	return len(p), nil
}

// limitStage asks for limit bytes up front and refuses bodies longer
// than that (413) or holding "EVIL" (403), the way a WAF with a reject
// limit does: it counts what it has seen.
type limitStage struct {
	limit int
	first atomic.Int64 // length of the first chunk, +1 if it was the end
}

func (s *limitStage) Name() string           { return "waf" }
func (s *limitStage) BufferRequestBody() int { return s.limit }
func (s *limitStage) OnRequestBody(x *Exchange, chunk []byte, end bool) Action {
	if x.Reply.Status == 0 && s.first.Load() == 0 {
		v := int64(len(chunk)) * 2
		if end {
			v++
		}
		s.first.Store(v)
	}
	if len(chunk) > s.limit {
		x.Reply = Reply{Status: 413, Body: []byte("too large")}
		return Respond
	}
	if bytes.Contains(chunk, []byte("EVIL")) {
		x.Reply = Reply{Status: 403, Body: []byte("blocked")}
		return Respond
	}
	return Continue
}

// readAhead is a limitStage that asks for n bytes up front.
type readAhead struct {
	*limitStage
	n int
}

func (r *readAhead) BufferRequestBody() int { return r.n }

// bodyOrigin counts the requests and bytes it receives.
func bodyOrigin(t *testing.T) (*httptest.Server, *atomic.Int64, *atomic.Int64) {
	var reqs, bytesIn atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reqs.Add(1)
		n, _ := io.Copy(io.Discard, r.Body)
		bytesIn.Add(n)
		fmt.Fprintf(w, "got %d", n)
	}))
	t.Cleanup(srv.Close)
	return srv, &reqs, &bytesIn
}

func bodyLB(port int, extra string) string {
	return fmt.Sprintf(`---
apiVersion: meridian/v1
kind: HTTPLoadBalancer
metadata: {name: lb, namespace: t}
spec:
  domains: ["*"]
  listeners: [{port: %d, address: 127.0.0.1}]
  defaultPool: a
  timeouts: {requestBody: 300ms}
  routes:
    - match: {pathPrefix: /retry}
      pool: a
      retries: {attempts: 1, on: [connect-failure, 503], retryNonIdempotent: true, budget: {minRetriesPerSecond: 1000}}
    - match: {pathPrefix: /}
      pool: a
%s`, port, extra)
}

// TestHTTP1LargeBodyMemory sends 100 MiB bodies (with a length, chunked,
// on a retried route and through a body stage) and checks the heap never
// grows by anything like the body size.
func TestHTTP1LargeBodyMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 400 MiB")
	}
	origin, _, bytesIn := bodyOrigin(t)
	port, stagedPort := freePort(t), freePort(t)
	// What is measured here is memory: the body timeout (TestHTTP1SlowBody
	// checks it) is long enough for a client starved of CPU on a loaded
	// machine, which pauses between writes, seen from the node, for longer
	// than bodyLB's 300 ms.
	lb := func(port int) string {
		src := strings.Replace(bodyLB(port, ""), "requestBody: 300ms", "requestBody: 30s", 1)
		if !strings.Contains(src, "requestBody: 30s") {
			t.Fatal("bodyLB has no 300 ms body timeout to replace")
		}
		return src
	}
	startServer(t, pool("a", hostOf(origin.URL))+lb(port), Options{})
	// A body stage that reads the first MiB ahead and lets the rest stream.
	stage := &limitStage{limit: 1 << 30}
	startServer(t, pool("a", hostOf(origin.URL))+strings.Replace(lb(stagedPort), "name: lb,", "name: staged,", 1),
		Options{Stages: map[string]StageFactory{"waf": func(*config.VHost, *StageEnv) Stage { return &readAhead{limitStage: stage, n: 1 << 20} }}})
	const size = 100 << 20
	cases := []struct {
		name, path string
		port       int
		chunked    bool
	}{
		{"content-length", "/up", port, false},
		{"chunked", "/up", port, true},
		{"retried route, content-length", "/retry", port, false},
		{"retried route, chunked", "/retry", port, true},
		{"body stage, content-length", "/up", stagedPort, false},
		{"body stage, chunked", "/up", stagedPort, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			base0 := ms.HeapInuse
			var peak atomic.Uint64
			stop := make(chan struct{})
			done := make(chan struct{})
			go func() {
				defer close(done)
				var m runtime.MemStats
				for {
					select {
					case <-stop:
						return
					case <-time.After(20 * time.Millisecond):
					}
					runtime.ReadMemStats(&m)
					if m.HeapInuse > peak.Load() {
						peak.Store(m.HeapInuse)
					}
				}
			}()
			before := bytesIn.Load()
			req, _ := http.NewRequest("POST", fmt.Sprintf("http://127.0.0.1:%d%s", c.port, c.path), &patternReader{left: size})
			if !c.chunked {
				req.ContentLength = size
			}
			resp, err := (&http.Client{Timeout: 60 * time.Second}).Do(req)
			close(stop)
			<-done
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(b) != fmt.Sprintf("got %d", size) || bytesIn.Load()-before != size {
				t.Fatalf("%d %q, origin got %d bytes", resp.StatusCode, b, bytesIn.Load()-before)
			}
			grew := int64(peak.Load()) - int64(base0)
			if grew > 32<<20 {
				t.Fatalf("heap grew by %d MiB while a 100 MiB body passed", grew>>20)
			}
			t.Logf("heap in use grew by at most %.1f MiB", float64(grew)/(1<<20))
		})
	}
}

// TestHTTP1SlowBody checks that a body that stops arriving gets 408 once
// the body timeout has passed, on every body path, and that the node
// serves others meanwhile.
func TestHTTP1SlowBody(t *testing.T) {
	origin, reqs, _ := bodyOrigin(t)
	port, stagedPort := freePort(t), freePort(t)
	stage := &limitStage{limit: 1024}
	src := pool("a", hostOf(origin.URL)) + bodyLB(port, "")
	startServer(t, src, Options{})
	staged := pool("a", hostOf(origin.URL)) + strings.Replace(bodyLB(stagedPort, ""), "name: lb,", "name: staged,", 1)
	startServer(t, staged, Options{Stages: map[string]StageFactory{"waf": func(*config.VHost, *StageEnv) Stage { return stage }}})
	cases := []struct {
		name, port, req string
	}{
		{"streamed, length", fmt.Sprint(port), "POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n" + strings.Repeat("x", 20000)},
		{"streamed, chunked", fmt.Sprint(port), "POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n0123456789abcdef\r\n"},
		{"kept for replay", fmt.Sprint(port), "POST /retry HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\nabc"},
		{"kept for replay, chunked", fmt.Sprint(port), "POST /retry HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n"},
		{"read for a stage", fmt.Sprint(stagedPort), "POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\nabc"},
		{"head only", fmt.Sprint(port), "POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", "127.0.0.1:"+c.port)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(15 * time.Second))
			t0 := time.Now()
			if _, err := io.WriteString(conn, c.req); err != nil {
				t.Fatal(err)
			}
			// Others are served while this body hangs.
			if resp, body := get(t, "http://127.0.0.1:"+c.port+"/other", map[string]string{"Host": "a"}); resp.StatusCode != 200 {
				t.Fatalf("other client: %d %q", resp.StatusCode, body)
			}
			got, _ := io.ReadAll(conn)
			if !strings.HasPrefix(string(got), "HTTP/1.1 408") {
				t.Fatalf("after %v: %q", time.Since(t0), got)
			}
			// (The body timeout is 300ms: 8s leaves room for a loaded
			// machine and still tells it from any other timeout.)
			if d := time.Since(t0); d > 8*time.Second {
				t.Fatalf("408 after %v", d)
			}
		})
	}
	_ = reqs
}

// TestHTTP1BodyStageLimit checks that a stage asking for N bytes gets the
// whole body when it has at most N bytes, and N+1 bytes with end false
// when it is longer, before the origin sees anything.
func TestHTTP1BodyStageLimit(t *testing.T) {
	origin, reqs, _ := bodyOrigin(t)
	port := freePort(t)
	stage := &limitStage{limit: 4096}
	startServer(t, pool("a", hostOf(origin.URL))+bodyLB(port, ""), Options{Stages: map[string]StageFactory{"waf": func(*config.VHost, *StageEnv) Stage { return stage }}})
	cases := []struct {
		name      string
		size      int
		chunked   bool
		status    int
		first     int64 // 2*len(first chunk) + end
		originReq int64
	}{
		{"at the limit", 4096, false, 200, 2*4096 + 1, 1},
		{"at the limit, chunked", 4096, true, 200, 2*4096 + 1, 1},
		{"one over", 4097, false, 413, 2 * 4097, 0},
		{"one over, chunked", 4097, true, 413, 2 * 4097, 0},
		{"far over", 10 << 20, false, 413, 2 * 4097, 0},
		{"small", 10, false, 200, 2*10 + 1, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			stage.first.Store(0)
			before := reqs.Load()
			var rd io.Reader = &patternReader{left: int64(c.size)}
			req, _ := http.NewRequest("POST", fmt.Sprintf("http://127.0.0.1:%d/up", port), rd)
			if !c.chunked {
				req.ContentLength = int64(c.size)
			}
			var resp *http.Response
			if c.size > 1<<20 {
				// The proxy answers 413 and closes while megabytes are still
				// on their way: the client's write then meets a reset, and
				// net/http's client reports that instead of the answer it
				// already has. Write and read on a raw connection side by
				// side, as a browser uploading a file does.
				resp = postWhileReading(t, port, req)
			} else {
				var err error
				if resp, err = http.DefaultClient.Do(req); err != nil {
					t.Fatal(err)
				}
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.status || stage.first.Load() != c.first || reqs.Load()-before != c.originReq {
				t.Fatalf("status %d, first chunk %d, origin requests %d", resp.StatusCode, stage.first.Load(), reqs.Load()-before)
			}
		})
	}
}

// postWhileReading writes req on a new connection to port in the
// background and returns the answer read meanwhile (write errors after
// the answer started are expected and ignored).
func postWhileReading(t *testing.T, port int, req *http.Request) *http.Response {
	t.Helper()
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	go req.Write(c) //nolint:errcheck // the proxy may close before the body is sent
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), req)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	return resp
}

// TestHTTP1RetryWithBody checks that a request body small enough to be
// kept is sent whole to the endpoint a retry picks, and that a large
// body is not retried (it was not kept).
func TestHTTP1RetryWithBody(t *testing.T) {
	origin, _, bytesIn := bodyOrigin(t)
	dead := deadAddr // nothing listens there, unlike a port that was free a moment ago
	port := freePort(t)
	startServer(t, pool("a", dead, hostOf(origin.URL))+bodyLB(port, ""), Options{})
	url := fmt.Sprintf("http://127.0.0.1:%d/retry", port)
	for _, chunked := range []bool{false, true} {
		for i := 0; i < 6; i++ {
			before := bytesIn.Load()
			var rd io.Reader = &patternReader{left: 50 << 10}
			req, _ := http.NewRequest("POST", url, rd)
			if !chunked {
				req.ContentLength = 50 << 10
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(b) != fmt.Sprintf("got %d", 50<<10) || bytesIn.Load()-before != 50<<10 {
				t.Fatalf("chunked=%v try %d: %d %q", chunked, i, resp.StatusCode, b)
			}
		}
	}
	// 200 KiB is over the replay limit: it streams and is not retried, so
	// the dead endpoint shows through.
	bad := statusCount(t, 8, 502, func() (*http.Response, error) {
		return http.Post(url, "application/octet-stream", &patternReader{left: 200 << 10})
	})
	if bad == 0 {
		t.Fatal("a streamed body was retried (or the dead endpoint was never picked)")
	}
}

// TestSharedPortTimeouts runs two load balancers on one port: before the
// Host is known the strictest header timeout applies; the body timeout is
// the one of the load balancer the Host names.
func TestSharedPortTimeouts(t *testing.T) {
	origin, _, _ := bodyOrigin(t)
	port := freePort(t)
	lb := func(name, domain, timeouts string) string {
		return fmt.Sprintf(`---
apiVersion: meridian/v1
kind: HTTPLoadBalancer
metadata: {name: %s, namespace: t}
spec:
  domains: [%s]
  listeners: [{port: %d, address: 127.0.0.1}]
  defaultPool: a
  timeouts: %s
`, name, domain, port, timeouts)
	}
	startServer(t, pool("a", hostOf(origin.URL))+
		lb("fast-body", "a.test", "{requestHeader: 10s, requestBody: 300ms, idle: 60s}")+
		lb("slow-body", "b.test", "{requestHeader: 300ms, requestBody: 10s, idle: 60s}"), Options{})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	// answer sends req and returns what came back within wait (timedOut:
	// nothing came and the connection stayed open).
	answer := func(req string, wait time.Duration) (got string, timedOut bool) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(wait))
		if _, err := io.WriteString(c, req); err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(c)
		ne, ok := err.(net.Error)
		return string(b), ok && ne.Timeout()
	}
	cases := []struct {
		name, req string
		cut       bool // cut off (408 or closed) within a second
	}{
		{"slow body, fast-body host", "POST / HTTP/1.1\r\nHost: a.test\r\nContent-Length: 100000\r\n\r\n" + strings.Repeat("x", 10000), true},
		{"slow body, slow-body host", "POST / HTTP/1.1\r\nHost: b.test\r\nContent-Length: 100000\r\n\r\n" + strings.Repeat("x", 10000), false},
		{"slow head: strictest header timeout", "GET / HTTP/1.1\r\nHost: a.test\r\nX-Slow: ", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, timedOut := answer(c.req, time.Second)
			if c.cut == timedOut {
				t.Fatalf("cut off %v, want %v (got %q)", !timedOut, c.cut, got)
			}
			if c.cut && strings.HasPrefix(c.req, "POST") && !strings.HasPrefix(got, "HTTP/1.1 408") {
				t.Fatalf("got %q", got)
			}
		})
	}
}

// TestHTTP1MirrorWithBody checks that a mirrored request's body reaches
// the shadow pool whole when it is small enough to keep, and that a
// larger (streamed) body goes to the origin only, never truncated.
func TestHTTP1MirrorWithBody(t *testing.T) {
	origin, _, bytesIn := bodyOrigin(t)
	shadow, shadowReqs, shadowBytes := bodyOrigin(t)
	port := freePort(t)
	startServer(t, pool("a", hostOf(origin.URL))+"---\n"+pool("shadow", hostOf(shadow.URL))+fmt.Sprintf(`---
apiVersion: meridian/v1
kind: HTTPLoadBalancer
metadata: {name: lb, namespace: t}
spec:
  domains: ["*"]
  listeners: [{port: %d, address: 127.0.0.1}]
  routes: [{pool: a, mirror: {pool: shadow}}]
`, port), Options{})
	url := fmt.Sprintf("http://127.0.0.1:%d/m", port)
	for _, c := range []struct {
		size       int64
		chunked    bool
		mirrorGets int64 // bytes the shadow gets
	}{
		{10 << 10, false, 10 << 10},
		{10 << 10, true, 10 << 10},
		{300 << 10, false, 0},
		{300 << 10, true, 0},
	} {
		before, sBefore, sReqs := bytesIn.Load(), shadowBytes.Load(), shadowReqs.Load()
		req, _ := http.NewRequest("POST", url, &patternReader{left: c.size})
		if !c.chunked {
			req.ContentLength = c.size
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || bytesIn.Load()-before != c.size {
			t.Fatalf("size %d chunked %v: %d, origin got %d bytes", c.size, c.chunked, resp.StatusCode, bytesIn.Load()-before)
		}
		if c.mirrorGets > 0 {
			deadline := time.Now().Add(15 * time.Second)
			for shadowBytes.Load()-sBefore < c.mirrorGets && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			if got := shadowBytes.Load() - sBefore; got != c.mirrorGets {
				t.Fatalf("size %d chunked %v: the shadow got %d bytes", c.size, c.chunked, got)
			}
		} else {
			time.Sleep(50 * time.Millisecond)
			if shadowReqs.Load() != sReqs {
				t.Fatalf("size %d chunked %v: a streamed body was mirrored", c.size, c.chunked)
			}
		}
	}
}

// TestHTTP2IdleTimeoutReload checks that a reload's new idle timeout
// applies to new HTTP/2 connections.
func TestHTTP2IdleTimeoutReload(t *testing.T) {
	origin, _, _ := bodyOrigin(t)
	port := freePort(t)
	src := func(idle string) string {
		return pool("a", hostOf(origin.URL)) + fmt.Sprintf(`---
apiVersion: meridian/v1
kind: HTTPLoadBalancer
metadata: {name: lb, namespace: t}
spec:
  domains: ["*"]
  listeners: [{port: %d, address: 127.0.0.1, h2c: true}]
  defaultPool: a
  timeouts: {idle: %s}
`, port, idle)
	}
	s := startServer(t, src("60s"), Options{})
	// closedWithin opens an h2c connection and says whether the server
	// closes it, idle, within d.
	closedWithin := func(d time.Duration) bool {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		// Client preface and an empty SETTINGS frame.
		if _, err := c.Write(append(append([]byte(nil), h2Preface...), 0, 0, 0, 4, 0, 0, 0, 0, 0)); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(d))
		_, err = io.Copy(io.Discard, c)
		ne, ok := err.(net.Error)
		return !(ok && ne.Timeout())
	}
	if closedWithin(500 * time.Millisecond) {
		t.Fatal("closed before the 60s idle timeout")
	}
	apply(t, s, src("200ms"))
	if !closedWithin(3 * time.Second) {
		t.Fatal("the reloaded 200ms idle timeout did not close a new HTTP/2 connection")
	}
}
