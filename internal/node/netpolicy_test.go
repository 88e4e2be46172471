package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/meridian-platform/meridian/internal/testfixture"
)

// resetFrom reports whether a connection from the loopback address src to
// addr is reset before anything is read (waiting 5s for it: a loaded
// machine may take a while to get to the connection).
func resetFrom(src, addr string) bool {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err == nil {
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = c.Read(make([]byte, 1))
	}
	return errors.Is(err, syscall.ECONNRESET)
}

// A standalone node enforces the NetworkPolicies of its files, counts
// their verdicts on /metrics, writes their events, and follows edits.
func TestRunStandaloneNetworkPolicy(t *testing.T) {
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
	policy := `apiVersion: meridian/v1
kind: NetworkPolicy
metadata: {name: edge}
spec:
  sites: {virtualSite: ignored-when-standalone}
  mode: %s
  ingress: [{name: lab, action: deny, sources: [127.0.0.2/32]}]
`
	writeFile(t, filepath.Join(dir, "netpol.yaml"), fmt.Sprintf(policy, "enforce"))
	events := &syncBuf{}
	sec := NewSecurity(events)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	secDone := make(chan struct{})
	go func() { sec.Run(ctx); close(secDone) }()
	adminURL, stop := startStandalone(t, Options{ConfigPath: dir, Stages: sec.Stages, Collectors: sec.Collectors,
		SecurityEvents: sec.Events()})
	addr := fmt.Sprintf("127.0.0.1:%d", port)

	if !resetFrom("127.0.0.2", addr) {
		t.Fatal("the denied client was not reset")
	}
	if c, b := testfixture.Get("http://" + addr + "/"); c != 200 || b != "origin" {
		t.Fatalf("allowed client: %d %q", c, b)
	}
	counter := func(mode string) string {
		_, m := testfixture.Get(adminURL + "/metrics")
		for _, line := range strings.Split(m, "\n") {
			if strings.HasPrefix(line, "meridian_netpolicy_connections_total{") && strings.Contains(line, `rule="lab"`) &&
				strings.Contains(line, `mode="`+mode+`"`) && strings.Contains(line, `namespace="default"`) && strings.Contains(line, `action="deny"`) {
				return line[strings.LastIndexByte(line, ' ')+1:]
			}
		}
		return ""
	}
	// The verdict is counted around the reset the client saw: wait for the
	// counter to show before checking it.
	settled := func(mode string) string {
		var v string
		testfixture.WaitFor(t, "the "+mode+" counter", func() bool { v = counter(mode); return v != "" && v != "0" })
		return v
	}
	if v := settled("enforce"); v != "1" {
		t.Fatalf("deny counter %q, want 1", v)
	}
	testfixture.WaitFor(t, "the deny event", func() bool {
		return strings.Contains(events.String(), `"kind":"network"`) && strings.Contains(events.String(), `"action":"denied"`)
	})

	// Edited to dryRun: the lab gets in, and is counted as a would-be deny.
	writeFile(t, filepath.Join(dir, "netpol.yaml"), fmt.Sprintf(policy, "dryRun"))
	testfixture.WaitFor(t, "the dry-run policy", func() bool { return !resetFrom("127.0.0.2", addr) })
	if v := settled("dryRun"); v != "1" {
		t.Fatalf("dry-run counter %q, want 1", v)
	}
	testfixture.WaitFor(t, "the detected event", func() bool { return strings.Contains(events.String(), `"action":"detected"`) })
	stop()
	cancel()
	<-secDone
}
