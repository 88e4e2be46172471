package cli_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meridian-platform/meridian/internal/cli"
	"github.com/meridian-platform/meridian/internal/console"
)

// startConsole runs a real console (bbolt store, TLS, generated CA) in
// process on a loopback port and writes a CLI context for its bootstrap
// admin into a fresh config file.
func startConsole(t *testing.T) (configPath string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	dir := t.TempDir()
	c, err := console.New(ctx, console.Options{DataDir: filepath.Join(dir, "data"), Listen: "127.0.0.1:0",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	url, err := c.Listen()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("console did not stop")
		}
		c.Close()
	})
	b := c.Bootstrap()
	tenant := b.DefaultTenant
	if tenant == "" {
		tenant = "default"
	}
	configPath = filepath.Join(dir, "cli.yaml")
	if err := cli.WriteContext(configPath, cli.Context{Name: "admin", Server: url, CAData: string(c.CACertPEM()),
		Token: b.AdminToken, Tenant: tenant, ActAsTenant: true, Namespace: "retail"}, true); err != nil {
		t.Fatal(err)
	}
	return configPath
}

type runner struct {
	t      *testing.T
	config string
}

func (r runner) run(stdin string, args ...string) (string, string, int) {
	r.t.Helper()
	var out, errOut bytes.Buffer
	streams := cli.IOStreams{In: strings.NewReader(stdin), Out: &out, ErrOut: &errOut}
	code := cli.Execute(cli.NewRootCommand(streams), append(args, "--config", r.config), streams)
	return out.String(), errOut.String(), code
}

// ok runs a command that must succeed and returns its output.
func (r runner) ok(args ...string) string {
	r.t.Helper()
	out, errOut, code := r.run("", args...)
	if code != 0 {
		r.t.Fatalf("meridian %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

func write(t *testing.T, p, s string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

const manifests = `apiVersion: meridian/v1
kind: HTTPLoadBalancer
metadata: {name: shop, labels: {app: shop}}
spec:
  domains: ["shop.example.com"]
  listeners: [{port: 8080}]
  routes:
    - {match: {pathPrefix: /api}, pool: api}
  defaultPool: web
---
apiVersion: meridian/v1
kind: OriginPool
metadata: {name: api, labels: {app: shop}}
spec: {endpoints: [{address: "127.0.0.1:9001"}]}
`

const webPool = `apiVersion: meridian/v1
kind: OriginPool
metadata: {name: web, labels: {app: shop, tier: web}}
spec: {endpoints: [{address: "127.0.0.1:9000"}]}
`

const namespaceDoc = `apiVersion: meridian/v1
kind: Namespace
metadata: {name: retail}
`

// TestCLIAgainstConsole drives the CLI verbs against a real in-process
// console, as a user would.
func TestCLIAgainstConsole(t *testing.T) {
	r := runner{t: t, config: startConsole(t)}
	dir := t.TempDir()
	write(t, filepath.Join(dir, "cfg", "z-namespace.yaml"), namespaceDoc)
	write(t, filepath.Join(dir, "cfg", "lb.yaml"), manifests)
	write(t, filepath.Join(dir, "cfg", "pools", "web.yaml"), webPool)

	// apply orders the folder by references: namespace, pools, then the LB.
	// A dry run validates on the console and stores nothing (objects in a
	// namespace that does not exist yet cannot be checked, as in kubectl).
	out := r.ok("apply", "-f", filepath.Join(dir, "cfg", "z-namespace.yaml"), "--dry-run")
	if out != "namespace/retail created (dry run)\n" {
		t.Fatalf("dry run:\n%s", out)
	}
	if _, _, code := r.run("", "get", "namespace", "retail"); code == 0 {
		t.Fatal("dry run stored the namespace")
	}
	out = r.ok("apply", "-f", filepath.Join(dir, "cfg"))
	want := "namespace/retail created\noriginpool/api created\noriginpool/web created\nhttploadbalancer/shop created\n"
	if out != want {
		t.Fatalf("apply:\n%s\nwant:\n%s", out, want)
	}
	out = r.ok("apply", "-f", filepath.Join(dir, "cfg"))
	if strings.Count(out, "unchanged") != 4 {
		t.Fatalf("re-apply must leave everything unchanged:\n%s", out)
	}

	// get: table, kind name forms, yaml, wide, -A, selectors.
	out = r.ok("get", "op")
	if !regexp.MustCompile(`(?m)^NAME\s+AGE\n(api|web)\s+\d+s\n`).MatchString(out) {
		t.Fatalf("get op:\n%s", out)
	}
	out = r.ok("get", "originpool/web", "-o", "yaml")
	if !strings.Contains(out, "address: 127.0.0.1:9000") || !strings.Contains(out, "kind: OriginPool") {
		t.Fatalf("get -o yaml:\n%s", out)
	}
	out = r.ok("get", "OriginPools", "-A", "-l", "tier=web", "-o", "wide")
	if !strings.Contains(out, "NAMESPACE") || !strings.Contains(out, "127.0.0.1:9000") || strings.Contains(out, "api ") {
		t.Fatalf("get -A -l -o wide:\n%s", out)
	}
	out = r.ok("get", "hlb", "-o", "name")
	if out != "httploadbalancer/shop\n" {
		t.Fatalf("get -o name: %q", out)
	}

	// diff shows what apply would change and exits 1.
	write(t, filepath.Join(dir, "cfg", "pools", "web.yaml"), strings.Replace(webPool, "127.0.0.1:9000", "127.0.0.1:9100", 1))
	out, errOut, code := r.run("", "diff", "-f", filepath.Join(dir, "cfg", "pools"))
	if code != 1 || !strings.Contains(out, "-  - address: 127.0.0.1:9000") || !strings.Contains(out, "+  - address: 127.0.0.1:9100") {
		t.Fatalf("diff: exit %d\n%s\n%s", code, out, errOut)
	}
	out = r.ok("apply", "-f", filepath.Join(dir, "cfg", "pools"))
	if out != "originpool/web configured\n" {
		t.Fatalf("apply change: %q", out)
	}
	if out, _, code := r.run("", "diff", "-f", filepath.Join(dir, "cfg", "pools")); code != 0 || out != "" {
		t.Fatalf("diff after apply: exit %d %q", code, out)
	}

	// history and rollback.
	out = r.ok("history", "op", "web")
	if !strings.Contains(out, "GENERATION") || !strings.Contains(out, "1 ") {
		t.Fatalf("history:\n%s", out)
	}
	out = r.ok("rollback", "op", "web", "--to-generation", "1")
	if !strings.Contains(out, "originpool/web rolled back to generation 1") {
		t.Fatalf("rollback: %q", out)
	}
	if out := r.ok("get", "op", "web", "-o", "json"); !strings.Contains(out, "127.0.0.1:9000") {
		t.Fatalf("after rollback:\n%s", out)
	}

	// describe.
	out = r.ok("describe", "httploadbalancer", "shop")
	for _, s := range []string{"Name:             shop", "Namespace:        retail", "Labels:           app=shop", "Spec:", "defaultPool: web", "Recent Changes:"} {
		if !strings.Contains(out, s) {
			t.Errorf("describe lacks %q:\n%s", s, out)
		}
	}

	// Invalid objects: the console's field causes are printed one per line.
	write(t, filepath.Join(dir, "bad.yaml"), `apiVersion: meridian/v1
kind: HTTPLoadBalancer
metadata: {name: broken}
spec:
  domains: ["shop.example.com"]
  listeners: [{port: 8081}]
  defaultPool: nope
`)
	_, errOut, code = r.run("", "apply", "-f", filepath.Join(dir, "bad.yaml"))
	if code != 1 || !strings.Contains(errOut, "Error: httploadbalancer/broken: ") || !strings.Contains(errOut, "\n  spec.defaultPool: ") {
		t.Fatalf("apply invalid: exit %d\n%s", code, errOut)
	}

	// Deleting a referenced object is refused; deleting in reverse order works.
	_, errOut, code = r.run("", "delete", "op", "api")
	if code != 1 || !strings.HasPrefix(errOut, "Error: originpool/api: ") {
		t.Fatalf("delete referenced pool: exit %d %q", code, errOut)
	}

	// auth.
	out = r.ok("auth", "whoami")
	if !strings.Contains(out, "Tenant:") || !strings.Contains(out, "Name:") {
		t.Fatalf("whoami:\n%s", out)
	}
	if out := r.ok("auth", "can-i", "create", "originpools"); out != "yes\n" {
		t.Fatalf("can-i: %q", out)
	}

	// A token bound to the viewer role may list but not create.
	tok := strings.TrimSpace(r.ok("create", "token", "ci", "--expires", "1h", "--role", "viewer"))
	if tok == "" || strings.Contains(tok, "\n") {
		t.Fatalf("create token printed %q", tok)
	}
	viewer := runner{t: t, config: r.config}
	out = viewer.ok("login", "--token", tok, "--context", "viewer")
	if !strings.Contains(out, "Logged in") {
		t.Fatalf("login --token: %q", out)
	}
	out, _, code = viewer.run("", "auth", "can-i", "create", "op", "-n", "retail")
	if code != 1 || out != "no\n" {
		t.Fatalf("viewer can-i create: exit %d %q", code, out)
	}
	if out := viewer.ok("get", "op", "-n", "retail", "-o", "name"); !strings.Contains(out, "originpool/web") {
		t.Fatalf("viewer get: %q", out)
	}
	_, errOut, code = viewer.run("", "delete", "op", "web", "-n", "retail")
	if code != 1 || !strings.Contains(errOut, "Error: originpool/web: ") {
		t.Fatalf("viewer delete: exit %d %q", code, errOut)
	}
	r.ok("config", "use-context", "admin")

	// audit.
	out = r.ok("audit", "log", "--kind", "op", "-n", "retail")
	if !strings.Contains(out, "create") || !strings.Contains(out, "OriginPool") {
		t.Fatalf("audit log:\n%s", out)
	}
	out = r.ok("audit", "verify")
	if !strings.HasPrefix(out, "OK: ") {
		t.Fatalf("audit verify: %q", out)
	}

	// label and patch.
	_, errOut, code = r.run("", "label", "op", "web", "tier=gold")
	if code != 1 || !strings.Contains(errOut, "already has label tier=web: use --overwrite") {
		t.Fatalf("label without --overwrite: exit %d %q", code, errOut)
	}
	if out := r.ok("label", "op/web", "tier=gold", "app-", "--overwrite"); out != "originpool/web labeled\n" {
		t.Fatalf("label: %q", out)
	}
	out = r.ok("get", "op", "-l", "tier=gold", "-o", "name")
	if out != "originpool/web\n" {
		t.Fatalf("after label: %q", out)
	}
	out = r.ok("patch", "op", "web", "-p", "spec: {loadBalancing: maglev}", "--dry-run", "-o", "yaml")
	if !strings.Contains(out, "loadBalancing: maglev") {
		t.Fatalf("patch --dry-run -o yaml:\n%s", out)
	}
	if out := r.ok("get", "op", "web", "-o", "json"); strings.Contains(out, "maglev") {
		t.Fatal("patch --dry-run stored the change")
	}
	_, errOut, code = r.run("", "patch", "op", "web", "-p", `{"spec":{"loadBalancing":"fast"}}`)
	if code != 1 || !strings.Contains(errOut, "\n  spec.loadBalancing: ") {
		t.Fatalf("invalid patch: exit %d %q", code, errOut)
	}
	if out := r.ok("patch", "op", "web", "-p", `{"spec":{"loadBalancing":"leastRequest"}}`); out != "originpool/web patched\n" {
		t.Fatalf("patch: %q", out)
	}

	// delete -f removes referrers first; the namespace goes last.
	out = r.ok("delete", "-f", filepath.Join(dir, "cfg"))
	if want := "httploadbalancer/shop deleted\noriginpool/web deleted\noriginpool/api deleted\nnamespace/retail deleted\n"; out != want {
		t.Fatalf("delete -f:\n%s\nwant:\n%s", out, want)
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestGetWatchAgainstConsole(t *testing.T) {
	r := runner{t: t, config: startConsole(t)}
	dir := t.TempDir()
	write(t, filepath.Join(dir, "ns.yaml"), namespaceDoc)
	write(t, filepath.Join(dir, "web.yaml"), webPool)
	r.ok("apply", "-f", filepath.Join(dir, "ns.yaml"))
	r.ok("apply", "-f", filepath.Join(dir, "web.yaml"))

	var out, errOut syncBuffer
	streams := cli.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}
	root := cli.NewRootCommand(streams)
	root.SetArgs([]string{"get", "op", "--watch", "-o", "name", "--config", r.config})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	waitFor := func(what string, cond func(string) bool) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for !cond(out.String()) {
			if time.Now().After(deadline) {
				cancel()
				t.Fatalf("timed out waiting for %s; stdout:\n%s\nstderr:\n%s", what, out.String(), errOut.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFor("the initial list", func(s string) bool { return s == "originpool/web\n" })
	write(t, filepath.Join(dir, "api.yaml"), strings.NewReplacer("name: web", "name: api", "9000", "9001").Replace(webPool))
	r.ok("apply", "-f", filepath.Join(dir, "api.yaml"))
	waitFor("the new pool", func(s string) bool { return strings.Contains(s, "originpool/api\n") })
	r.ok("delete", "op", "web")
	waitFor("the deletion", func(s string) bool { return strings.Count(s, "originpool/web\n") == 2 })
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("watch ended with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("get --watch did not stop on cancel")
	}
}
