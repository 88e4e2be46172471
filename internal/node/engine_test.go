package node

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/meridian-platform/meridian/internal/testfixture"
)

// TestRunStandaloneEngines runs the node with its default HTTP/1.1 engine
// (the event loop) and with --http1-engine goroutine: requests are
// forwarded with the same headers, counted on /metrics, a reload changes
// routing while a kept connection goes on, and the node drains on
// shutdown; /metrics says which engine served them.
func TestRunStandaloneEngines(t *testing.T) {
	for _, engine := range []string{"", "evloop", "goroutine"} {
		t.Run("engine="+engine, func(t *testing.T) { testRunStandaloneEngine(t, engine) })
	}
}

func testRunStandaloneEngine(t *testing.T, engine string) {
	idForm := regexp.MustCompile(`^[0-9a-f]{32}$`)
	origin := func(name string) *httptest.Server {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "%s %s xff=%s xfp=%s rid=%v", name, r.URL.Path, r.Header.Get("X-Forwarded-For"),
				r.Header.Get("X-Forwarded-Proto"), idForm.MatchString(r.Header.Get("X-Request-Id")))
		}))
		t.Cleanup(s.Close)
		return s
	}
	a, b := origin("a"), origin("b")
	dir := t.TempDir()
	port := testfixture.FreePort(t)
	conf := func(extraRoute string) string {
		return fmt.Sprintf(`apiVersion: meridian/v1
kind: OriginPool
metadata: {name: a}
spec: {endpoints: [{address: %q}]}
---
apiVersion: meridian/v1
kind: OriginPool
metadata: {name: b}
spec: {endpoints: [{address: %q}]}
---
apiVersion: meridian/v1
kind: HTTPLoadBalancer
metadata: {name: site}
spec:
  domains: ["*"]
  listeners: [{port: %d, address: 127.0.0.1}]
  routes:%s
    - {match: {pathPrefix: /}, pool: a}
`, strings.TrimPrefix(a.URL, "http://"), strings.TrimPrefix(b.URL, "http://"), port, extraRoute)
	}
	writeFile(t, filepath.Join(dir, "site.yaml"), conf(""))
	if err := RunStandalone(context.Background(), Options{ConfigPath: dir, HTTP1Engine: "evloops"}); err == nil ||
		!strings.Contains(err.Error(), `HTTP1Engine: "evloops" is not an HTTP/1.1 engine`) {
		t.Fatalf("unknown engine: %v", err)
	}
	adminURL, stop := startStandalone(t, Options{ConfigPath: dir, HTTP1Engine: engine})
	addr := fmt.Sprintf("127.0.0.1:%d", port)

	// One kept connection across the reload.
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	ask := func(path string) string {
		t.Helper()
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: shop.test\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n", path)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return strconv.Itoa(resp.StatusCode) + " " + string(body)
	}
	for i := 0; i < 3; i++ {
		if got := ask("/b/x"); got != "200 a /b/x xff=127.0.0.1 xfp=http rid=true" {
			t.Fatalf("before reload: %q", got)
		}
	}
	// The node counts a request once its answer is written: the counters
	// may lag the answer the client has read by a moment.
	reqs := regexp.MustCompile(`meridian_http_requests_total\{code="2xx",loadbalancer="site",namespace="default",pool="a",route="default/site#0"\} 3\b`)
	evReqs := regexp.MustCompile(`meridian_evloop_requests_total\{listener="` + regexp.QuoteMeta(addr) + `"\} 3\b`)
	want := engine != "goroutine"
	var m string
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, m = testfixture.Get(adminURL + "/metrics")
		if reqs.MatchString(m) && evReqs.MatchString(m) == want || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !reqs.MatchString(m) {
		t.Errorf("metrics lack the 3 requests of pool a:\n%s", grepLines(m, "meridian_http_requests_total"))
	}
	if evServed := evReqs.MatchString(m); evServed != want {
		t.Errorf("engine %q: event loop served the 3 requests: %v, want %v\n%s", engine, evServed, want, grepLines(m, "evloop"))
	}
	writeFile(t, filepath.Join(dir, "site.yaml"), conf("\n    - {match: {pathPrefix: /b}, pool: b}"))
	testfixture.WaitFor(t, "reload", func() bool {
		_, body := testfixture.Get("http://" + addr + "/b/y")
		return strings.HasPrefix(body, "b ")
	})
	if got := ask("/b/x"); got != "200 b /b/x xff=127.0.0.1 xfp=http rid=true" {
		t.Fatalf("kept connection after reload: %q", got)
	}
	stop()
	// The idle kept connection was closed by the drain.
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	if n, err := br.ReadByte(); err == nil {
		t.Fatalf("kept connection still open after shutdown (read %q)", n)
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
