package dataplane

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// retryOrigin answers 503 with a body when bad, else 200 with its name;
// it speaks HTTP/1.1 and h2c.
func retryOrigin(t *testing.T, name string, bad bool, hits *atomic.Int64) *httptest.Server {
	o := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		if bad {
			w.WriteHeader(503)
			fmt.Fprint(w, "overloaded:"+name)
			return
		}
		fmt.Fprint(w, "ok:"+name)
	}))
	startH2C(t, o, true)
	return o
}

// TestRetriesOnNetHTTPPaths checks the retry loop the HTTP/2 client path
// and the HTTP/1.1-client-to-HTTP/2-pool path share (and, for agreement,
// the HTTP/1.1 fast path): a retry goes to another endpoint, only
// idempotent methods are retried unless the route allows others, and
// when the budget allows no retry the last answer reaches the client
// whole.
func TestRetriesOnNetHTTPPaths(t *testing.T) {
	var goodHits, badHits, onlyHits atomic.Int64
	good := retryOrigin(t, "good", false, &goodHits)
	bad := retryOrigin(t, "bad", true, &badHits)
	only := retryOrigin(t, "only", true, &onlyHits)
	for _, proto := range []string{"http1", "h2c"} {
		port := freePort(t)
		src := fmt.Sprintf(`apiVersion: meridian/v1
kind: OriginPool
metadata: {name: two, namespace: t}
spec: {endpoints: [{address: %q}, {address: %q}], protocol: %s}
---
apiVersion: meridian/v1
kind: OriginPool
metadata: {name: one, namespace: t}
spec: {endpoints: [{address: %q}], protocol: %s}
`, hostOf(good.URL), hostOf(bad.URL), proto, hostOf(only.URL), proto) + lbDoc([]string{listenerAt(port, "h2c: true")},
			`{match: {pathPrefix: /two}, pool: two, retries: {attempts: 1, "on": [503], budget: {minRetriesPerSecond: 1000}}}`,
			`{match: {pathPrefix: /post}, pool: two, retries: {attempts: 1, "on": [503], retryNonIdempotent: true, budget: {minRetriesPerSecond: 1000}}}`,
			`{match: {pathPrefix: /one}, pool: one, retries: {attempts: 3, "on": [503], budget: {percent: 1, minRetriesPerSecond: 1}}}`)
		startServer(t, src, Options{})
		base := fmt.Sprintf("http://127.0.0.1:%d", port)
		for cname, c := range map[string]*http.Client{"http1 client": {}, "h2c client": h2cClient()} {
			t.Run(proto+" pool/"+cname, func(t *testing.T) {
				do := func(method, path, body string) (int, string) {
					t.Helper()
					req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
					resp, err := c.Do(req)
					if err != nil {
						t.Fatal(err)
					}
					b, err := io.ReadAll(resp.Body)
					resp.Body.Close()
					if err != nil {
						t.Fatalf("reading the answer: %v", err)
					}
					return resp.StatusCode, string(b)
				}
				// GET: a 503 is retried on the other endpoint.
				b0 := badHits.Load()
				for i := 0; i < 20; i++ {
					if code, body := do("GET", "/two", ""); code != 200 || body != "ok:good" {
						t.Fatalf("GET %d: %d %q", i, code, body)
					}
				}
				if badHits.Load() == b0 {
					t.Fatal("the failing endpoint was never tried: round robin should reach it")
				}
				// POST is not retried unless the route says so.
				var failed int
				for i := 0; i < 20; i++ {
					code, _ := do("POST", "/two", "payload")
					if code == 503 {
						failed++
					}
				}
				if failed == 0 {
					t.Fatal("POST was retried without retryNonIdempotent")
				}
				for i := 0; i < 20; i++ {
					if code, body := do("POST", "/post", "payload"); code != 200 || body != "ok:good" {
						t.Fatalf("POST with retryNonIdempotent: %d %q", code, body)
					}
				}
				// The budget runs out: the last answer comes through whole.
				for i := 0; i < 10; i++ {
					if code, body := do("GET", "/one", ""); code != 503 || body != "overloaded:only" {
						t.Fatalf("answer when no retry is left: %d %q", code, body)
					}
				}
			})
		}
	}
}

// TestPerTryTimeoutOnNetHTTPPaths: the retry policy's per-try timeout
// bounds each try on the HTTP/2 client path and towards HTTP/2 pools, as
// on the HTTP/1.1 fast path: a stalled origin gets 504 near it, long
// before the route's timeout.
func TestPerTryTimeoutOnNetHTTPPaths(t *testing.T) {
	release := make(chan struct{})
	o := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	startH2C(t, o, true)
	defer close(release) // before the origin closes (the test's cleanup)
	for _, proto := range []string{"http1", "h2c"} {
		port := freePort(t)
		startServer(t, poolWith("p", hostOf(o.URL), "protocol: "+proto)+lbDoc([]string{listenerAt(port, "h2c: true")},
			`{pool: p, timeout: 20s, retries: {attempts: 1, "on": [connect-failure], perTryTimeout: 300ms}}`), Options{})
		for cname, c := range map[string]*http.Client{"http1 client": {}, "h2c client": h2cClient()} {
			t0 := time.Now()
			resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
			if err != nil {
				t.Fatalf("%s pool, %s: %v", proto, cname, err)
			}
			resp.Body.Close()
			if took := time.Since(t0); resp.StatusCode != 504 || took > 5*time.Second {
				t.Fatalf("%s pool, %s: %d after %v, want 504 near the 300ms per-try timeout", proto, cname, resp.StatusCode, took)
			}
		}
	}
}
