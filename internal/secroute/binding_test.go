package secroute_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/meridian-platform/meridian/internal/dataplane"
	"github.com/meridian-platform/meridian/internal/node"
	"github.com/meridian-platform/meridian/internal/testfixture"
)

// TestBindingFirewallCannotBeSwitchedOff: the load balancer's owner names
// a monitor-only firewall, on the load balancer and on a route; the
// namespace's SecurityBinding firewall still blocks, because both run.
func TestBindingFirewallCannotBeSwitchedOff(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer backend.Close()
	port := testfixture.FreePort(t)
	objs := fmt.Sprintf(`
apiVersion: meridian/v1
kind: OriginPool
metadata: {name: backend, namespace: shop}
spec: {endpoints: [{address: "%s"}]}
---
apiVersion: meridian/v1
kind: AppFirewall
metadata: {name: lenient, namespace: shop}
spec: {mode: monitor}
---
apiVersion: meridian/v1
kind: AppFirewall
metadata: {name: mandatory, namespace: shop}
spec: {mode: block}
---
apiVersion: meridian/v1
kind: HTTPLoadBalancer
metadata: {name: web, namespace: shop}
spec:
  domains: ["*"]
  listeners: [{port: %d, address: 127.0.0.1}]
  defaultPool: backend
  appFirewall: lenient
  routes:
    - {match: {pathPrefix: /r}, appFirewall: lenient}
`, strings.TrimPrefix(backend.URL, "http://"), port)
	binding := `
---
apiVersion: meridian/v1
kind: SecurityBinding
metadata: {name: secops, namespace: shop}
spec: {appFirewall: mandatory}
`
	sec := node.NewSecurity(io.Discard)
	dp := startDataplane(t, dataplane.Options{Stages: sec.Stages})
	apply := func(doc string) {
		t.Helper()
		applyDoc(t, dp, sec, doc)
	}
	attack := func(path string) int {
		t.Helper()
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d%s?q=%%3Cscript%%3Ealert(1)%%3C/script%%3E", port, path))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	apply(objs)
	for _, p := range []string{"/", "/r/x"} {
		if got := attack(p); got != 200 {
			t.Fatalf("monitor-only firewall at %s: %d, want 200", p, got)
		}
	}
	apply(objs + binding)
	for _, p := range []string{"/", "/r/x"} {
		if got := attack(p); got != 403 {
			t.Fatalf("with the binding at %s: %d, want 403", p, got)
		}
	}
}
