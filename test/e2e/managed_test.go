package e2e

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meridian-platform/meridian/internal/testfixture"
)

// managedSite is a console, one node registered to it (site edge-1,
// labels region=eu) and an origin answering "ok".
type managedSite struct {
	console     *proc
	env         []string // the CLI's environment, logged in as admin
	url         string   // the console's URL
	consoleAddr string
	dataDir     string // the console's
	origin      *httptest.Server
	hc          *http.Client // without keep-alive
}

// startManagedSite starts the console and the node (nodeArgs are added to
// `meridian node`) and creates namespace shop.
func startManagedSite(t *testing.T, nodeArgs ...string) *managedSite {
	t.Helper()
	m := &managedSite{
		hc:          &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}},
		origin:      httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") })),
		dataDir:     filepath.Join(t.TempDir(), "console"),
		consoleAddr: fmt.Sprintf("127.0.0.1:%d", testfixture.FreePort(t)),
	}
	t.Cleanup(m.origin.Close)
	m.console, m.env, m.url = startConsole(t, m.dataDir, "--listen", m.consoleAddr)
	out := mustRun(t, m.env, "create", "sitetoken", "edge", "--labels", "region=eu", "--max-uses", "1", "--expires", "1h", "--auto-approve")
	token := strings.TrimSpace(strings.SplitN(out, "\n", 2)[0])
	start(t, nil, append([]string{"node", "--console", m.url, "--name", "edge-1", "--data-dir", filepath.Join(t.TempDir(), "node"),
		"--ca-file", filepath.Join(m.dataDir, "ca.crt"), "--token", token, "--admin", ""}, nodeArgs...)...)
	mustRun(t, m.env, "create", "namespace", "shop")
	return m
}

// applyShop applies, in namespace shop, virtual site eu (the node's),
// origin pool web (the origin) and the objects of more (YAML documents
// after them).
func (m *managedSite) applyShop(t *testing.T, more string) {
	t.Helper()
	mustRun(t, m.env, "apply", "-f", writeFile(t, filepath.Join(t.TempDir(), "shop.yaml"), fmt.Sprintf(`apiVersion: meridian/v1
kind: VirtualSite
metadata: {name: eu}
spec: {selector: {matchLabels: {region: eu}}}
---
apiVersion: meridian/v1
kind: OriginPool
metadata: {name: web, namespace: shop}
spec: {endpoints: [{address: %q}]}
---
`, strings.TrimPrefix(m.origin.URL, "http://"))+more))
}
