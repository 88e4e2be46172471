package cli

import (
	"bytes"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// run executes the CLI with args and captured streams, as main would, and
// returns stdout, stderr and the exit code.
func run(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	streams := IOStreams{In: strings.NewReader(stdin), Out: &out, ErrOut: &errOut}
	code := Execute(NewRootCommand(streams), args, streams)
	return out.String(), errOut.String(), code
}

func TestEveryVerbHasHelpWithExamples(t *testing.T) {
	root := NewRootCommand(IOStreams{In: strings.NewReader(""), Out: &bytes.Buffer{}, ErrOut: &bytes.Buffer{}})
	var walk func(c *cobra.Command)
	seen := 0
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			if sub.Name() == "help" || sub.Name() == "completion" {
				continue
			}
			seen++
			if strings.TrimSpace(sub.Example) == "" {
				t.Errorf("%q has no Example", sub.CommandPath())
			}
			if sub.Short == "" {
				t.Errorf("%q has no Short", sub.CommandPath())
			}
			walk(sub)
		}
	}
	walk(root)
	if seen < 20 {
		t.Fatalf("only %d commands found", seen)
	}
	out, _, code := run(t, "", "get", "--help")
	if code != 0 || !strings.Contains(out, "Examples:") || !strings.Contains(out, "meridian get originpools") {
		t.Fatalf("get --help (%d):\n%s", code, out)
	}
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConfigCommands(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	t.Setenv(ConfigEnv, cfg)
	ca := writeFile(t, dir, "ca.pem", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")

	if _, errOut, code := run(t, "", "config", "current-context"); code != 1 || !strings.Contains(errOut, "no current context") {
		t.Fatalf("current-context on empty config: %d %q", code, errOut)
	}
	if out, _, code := run(t, "", "config", "set-context", "dev", "--server", "https://127.0.0.1:7443", "--certificate-authority", ca, "--token", "t1", "--tenant", "acme"); code != 0 || !strings.Contains(out, `Context "dev" set.`) {
		t.Fatalf("set-context: %d %q", code, out)
	}
	if _, _, code := run(t, "", "config", "set-context", "prod", "--server", "https://console:7443", "--namespace", "retail"); code != 0 {
		t.Fatal("set-context prod")
	}
	out, _, _ := run(t, "", "config", "current-context")
	if out != "dev\n" {
		t.Fatalf("the first context becomes current, got %q", out)
	}
	if out, _, code := run(t, "", "config", "use-context", "prod"); code != 0 || out != "Switched to context \"prod\".\n" {
		t.Fatalf("use-context: %d %q", code, out)
	}
	if _, errOut, code := run(t, "", "config", "use-context", "nope"); code != 1 || !strings.HasPrefix(errOut, `Error: no context named "nope"`) {
		t.Fatalf("use-context nope: %d %q", code, errOut)
	}
	// Changing one field keeps the others.
	if _, _, code := run(t, "", "config", "set-context", "dev", "--namespace", "payments"); code != 0 {
		t.Fatal("set-context dev --namespace")
	}
	out, _, _ = run(t, "", "config", "get-contexts")
	golden(t, "get-contexts.txt", []byte(out))
	if strings.Contains(out, "t1") {
		t.Fatal("get-contexts must not print tokens")
	}
	c, err := LoadConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dev, _ := c.Context("dev")
	if dev.Token != "t1" || dev.Namespace != "payments" || !strings.Contains(dev.CAData, "BEGIN CERTIFICATE") || dev.Server != "https://127.0.0.1:7443" {
		t.Fatalf("dev context: %+v", dev)
	}
	// --config wins over the environment.
	other := filepath.Join(dir, "other.yaml")
	if _, _, code := run(t, "", "config", "set-context", "x", "--server", "https://x", "--config", other); code != 0 {
		t.Fatal("set-context --config")
	}
	if _, err := os.Stat(other); err != nil {
		t.Fatalf("--config file not written: %v", err)
	}
	if out, _, code := run(t, "", "config", "delete-context", "prod"); code != 0 || !strings.Contains(out, "Deleted") {
		t.Fatalf("delete-context: %d %q", code, out)
	}
	out, _, _ = run(t, "", "config", "current-context")
	if out != "" {
		t.Fatalf("deleting the current context clears it, got %q", out)
	}
}

func TestCommandsNeedAContext(t *testing.T) {
	t.Setenv(ConfigEnv, filepath.Join(t.TempDir(), "config.yaml"))
	_, errOut, code := run(t, "", "get", "originpools")
	if code != 1 || !strings.Contains(errOut, "no console to talk to") {
		t.Fatalf("get without context: %d %q", code, errOut)
	}
	_, errOut, code = run(t, "", "get", "op", "--context", "missing")
	if code != 1 || !strings.Contains(errOut, `context "missing" not found`) {
		t.Fatalf("get --context missing: %d %q", code, errOut)
	}
}

func TestArgumentErrors(t *testing.T) {
	t.Setenv(ConfigEnv, filepath.Join(t.TempDir(), "config.yaml"))
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"get", "gizmos"}, `Error: unknown kind "gizmos"`},
		{[]string{"get"}, "Error: a kind is required"},
		{[]string{"get", "op", "-o", "xml"}, `Error: unknown output format "xml"`},
		{[]string{"get", "op", "shop", "-A"}, "Error: a name cannot be combined with -l or -A"},
		{[]string{"describe", "op"}, "Error: describe takes one KIND and one NAME"},
		{[]string{"auth", "can-i", "fly", "op"}, `Error: unknown verb "fly"`},
		{[]string{"rollback", "op", "shop"}, `Error: required flag(s) "to-generation" not set`},
		{[]string{"apply"}, `Error: required flag(s) "filename" not set`},
		{[]string{"delete", "op"}, "Error: give the names of the objects to delete"},
		{[]string{"audit", "log", "--since", "yesterday"}, "Error: --since: \"yesterday\" is neither a duration"},
		{[]string{"login", "--server", "https://x", "--tenant", "a"}, "Error: give --tenant and --username (or --token)"},
		{[]string{"login", "--server", "https://x", "--tenant", "a", "-u", "alice"}, "Error: standard input is not a terminal: pipe the password with --password-stdin"},
	}
	for _, tc := range cases {
		_, errOut, code := run(t, "", tc.args...)
		if code == 0 || !strings.HasPrefix(errOut, tc.want) {
			t.Errorf("%v: exit %d, stderr %q, want prefix %q", tc.args, code, errOut, tc.want)
		}
	}
}

func TestApplyReportsBadFilesBeforeContactingTheConsole(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(ConfigEnv, filepath.Join(dir, "config.yaml"))
	if err := WriteContext("", Context{Name: "unreachable", Server: "https://127.0.0.1:1"}, true); err != nil {
		t.Fatal(err)
	}
	bad := writeFile(t, dir, "m/bad.yaml", "apiVersion: meridian/v1\nkind: OriginPool\nmetadata: {name: shop}\nspec: {endpoints: [{adress: x}]}\n")
	_, errOut, code := run(t, "", "apply", "-f", bad)
	if code != 1 || !strings.Contains(errOut, "reading "+bad+": document 1") || !strings.Contains(errOut, "\n  spec.endpoints[0].adress: unknown field") {
		t.Fatalf("apply bad file: %d\n%s", code, errOut)
	}
	_, errOut, code = run(t, "", "apply", "-f", filepath.Join(dir, "empty-dir-does-not-exist"))
	if code != 1 || !strings.Contains(errOut, "no such file") {
		t.Fatalf("apply missing path: %d %q", code, errOut)
	}
	// Stdin is read with -f -.
	_, errOut, code = run(t, "kind: Nope\n", "apply", "-f", "-")
	if code != 1 || !strings.Contains(errOut, "reading standard input") {
		t.Fatalf("apply -f - with a bad kind: %d %q", code, errOut)
	}
	_, errOut, code = run(t, "", "diff", "-f", bad)
	if code != 2 {
		t.Fatalf("diff errors exit 2, got %d %q", code, errOut)
	}
}

func TestReadManifestsFolder(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "b/pool.yaml", docPoolWeb)
	writeFile(t, dir, "a/ns.json", `{"apiVersion":"meridian/v1","kind":"Namespace","metadata":{"name":"retail"}}`)
	writeFile(t, dir, "lb.yml", join(docLB, docPoolAPI))
	writeFile(t, dir, "README.md", "not a manifest")
	writeFile(t, dir, ".hidden/x.yaml", "kind: Broken")
	objs, err := readManifests([]string{dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if k := keysOf(objs); k != "Namespace/retail OriginPool/web HTTPLoadBalancer/shop OriginPool/api" {
		t.Fatalf("files read in path order: %s", k)
	}
	if _, err := readManifests([]string{t.TempDir()}, nil); err == nil || !strings.Contains(err.Error(), "holds no .yaml") {
		t.Fatalf("empty folder: %v", err)
	}
}

func TestAPIResources(t *testing.T) {
	out, _, code := run(t, "", "api-resources")
	if code != 0 {
		t.Fatal(code)
	}
	for _, s := range []string{"originpools", "op", "OriginPool", "Namespaced", "namespaces", "Tenant"} {
		if !strings.Contains(out, s) {
			t.Errorf("api-resources lacks %q:\n%s", s, out)
		}
	}
}

func TestParseLabelArgs(t *testing.T) {
	set, remove, err := parseLabelArgs([]string{"a=1", "b=", "c-"})
	if err != nil || set["a"] != "1" || set["b"] != "" || len(set) != 2 || len(remove) != 1 || remove[0] != "c" {
		t.Fatalf("%v %v %v", set, remove, err)
	}
	for _, bad := range [][]string{{"=x"}, {"plain"}, {"-"}, {"a=1", "a-"}} {
		if _, _, err := parseLabelArgs(bad); err == nil {
			t.Errorf("parseLabelArgs(%q): want an error", bad)
		}
	}
	if _, err := patchJSON("[1]"); err == nil {
		t.Error("a list is not a merge patch")
	}
	if b, err := patchJSON("spec: {a: null}"); err != nil || string(b) != `{"spec":{"a":null}}` {
		t.Errorf("YAML patch: %s %v", b, err)
	}
}

func TestServerFlagOverridesTheContext(t *testing.T) {
	f := &factory{configPath: filepath.Join(t.TempDir(), "c.yaml")}
	if err := WriteContext(f.configPath, Context{Name: "a", Server: "https://a:7443", Token: "secret-a", CAData: "pem-a", Namespace: "ns"}, true); err != nil {
		t.Fatal(err)
	}
	f.server = "https://b:7443"
	ctx, err := f.currentContext()
	if err != nil {
		t.Fatal(err)
	}
	if ctx.Token != "secret-a" || ctx.CAData != "" || ctx.Server != "https://b:7443" {
		t.Fatalf("--server to another console keeps the token, not the CA: %+v", ctx)
	}
	f.server, f.token = "https://a:7443/", ""
	if ctx, _ = f.currentContext(); ctx.Token != "secret-a" || ctx.CAData != "pem-a" {
		t.Fatalf("--server naming the same console keeps the context: %+v", ctx)
	}
	f.server, f.token, f.tenant = "https://b:7443", "tok-b", "globex"
	if ctx, _ = f.currentContext(); ctx.Token != "tok-b" || ctx.Tenant != "globex" || !ctx.ActAsTenant {
		t.Fatalf("flags: %+v", ctx)
	}
	if got := f.ns(ctx); got != "ns" {
		t.Fatalf("namespace from the context: %s", got)
	}
	f.namespace = "x"
	if got := f.ns(ctx); got != "x" {
		t.Fatalf("-n wins: %s", got)
	}
	if got := (&factory{}).ns(Context{}); got != "default" {
		t.Fatalf("fallback namespace: %s", got)
	}
}

func TestTLSErrorsGetAHint(t *testing.T) {
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	ts.Config.ErrorLog = log.New(io.Discard, "", 0)
	ts.StartTLS()
	defer ts.Close()
	// A context for a TLS server whose CA it does not hold.
	t.Setenv(ConfigEnv, filepath.Join(t.TempDir(), "config.yaml"))
	if err := WriteContext("", Context{Name: "x", Server: ts.URL, Token: "t"}, true); err != nil {
		t.Fatal(err)
	}
	_, errOut, code := run(t, "", "get", "ns")
	if code != 1 || !strings.Contains(errOut, "Hint: the context does not trust this console's CA") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
}
