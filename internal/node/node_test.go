package node

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meridian-platform/meridian/internal/dataplane"
	"github.com/meridian-platform/meridian/internal/dataplane/config"
	"github.com/meridian-platform/meridian/internal/testfixture"
)

type syncBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func TestRunStandaloneHotReload(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "backend path=%s", r.URL.Path)
	}))
	defer backend.Close()
	dir := t.TempDir()
	port := testfixture.FreePort(t)
	pools := fmt.Sprintf(`apiVersion: meridian/v1
kind: OriginPool
metadata: {name: web}
spec:
  endpoints: [{address: %q}]
  healthCheck: {http: {path: /}, interval: 200ms, timeout: 100ms}
`, strings.TrimPrefix(backend.URL, "http://"))
	lb := func(body string) string {
		return fmt.Sprintf(`apiVersion: meridian/v1
kind: HTTPLoadBalancer
metadata: {name: site}
spec:
  domains: ["*"]
  listeners: [{port: %d, address: 127.0.0.1}]
  accessLog: {enabled: true, fields: [method, path, status, requestId]}
  routes:
    - match: {path: /hello}
      directResponse: {status: 200, body: %q}
  defaultPool: web
`, port, body)
	}
	writeFile(t, filepath.Join(dir, "pools.yaml"), pools)
	writeFile(t, filepath.Join(dir, "lb.yaml"), lb("v1"))
	alog := &syncBuf{}
	adminURL, stop := startStandalone(t, Options{ConfigPath: dir, AccessLog: alog, EnablePprof: true})
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	if c, b := testfixture.Get(base + "/hello"); c != 200 || b != "v1" {
		t.Fatalf("hello: %d %q", c, b)
	}
	if c, b := testfixture.Get(base + "/x"); c != 200 || b != "backend path=/x" {
		t.Fatalf("proxy: %d %q", c, b)
	}
	// A valid edit is applied live.
	writeFile(t, filepath.Join(dir, "lb.yaml"), lb("v2"))
	testfixture.WaitFor(t, "v2", func() bool { _, b := testfixture.Get(base + "/hello"); return b == "v2" })
	// An invalid edit is reported with its field path; v2 keeps serving.
	writeFile(t, filepath.Join(dir, "lb.yaml"), strings.Replace(lb("v3"), "path: /hello", "path: hello", 1))
	var dump ConfigDump
	testfixture.WaitFor(t, "problem on /config", func() bool {
		_, b := testfixture.Get(adminURL + "/config")
		dump = ConfigDump{}
		_ = json.Unmarshal([]byte(b), &dump)
		return len(dump.Problems) > 0
	})
	p := dump.Problems[0]
	if p.Kind != "HTTPLoadBalancer" || p.Name != "site" || len(p.Fields) == 0 || p.Fields[0].Field != "spec.routes[0].match.path" || p.Serving == "" {
		t.Fatalf("problem %+v", p)
	}
	if _, b := testfixture.Get(base + "/hello"); b != "v2" {
		t.Fatalf("last good not serving: %q", b)
	}
	// A file that does not even decode keeps its last good objects too.
	writeFile(t, filepath.Join(dir, "lb.yaml"), "apiVersion: meridian/v1\nkind: HTTPLoadBalancer\nmetadata: {name: site}\nspec: {domainz: []}\n")
	testfixture.WaitFor(t, "decode problem", func() bool {
		_, b := testfixture.Get(adminURL + "/config")
		return strings.Contains(b, "domainz")
	})
	if _, b := testfixture.Get(base + "/hello"); b != "v2" {
		t.Fatalf("last good file not serving: %q", b)
	}
	// Admin endpoints.
	_, b := testfixture.Get(adminURL + "/metrics")
	for _, m := range []string{"meridian_http_requests_total", "meridian_endpoint_healthy", "meridian_config_reloads_total", "meridian_http_request_duration_seconds_bucket"} {
		if !strings.Contains(b, m) {
			t.Errorf("metrics lack %s", m)
		}
	}
	if c, _ := testfixture.Get(adminURL + "/healthz"); c != 200 {
		t.Error("healthz")
	}
	if c, _ := testfixture.Get(adminURL + "/debug/pprof/"); c != 200 {
		t.Error("pprof")
	}
	_, b = testfixture.Get(adminURL + "/config")
	if !strings.Contains(b, `"address": "127.0.0.1:`) || !strings.Contains(b, `"default/web"`) {
		t.Errorf("config dump: %s", b)
	}
	stop()
	// Access log lines are JSON with the configured fields.
	lines := strings.Split(strings.TrimSpace(alog.String()), "\n")
	var rec map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil {
		t.Fatalf("access log %q: %v", lines[0], err)
	}
	if rec["method"] != "GET" || rec["status"] == nil || rec["requestId"] == "" || len(rec) != 4 {
		t.Fatalf("access log record %v", rec)
	}
}

func TestRunStandaloneSecretsRedacted(t *testing.T) {
	dir := t.TempDir()
	// A CA bundle and a key-carrying certificate: /config must not show keys.
	writeFile(t, filepath.Join(dir, "c.yaml"), `apiVersion: meridian/v1
kind: Certificate
metadata: {name: c}
spec:
  certificate: "not a pem"
  privateKey: "super-secret"
`)
	adminURL, _ := startStandalone(t, Options{ConfigPath: dir})
	_, b := testfixture.Get(adminURL + "/config")
	if strings.Contains(b, "super-secret") {
		t.Fatalf("secret leaked: %s", b)
	}
	if !strings.Contains(b, "spec.certificate") {
		t.Fatalf("invalid certificate not reported: %s", b)
	}
}

// A stage given in Options.Stages runs for the node's load balancers.
func TestRunStandaloneStages(t *testing.T) {
	dir := t.TempDir()
	port := testfixture.FreePort(t)
	writeFile(t, filepath.Join(dir, "lb.yaml"), fmt.Sprintf(`apiVersion: meridian/v1
kind: HTTPLoadBalancer
metadata: {name: site}
spec:
  domains: ["*"]
  listeners: [{port: %d, address: 127.0.0.1}]
  routes: [{directResponse: {status: 200, body: "origin"}}]
`, port))
	startStandalone(t, Options{ConfigPath: dir,
		Stages: map[string]dataplane.StageFactory{"policy": func(*config.VHost, *dataplane.StageEnv) dataplane.Stage { return denyAll{} }}})
	if c, b := testfixture.Get(fmt.Sprintf("http://127.0.0.1:%d/", port)); c != 403 || b != "denied" {
		t.Fatalf("stage not run: %d %q", c, b)
	}
}

type denyAll struct{}

func (denyAll) Name() string { return "policy" }
func (denyAll) OnRequestHeaders(x *dataplane.Exchange) dataplane.Action {
	x.Reply = dataplane.Reply{Status: 403, Body: []byte("denied")}
	return dataplane.Respond
}

func TestRunStandaloneNeedsConfig(t *testing.T) {
	if err := RunStandalone(context.Background(), Options{ConfigPath: filepath.Join(t.TempDir(), "missing")}); err == nil {
		t.Fatal("missing configuration accepted")
	}
}

// startStandalone runs RunStandalone(opts) with its admin listener on a
// free port (quiet logs, discarded access log, 20ms polling and a 2s drain
// unless opts say otherwise), waits for /readyz and returns the admin URL
// and stop, which ends the node (at the latest when the test ends) and
// fails the test unless it returns cleanly within 5s.
func startStandalone(t *testing.T, opts Options) (adminURL string, stop func()) {
	t.Helper()
	opts.AdminListen = fmt.Sprintf("127.0.0.1:%d", testfixture.FreePort(t))
	if opts.PollInterval == 0 {
		opts.PollInterval = 20 * time.Millisecond
	}
	if opts.DrainTimeout == 0 {
		opts.DrainTimeout = 2 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.AccessLog == nil {
		opts.AccessLog = io.Discard
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- RunStandalone(ctx, opts) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("RunStandalone: %v", err)
				}
			case <-time.After(5 * time.Second):
				t.Error("RunStandalone did not return")
			}
		})
	}
	t.Cleanup(stop)
	adminURL = "http://" + opts.AdminListen
	testfixture.WaitFor(t, "readyz", func() bool { c, _ := testfixture.Get(adminURL + "/readyz"); return c == 200 })
	return adminURL, stop
}
