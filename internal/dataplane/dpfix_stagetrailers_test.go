package dataplane

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/meridian-platform/meridian/internal/dataplane/config"
)

// trailerRecorder is a stage that sees request and response trailers,
// reads request bodies (so that they stream through it), rewrites the
// response trailer X-Sum and removes X-Late.
type trailerRecorder struct {
	mu       sync.Mutex
	req, res []string
}

func (s *trailerRecorder) Name() string                                 { return "trailer-recorder" }
func (s *trailerRecorder) BufferRequestBody() int                       { return 1 }
func (s *trailerRecorder) OnRequestBody(*Exchange, []byte, bool) Action { return Continue }

func (s *trailerRecorder) OnRequestTrailers(x *Exchange, t Headers) Action {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.req = append(s.req, string(x.Path)+":"+dumpHeaders(t))
	return Continue
}

func (s *trailerRecorder) OnResponseTrailers(x *Exchange, t Headers) Action {
	s.mu.Lock()
	s.res = append(s.res, string(x.Path)+":"+dumpHeaders(t))
	s.mu.Unlock()
	t.Set("X-Sum", "rewritten")
	t.Del("X-Late")
	return Continue
}

func dumpHeaders(t Headers) string {
	var kv []string
	t.VisitAll(func(k, v []byte) { kv = append(kv, string(k)+"="+string(v)) })
	sort.Strings(kv)
	return strings.Join(kv, ",")
}

// TestTrailerStagesHTTP1: the trailer stages run for an HTTP/1.1 client
// with a request-body stage on the fast path (HTTP/1.1 pool: request
// trailers of a streamed body, response trailers of an answer read whole)
// and towards an HTTP/2 pool (request trailers, response trailers of the
// answer as it streams), with their changes applied.
// TestTrailerStagesAllProtocols covers the other protocol pairs.
func TestTrailerStagesHTTP1(t *testing.T) {
	o := trailerOrigin(t)
	port := freePort(t)
	src := h1AndH2CPools("h1", "h2", hostOf(o.URL)) +
		lbDoc([]string{listenerAt(port)}, "{match: {pathPrefix: /h2}, pool: h2}", "{pool: h1}")
	st := &trailerRecorder{}
	startServer(t, src, Options{HTTP1Engine: EngineGoroutine, Stages: map[string]StageFactory{"waf": func(*config.VHost, *StageEnv) Stage { return st }}})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	const chunked = "Trailer: X-Checksum\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-Checksum: abc\r\n\r\n"
	resp, body := rawHTTP1(t, addr, "POST /h1 HTTP/1.1\r\nHost: a\r\n"+chunked)
	if resp.StatusCode != 200 || !strings.HasPrefix(body, "body=hello;trailers=X-Checksum=abc") {
		t.Fatalf("h1 pool: %d %q", resp.StatusCode, body)
	}
	if resp.Trailer.Get("X-Sum") != "rewritten" || resp.Trailer.Get("X-Late") != "" {
		t.Fatalf("response trailers %v: the stage's changes were not applied", resp.Trailer)
	}
	resp, body = rawHTTP1(t, addr, "POST /h2 HTTP/1.1\r\nHost: a\r\n"+chunked)
	if resp.StatusCode != 200 || !strings.HasPrefix(body, "body=hello;trailers=X-Checksum=abc") {
		t.Fatalf("h2 pool: %d %q", resp.StatusCode, body)
	}
	if resp.Trailer.Get("X-Sum") != "rewritten" || resp.Trailer.Get("X-Late") != "" {
		t.Fatalf("h2 pool: response trailers %v: the stage's changes were not applied", resp.Trailer)
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if got := strings.Join(st.req, " "); got != "/h1:X-Checksum=abc /h2:X-Checksum=abc" {
		t.Fatalf("request trailers seen: %q", got)
	}
	if got := strings.Join(st.res, " "); got != "/h1:X-Late=late,X-Sum=5 /h2:X-Late=late,X-Sum=5" {
		t.Fatalf("response trailers seen: %q", got)
	}
}
