package e2e

import (
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/meridian-platform/meridian/internal/testfixture"
)

// TestNetworkPolicyFromTheConsole: a NetworkPolicy applied with the CLI
// is checked by the console (a bad CIDR is refused with its field),
// reaches the node of its virtual site, resets a denied client before any
// byte is read while others are served, and its event is listed by
// `meridian get securityevents`.
func TestNetworkPolicyFromTheConsole(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a console and a node")
	}
	m := startManagedSite(t)
	env, hc := m.env, m.hc
	port := testfixture.FreePort(t)
	m.applyShop(t, fmt.Sprintf(`apiVersion: meridian/v1
kind: HTTPLoadBalancer
metadata: {name: front, namespace: shop}
spec:
  domains: ["*"]
  listeners: [{port: %d, address: 127.0.0.1}]
  defaultPool: web
  sites: {virtualSite: eu}
`, port))
	waitSiteServes(t, hc, port, "ok", 30*time.Second)

	policy := `apiVersion: meridian/v1
kind: NetworkPolicy
metadata: {name: edge, namespace: shop}
spec:
  sites: {virtualSite: eu}
  ingress:
    - {name: lab, action: deny, sources: [%s]}
`
	bad := mustFail(t, env, "apply", "-f", writeFile(t, filepath.Join(t.TempDir(), "bad.yaml"), fmt.Sprintf(policy, "127.0.0.2/8")))
	if !strings.Contains(bad, "spec.ingress[0].sources[0]") {
		t.Fatalf("a CIDR with host bits was not refused with its field:\n%s", bad)
	}
	mustRun(t, env, "apply", "-f", writeFile(t, filepath.Join(t.TempDir(), "netpol.yaml"), fmt.Sprintf(policy, "127.0.0.2/32")))
	if out := mustRun(t, env, "get", "netpol", "-n", "shop"); !strings.Contains(out, "edge") {
		t.Fatalf("get netpol:\n%s", out)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	reset := func() bool {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}, Timeout: 2 * time.Second}
		c, err := d.Dial("tcp", addr)
		if err == nil {
			defer c.Close()
			_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
			_, err = io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
			if err == nil {
				_, err = c.Read(make([]byte, 1))
			}
		}
		return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
	}
	deadline := time.Now().Add(30 * time.Second)
	for !reset() {
		if time.Now().After(deadline) {
			t.Fatal("the denied client is still served 30s after the policy was applied")
		}
		time.Sleep(200 * time.Millisecond)
	}
	waitSiteServes(t, hc, port, "ok", 5*time.Second)

	table := waitSiteCLI(t, env, "the network event", func(s string) bool { return strings.Contains(s, "network") },
		15*time.Second, "get", "securityevents", "-n", "shop")
	row := regexp.MustCompile(`(?m)^\S+\s+network\s+denied\s+front\s.*edge-1\s+127\.0\.0\.2`)
	if !row.MatchString(table) {
		t.Fatalf("no network event row:\n%s", table)
	}
}
