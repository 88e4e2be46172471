package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// A standalone node serves a load balancer with its WAF and rate limiter,
// and writes security events.
func TestNodeStandaloneSecurity(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello from the origin\n")
	}))
	defer backend.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "conf", "shop.yaml"), fmt.Sprintf(`apiVersion: meridian/v1
kind: OriginPool
metadata: {name: web, namespace: demo}
spec:
  endpoints: [{address: %s}]
---
apiVersion: meridian/v1
kind: AppFirewall
metadata: {name: waf, namespace: demo}
spec: {mode: block, paranoiaLevel: 1}
---
apiVersion: meridian/v1
kind: RateLimiter
metadata: {name: rl, namespace: demo}
spec: {rate: 3, burst: 3, per: minute, key: {type: clientIP}}
---
apiVersion: meridian/v1
kind: HTTPLoadBalancer
metadata: {name: web, namespace: demo}
spec:
  domains: ["*"]
  listeners: [{port: %d}]
  defaultPool: web
  appFirewall: waf
  rateLimiter: rl
`, strings.TrimPrefix(backend.URL, "http://"), port))
	events := filepath.Join(dir, "events.log")
	p := start(t, nil, "node", "--config", filepath.Join(dir, "conf"), "--admin", "", "--events-log", events)
	p.waitFor(regexp.MustCompile(`configuration applied`), 60*time.Second)
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	get := func(path string) int {
		t.Helper()
		req, _ := http.NewRequest("GET", url+path, nil)
		req.Host = "shop.example.com"
		req.Header.Set("User-Agent", "Mozilla/5.0 e2e")
		req.Header.Set("Accept", "text/html")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if c := get("/"); c != 200 {
		t.Fatalf("benign request: %d\n%s", c, p.Output())
	}
	if c := get("/?id=1%27%20OR%201=1--"); c != 403 {
		t.Fatalf("SQL injection: %d, want 403", c)
	}
	// The burst of 3 is spent (the blocked request counted too): 429.
	codes := []int{get("/"), get("/"), get("/")}
	if codes[len(codes)-1] != 429 {
		t.Fatalf("rate limit: %v, want a 429 at the end", codes)
	}
	p.stop()
	b, err := os.ReadFile(events)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"kind":"waf","action":"blocked"`, `942100`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("events log lacks %s:\n%s", want, b)
		}
	}
}
