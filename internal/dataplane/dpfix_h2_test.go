package dataplane

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/meridian-platform/meridian/internal/dataplane/config"
	"github.com/meridian-platform/meridian/internal/dataplane/h1"
)

// TestH2ClientRequestTrailers: an HTTP/2 client's request trailers reach
// HTTP/2 and HTTP/1.1 origins as trailers, after the request-trailer
// stages saw them; a stage can refuse the request on them.
func TestH2ClientRequestTrailers(t *testing.T) {
	o := trailerOrigin(t) // HTTP/1.1 and h2c
	port := freePort(t)
	src := h1AndH2CPools("h1", "h2", hostOf(o.URL)) +
		lbDoc([]string{listenerAt(port, "h2c: true")}, "{match: {pathPrefix: /h1}, pool: h1}", "{pool: h2}")
	st := &trailerStage{}
	startServer(t, src, Options{Stages: map[string]StageFactory{"waf": func(*config.VHost, *StageEnv) Stage { return st }}})
	c := h2cClient()
	for round, path := range []string{"/h2", "/h1", "/h2", "/h1"} {
		known := round >= 2 // a body of known length (HTTP/1.1 needs chunked to carry trailers)
		for _, sum := range []string{"abc", "bad"} {
			pr, pw := io.Pipe()
			req, _ := http.NewRequest("POST", fmt.Sprintf("http://127.0.0.1:%d%s", port, path), pr)
			req.ContentLength = -1
			if known {
				req.ContentLength = 5
			}
			req.Trailer = http.Header{"X-Checksum": nil}
			go func() {
				io.WriteString(pw, "hello")
				req.Trailer.Set("X-Checksum", sum)
				pw.Close()
			}()
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if sum == "bad" {
				if resp.StatusCode != 400 || !strings.Contains(string(b), "bad checksum") {
					t.Fatalf("%s: a stage refusing the trailers: %d %q", path, resp.StatusCode, b)
				}
				continue
			}
			if resp.StatusCode != 200 || !strings.HasPrefix(string(b), "body=hello;trailers=X-Checksum=abc") {
				t.Fatalf("%s: %d %q", path, resp.StatusCode, b)
			}
		}
	}
	if got := st.seen(); got != strings.Repeat("X-Checksum=abc,X-Checksum=bad,", 3)+"X-Checksum=abc,X-Checksum=bad" {
		t.Fatalf("the stage saw %q", got)
	}
}

// trailerStage records request trailers and refuses X-Checksum: bad.
type trailerStage struct {
	mu  sync.Mutex
	got []string
}

func (s *trailerStage) Name() string { return "trailers" }

func (s *trailerStage) OnRequestTrailers(x *Exchange, t Headers) Action {
	v, _ := t.Peek("X-Checksum")
	s.mu.Lock()
	s.got = append(s.got, "X-Checksum="+string(v))
	s.mu.Unlock()
	if string(v) == "bad" {
		x.respond(400, "bad checksum\n")
		return Respond
	}
	return Continue
}

func (s *trailerStage) seen() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.got, ",")
}

// TestH2HeadLimits: the request-head limits of the HTTP/1.1 path hold on
// HTTP/2: 414 for a long :path, 431 for a large header list.
func TestH2HeadLimits(t *testing.T) {
	backend, _ := echoBackend(t, "a")
	port := freePort(t)
	startServer(t, pool("a", hostOf(backend.URL))+lbSpec(`["*"]`, []string{listenerAt(port, "h2c: true")}, "defaultPool: a"), Options{Limits: h1.Limits{MaxURI: 1024, MaxHeaderBytes: 4096}})
	c := h2cClient()
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	cases := []struct {
		name, path string
		header     string
		want       int
	}{
		{"within", "/ok", "", 200},
		{"long path", "/" + strings.Repeat("p", 1100), "", 414},
		{"large header list", "/ok", strings.Repeat("h", 5000), 431},
	}
	for _, tc := range cases {
		req, _ := http.NewRequest("GET", base+tc.path, nil)
		if tc.header != "" {
			req.Header.Set("X-Big", tc.header)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Fatalf("%s: %d, want %d", tc.name, resp.StatusCode, tc.want)
		}
	}
}

// TestH2ClientAffinity: cookie session affinity on the HTTP/2 client path:
// the first answer sets the cookie, later requests carrying it stay on
// that endpoint.
func TestH2ClientAffinity(t *testing.T) {
	var names []string
	var addrs []string
	for _, n := range []string{"a", "b", "c"} {
		n := n
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, n) }))
		t.Cleanup(s.Close)
		names = append(names, n)
		addrs = append(addrs, fmt.Sprintf("{address: %q}", hostOf(s.URL)))
	}
	port := freePort(t)
	startServer(t, fmt.Sprintf(`apiVersion: meridian/v1
kind: OriginPool
metadata: {name: sticky, namespace: t}
spec: {endpoints: [%s], sessionAffinity: {cookie: srv}}
---
apiVersion: meridian/v1
kind: HTTPLoadBalancer
metadata: {name: lb, namespace: t}
spec: {domains: ["*"], listeners: [{port: %d, address: 127.0.0.1, h2c: true}], defaultPool: sticky}
`, strings.Join(addrs, ", "), port), Options{})
	c := h2cClient()
	get := func(cookie string) (string, string) {
		req, _ := http.NewRequest("GET", fmt.Sprintf("http://127.0.0.1:%d/", port), nil)
		if cookie != "" {
			req.Header.Set("Cookie", "srv="+cookie)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		set := ""
		for _, ck := range resp.Cookies() {
			if ck.Name == "srv" {
				set = ck.Value
			}
		}
		return string(b), set
	}
	first, cookie := get("")
	if cookie == "" {
		t.Fatal("no affinity cookie on an HTTP/2 answer")
	}
	seen := map[string]bool{}
	for i := 0; i < 12; i++ {
		got, set := get(cookie)
		if got != first || set != "" {
			t.Fatalf("pinned to %s, answered by %s (cookie set again: %q)", first, got, set)
		}
		other, _ := get("")
		seen[other] = true
	}
	var spread []string
	for n := range seen {
		spread = append(spread, n)
	}
	sort.Strings(spread)
	if len(spread) < 2 {
		t.Fatalf("requests without the cookie all went to %v of %v", spread, names)
	}
}

// TestH2StreamedBodyBytesCounted: a request body of unknown length from
// an HTTP/2 client counts in the request byte metric.
func TestH2StreamedBodyBytesCounted(t *testing.T) {
	backend, _ := echoBackend(t, "a")
	reg := prometheus.NewRegistry()
	port := freePort(t)
	startServer(t, pool("a", hostOf(backend.URL))+lbSpec(`["*"]`, []string{listenerAt(port, "h2c: true")}, "defaultPool: a"), Options{Metrics: reg})
	counted := func() float64 {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == "meridian_http_request_bytes_total" {
				var n float64
				for _, m := range mf.GetMetric() {
					n += m.GetCounter().GetValue()
				}
				return n
			}
		}
		return 0
	}
	before := counted()
	pr, pw := io.Pipe()
	go func() {
		for i := 0; i < 3; i++ {
			_, _ = pw.Write(make([]byte, 1000))
		}
		pw.Close()
	}()
	req, _ := http.NewRequest("POST", fmt.Sprintf("http://127.0.0.1:%d/", port), pr)
	req.ContentLength = -1
	resp, err := h2cClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if got := counted() - before; got != 3000 {
		t.Fatalf("request bytes counted %v, want 3000", got)
	}
}
