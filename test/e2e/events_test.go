package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/meridian-platform/meridian/internal/testfixture"
)

// eventsGet sends GET path to the load balancer's listener and returns the
// status.
func eventsGet(t *testing.T, hc *http.Client, port int, path string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d%s", port, path), nil)
	req.Host = "shop.test"
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

type e2eEvent struct {
	Time         time.Time `json:"time"`
	Type         string    `json:"type"`
	Action       string    `json:"action"`
	RequestID    string    `json:"requestId"`
	Namespace    string    `json:"namespace"`
	LoadBalancer string    `json:"loadBalancer"`
	Site         string    `json:"site"`
	Client       string    `json:"client"`
	Path         string    `json:"path"`
	Status       int       `json:"status"`
	Source       string    `json:"source"`
	Rules        []struct {
		ID       int    `json:"id"`
		Name     string `json:"name"`
		Variable string `json:"variable"`
		Data     string `json:"data"`
	} `json:"rules"`
}

func eventsJSON(t *testing.T, out string) []e2eEvent {
	t.Helper()
	var l struct {
		Kind  string     `json:"kind"`
		Items []e2eEvent `json:"items"`
	}
	if err := json.Unmarshal([]byte(out), &l); err != nil || l.Kind != "SecurityEventList" {
		t.Fatalf("not a SecurityEventList (%v):\n%s", err, out)
	}
	return l.Items
}

// TestSecurityEventsReachTheConsole: a console-managed node denies a
// request by a ServicePolicy (and a dryRun policy would deny another); the
// events are listed by `meridian get securityevents` within seconds, with
// their load balancer, site, client, rule and action, and are also in the
// node's event log. Events produced while the console is down arrive when
// it is back, and the earlier ones survive its restart.
func TestSecurityEventsReachTheConsole(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a console and a node")
	}
	eventLog := filepath.Join(t.TempDir(), "events.log")
	m := startManagedSite(t, "--events-log", eventLog)
	console, env, hc, dataDir, consoleAddr := m.console, m.env, m.hc, m.dataDir, m.consoleAddr
	port := testfixture.FreePort(t)
	m.applyShop(t, fmt.Sprintf(`apiVersion: meridian/v1
kind: ServicePolicy
metadata: {name: guard, namespace: shop}
spec: {defaultAction: allow, rules: [{name: no-admin, action: deny, match: {pathPrefix: /admin}}]}
---
apiVersion: meridian/v1
kind: ServicePolicy
metadata: {name: watch, namespace: shop}
spec: {mode: dryRun, defaultAction: allow, rules: [{name: no-probe, action: deny, match: {pathPrefix: /probe}}]}
---
apiVersion: meridian/v1
kind: AppFirewall
metadata: {name: fw, namespace: shop}
spec: {mode: block, paranoiaLevel: 1}
---
apiVersion: meridian/v1
kind: HTTPLoadBalancer
metadata: {name: front, namespace: shop}
spec:
  domains: ["shop.test"]
  listeners: [{port: %d, address: 127.0.0.1}]
  defaultPool: web
  servicePolicies: [watch, guard]
  appFirewall: fw
  sites: {virtualSite: eu}
`, port))
	waitSiteServes(t, hc, port, "ok", 30*time.Second)

	if c := eventsGet(t, hc, port, "/admin/users?token=s3cret"); c != 403 {
		t.Fatalf("GET /admin/users: %d, want 403", c)
	}
	if c := eventsGet(t, hc, port, "/probe"); c != 200 {
		t.Fatalf("GET /probe (dryRun policy): %d, want 200", c)
	}
	if c := eventsGet(t, hc, port, "/login?password=1%27%20OR%201=1--"); c != 403 {
		t.Fatalf("GET /login with an SQL injection: %d, want 403", c)
	}
	sent := time.Now()
	table := waitSiteCLI(t, env, "both events in meridian get securityevents", func(s string) bool {
		return strings.Contains(s, "no-admin") && strings.Contains(s, "no-probe") && strings.Contains(s, "waf")
	}, 10*time.Second, "get", "securityevents", "-n", "shop")
	t.Logf("events listed %v after the requests", time.Since(sent).Round(time.Millisecond))
	lines := scanLines(table)
	for _, col := range []string{"TIME", "TYPE", "ACTION", "LB", "ROUTE", "SITE", "CLIENT", "RULES", "MESSAGE"} {
		if !strings.Contains(lines[0], col) {
			t.Fatalf("no %s column:\n%s", col, table)
		}
	}
	denied := regexp.MustCompile(`(?m)^\S+\s+policy\s+denied\s+front\s+default\s+edge-1\s+127\.0\.0\.1\s+no-admin\s`)
	detected := regexp.MustCompile(`(?m)^\S+\s+policy\s+detected\s+front\s+default\s+edge-1\s+127\.0\.0\.1\s+no-probe\s`)
	if !denied.MatchString(table) || !detected.MatchString(table) {
		t.Fatalf("rows do not match:\n%s", table)
	}

	evs := eventsJSON(t, mustRun(t, env, "events", "-A", "--type", "policy", "--rule", "no-admin", "--since", "5m", "-o", "json"))
	if len(evs) != 1 {
		t.Fatalf("filtered events: %+v", evs)
	}
	e := evs[0]
	if e.Namespace != "shop" || e.LoadBalancer != "front" || e.Site != "edge-1" || e.Status != 403 || e.RequestID == "" ||
		e.Source != "shop/guard" || e.Path != "/admin/users" || e.Client != "127.0.0.1" {
		t.Fatalf("event: %+v", e)
	}
	waf := eventsJSON(t, mustRun(t, env, "get", "securityevents", "-n", "shop", "--type", "waf", "-o", "json"))
	if len(waf) != 1 || waf[0].Action != "blocked" || waf[0].Status != 403 || waf[0].Source != "shop/fw" || len(waf[0].Rules) == 0 {
		t.Fatalf("WAF event: %+v", waf)
	}
	t.Logf("WAF event rules: %+v", waf[0].Rules)
	for _, r := range waf[0].Rules {
		if strings.Contains(r.Data, "OR") || strings.Contains(r.Data, "1=1") {
			t.Fatalf("matched data of ARGS:password shown unmasked: %+v", waf[0].Rules)
		}
	}
	if out := mustRun(t, env, "get", "securityevents", "-n", "shop", "--rule", fmt.Sprint(waf[0].Rules[0].ID)); !strings.Contains(out, "waf") {
		t.Fatalf("--rule %d:\n%s", waf[0].Rules[0].ID, out)
	}
	if out := mustRun(t, env, "get", "sev", "-n", "shop", "--lb", "other"); !strings.Contains(out, "No security events found") {
		t.Fatalf("--lb other:\n%s", out)
	}
	if out := mustFail(t, env, "get", "securityevents", "--type", "nope"); !strings.Contains(out, `invalid type "nope"`) {
		t.Fatalf("--type nope:\n%s", out)
	}
	if out := mustFail(t, env, "get", "namespaces", "--lb", "front"); !strings.Contains(out, "--lb filters security events only") {
		t.Fatalf("get namespaces --lb:\n%s", out)
	}

	// The console dies; the node keeps serving and buffers what happens.
	if err := console.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-console.done
	if c := eventsGet(t, hc, port, "/admin/while-down"); c != 403 {
		t.Fatalf("GET /admin/while-down with the console down: %d, want 403", c)
	}
	time.Sleep(300 * time.Millisecond)
	console = start(t, nil, "console", "--data-dir", dataDir, "--listen", consoleAddr)
	console.waitFor(reListening, 30*time.Second)
	back := time.Now()
	out := waitSiteCLI(t, env, "the event produced while the console was down", func(s string) bool {
		return strings.Contains(s, "/admin/while-down")
	}, 30*time.Second, "events", "-n", "shop", "-o", "json")
	t.Logf("buffered event listed %v after the console came back", time.Since(back).Round(time.Millisecond))
	evs = eventsJSON(t, out)
	if len(evs) != 4 || evs[0].Path != "/admin/while-down" {
		t.Fatalf("after the restart, newest first: %+v", evs)
	}

	// The node's own event log has them too (flushed within a second).
	var b []byte
	deadline := time.Now().Add(5 * time.Second)
	for {
		var err error
		if b, err = os.ReadFile(eventLog); err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(string(b), `"kind":"policy"`) + strings.Count(string(b), `"kind":"waf"`); n == 4 {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("event log has %d policy and WAF events, want 4:\n%s", n, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
