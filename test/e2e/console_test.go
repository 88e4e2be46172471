package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const shopYAML = `apiVersion: meridian/v1
kind: Namespace
metadata:
  name: retail
---
apiVersion: meridian/v1
kind: HTTPLoadBalancer
metadata:
  name: shop
  namespace: retail
  labels: {app: shop}
spec:
  domains: ["shop.example.com"]
  listeners: [{port: 8080}]
  defaultPool: shop
---
apiVersion: meridian/v1
kind: OriginPool
metadata:
  name: shop
  namespace: retail
  labels: {app: shop}
spec:
  endpoints:
    - address: 127.0.0.1:9000
`

// startConsole runs `meridian console` on a fresh data dir and logs the CLI
// in with the bootstrap token; it returns the CLI environment.
func startConsole(t *testing.T, dataDir string, extra ...string) (*proc, []string, string) {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "cli.yaml")
	env := []string{"MERIDIAN_CONFIG=" + cfg}
	args := append([]string{"console", "--data-dir", dataDir, "--listen", "127.0.0.1:0"}, extra...)
	p := start(t, nil, args...)
	url := p.waitFor(reListening, 60*time.Second)[1]
	token := p.waitFor(reToken, 10*time.Second)[1]
	mustRun(t, env, "login", "--server", url, "--certificate-authority", filepath.Join(dataDir, "ca.crt"),
		"--token", token, "--tenant", "default")
	return p, env, url
}

func TestConsoleBoltLifecycle(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	p, env, _ := startConsole(t, dataDir)

	out := mustRun(t, env, "get", "namespaces")
	if !strings.Contains(out, "default") {
		t.Fatalf("get namespaces lacks default:\n%s", out)
	}

	// A folder applies in one go, whatever the order of its documents.
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "shop.yaml"), shopYAML)
	out = mustRun(t, env, "apply", "-f", dir)
	for _, want := range []string{"namespace/retail created", "originpool/shop created", "httploadbalancer/shop created"} {
		if !strings.Contains(strings.ToLower(out), want) {
			t.Errorf("apply output lacks %q:\n%s", want, out)
		}
	}
	out = mustRun(t, env, "apply", "-f", dir)
	if !strings.Contains(out, "unchanged") {
		t.Errorf("second apply should be unchanged:\n%s", out)
	}

	// Plural, singular and short names.
	for _, k := range []string{"originpools", "originpool", "op"} {
		out = mustRun(t, env, "get", k, "-n", "retail")
		if !strings.Contains(out, "shop") {
			t.Errorf("get %s lacks shop:\n%s", k, out)
		}
	}
	out = mustRun(t, env, "get", "httploadbalancers", "-A", "-l", "app=shop", "-o", "name")
	if !strings.Contains(out, "shop") {
		t.Errorf("get -A -l app=shop -o name:\n%s", out)
	}

	// A dangling reference names the field and the missing object.
	bad := writeFile(t, filepath.Join(t.TempDir(), "bad.yaml"), strings.Replace(shopYAML, "defaultPool: shop", "defaultPool: shop-ap", 1))
	out = mustFail(t, env, "apply", "-f", bad)
	if !strings.Contains(out, `spec.defaultPool: OriginPool "shop-ap" not found in namespace "retail"`) {
		t.Errorf("dangling reference error:\n%s", out)
	}
	// Deleting a referenced pool is refused and names the referrer.
	out = mustFail(t, env, "delete", "originpool", "shop", "-n", "retail")
	if !strings.Contains(out, "shop") || !strings.Contains(strings.ToLower(out), "httploadbalancer") {
		t.Errorf("delete of a referenced pool:\n%s", out)
	}
	// A namespace with objects is deleted only with --cascade.
	mustFail(t, env, "delete", "namespace", "retail")

	// History and rollback.
	upd := writeFile(t, filepath.Join(t.TempDir(), "upd.yaml"), strings.Replace(shopYAML, "127.0.0.1:9000", "127.0.0.1:9001", 1))
	mustRun(t, env, "apply", "-f", upd)
	// diff shows what apply would change and exits 1 when something would.
	out, code := run(t, env, "", "diff", "-f", dir+"/shop.yaml")
	if code != 1 || !strings.Contains(out, "+  - address: 127.0.0.1:9000") {
		t.Errorf("diff: exit %d:\n%s", code, out)
	}
	mustRun(t, env, "history", "originpool", "shop", "-n", "retail")
	mustRun(t, env, "rollback", "originpool", "shop", "-n", "retail", "--to-generation", "1")
	out = mustRun(t, env, "get", "originpool", "shop", "-n", "retail", "-o", "yaml")
	if !strings.Contains(out, "127.0.0.1:9000") {
		t.Errorf("rollback did not restore generation 1:\n%s", out)
	}

	// RBAC answers and the audit chain.
	out = mustRun(t, env, "auth", "can-i", "create", "originpools", "-n", "retail")
	if !strings.Contains(out, "yes") {
		t.Errorf("can-i: %s", out)
	}
	out = mustRun(t, env, "audit", "log")
	if !strings.Contains(out, "shop") {
		t.Errorf("audit log lacks the writes:\n%s", out)
	}
	mustRun(t, env, "audit", "verify")

	// The data key rotates while the console serves; writes go on.
	out = mustRun(t, env, "console", "rotate-key", "--online")
	if !strings.Contains(out, "new primary data key") {
		t.Errorf("rotate-key --online: %s", out)
	}
	mustRun(t, env, "create", "namespace", "after-rotation")

	// Backup with the console stopped, restore into a new directory, serve it.
	p.stop()
	backup := filepath.Join(t.TempDir(), "m.backup")
	mustRun(t, nil, "console", "backup", "--data-dir", dataDir, "-o", backup)
	restored := filepath.Join(t.TempDir(), "restored")
	mustRun(t, nil, "console", "restore", "--data-dir", restored, "-i", backup)
	key, err := os.ReadFile(filepath.Join(dataDir, "master.key"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(restored, "master.key"), string(key))
	mustFail(t, nil, "console", "restore", "--data-dir", restored, "-i", backup) // not empty any more

	p2 := start(t, nil, "console", "--data-dir", restored, "--listen", "127.0.0.1:0")
	url2 := p2.waitFor(reListening, 60*time.Second)[1]
	if strings.Contains(p2.Output(), "Admin token") {
		t.Fatalf("a restored console must not bootstrap again:\n%s", p2.Output())
	}
	env2 := append([]string(nil), env...)
	out = mustRun(t, env2, "get", "originpool", "shop", "-n", "retail", "--server", url2,
		"--certificate-authority", filepath.Join(restored, "ca.crt"))
	if !strings.Contains(out, "shop") {
		t.Errorf("restored console lacks the pool:\n%s", out)
	}
	mustRun(t, env2, "audit", "verify", "--server", url2, "--certificate-authority", filepath.Join(restored, "ca.crt"))
}

func TestConsoleRefusesPlainHTTPAndBadTokens(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	_, env, url := startConsole(t, dataDir)
	plain := strings.Replace(url, "https://", "http://", 1)
	out := mustFail(t, env, "get", "namespaces", "--server", plain)
	_ = out
	out = mustFail(t, env, "get", "namespaces", "--token", "mrd_not_a_token")
	if !strings.Contains(strings.ToLower(out), "unauthorized") && !strings.Contains(strings.ToLower(out), "token") {
		t.Errorf("bad token error should say why:\n%s", out)
	}
}

func TestDevWritesContext(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "cli.yaml")
	p := start(t, nil, "dev", "--data-dir", filepath.Join(dir, "data"), "--listen", "127.0.0.1:0", "--cli-config", cfg)
	p.waitFor(reDevReady, 60*time.Second)
	out := mustRun(t, []string{"MERIDIAN_CONFIG=" + cfg}, "get", "namespaces")
	if !strings.Contains(out, "default") {
		t.Fatalf("get namespaces after dev:\n%s", out)
	}
	// dev also runs a registered node serving the demo load balancer in
	// front of the demo backend.
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://127.0.0.1:8080/api/hello")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 && strings.Contains(string(body), "meridian-demo-backend") {
				break
			}
			err = fmt.Errorf("status %d: %s", resp.StatusCode, body)
		}
		if time.Now().After(deadline) {
			t.Fatalf("demo load balancer: %v\n%s", err, p.Output())
		}
		time.Sleep(200 * time.Millisecond)
	}
	out = mustRun(t, []string{"MERIDIAN_CONFIG=" + cfg}, "get", "sites", "-o", "wide")
	if !strings.Contains(out, "dev-node") {
		t.Fatalf("get sites after dev:\n%s", out)
	}
	// The demo load balancer has an AppFirewall: an attack is blocked and
	// the block is listed by the console, as dev's banner says.
	resp, err := http.Get("http://127.0.0.1:8080/api/hello?q=%3Cscript%3Ealert(1)%3C/script%3E")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("XSS through the demo load balancer: status %d, want 403", resp.StatusCode)
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		out = mustRun(t, []string{"MERIDIAN_CONFIG=" + cfg}, "events", "-n", "demo", "--type", "waf")
		if strings.Contains(out, "blocked") && strings.Contains(out, "dev-node") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("meridian events -n demo never listed the WAF block:\n%s\n%s", out, p.Output())
		}
	}
	// A restarted dev prints the same token and rewrites the context.
	p.stop()
	p = start(t, nil, "dev", "--data-dir", filepath.Join(dir, "data"), "--listen", "127.0.0.1:0", "--cli-config", cfg)
	p.waitFor(reDevReady, 60*time.Second)
	mustRun(t, []string{"MERIDIAN_CONFIG=" + cfg}, "get", "namespaces")
}

// The example folder of the README applies as it is.
func TestConsoleExamplesApply(t *testing.T) {
	_, env, _ := startConsole(t, filepath.Join(t.TempDir(), "data"))
	out := mustRun(t, env, "apply", "-f", "../../examples/console/")
	if strings.Count(out, " created") != 7 {
		t.Fatalf("apply examples/console:\n%s", out)
	}
	out = mustRun(t, env, "get", "httploadbalancer", "shop", "-n", "retail", "-o", "json")
	if !strings.Contains(out, `"appFirewall": "shop-waf"`) {
		t.Fatalf("get -o json:\n%s", out)
	}
}
