package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meridian-platform/meridian/internal/testfixture"
)

// siteFetch GETs http://127.0.0.1:port/ with Host shop.test and returns the body.
func siteFetch(hc *http.Client, port int) (string, error) {
	req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/", port), nil)
	req.Host = "shop.test"
	resp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %d: %s", resp.StatusCode, b)
	}
	return string(b), nil
}

// waitSiteServes waits until the listener on port answers want.
func waitSiteServes(t *testing.T, hc *http.Client, port int, want string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var got string
	var err error
	for time.Now().Before(deadline) {
		if got, err = siteFetch(hc, port); err == nil && got == want {
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("port %d: timed out waiting for %q; last answer %q, error %v", port, want, got, err)
}

// waitSiteCLI polls a CLI command until its output satisfies ok.
func waitSiteCLI(t *testing.T, env []string, what string, ok func(string) bool, timeout time.Duration, args ...string) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var out string
	for time.Now().Before(deadline) {
		var code int
		if out, code = run(t, env, "", args...); code == 0 && ok(out) {
			return out
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s; last output of meridian %s:\n%s", what, strings.Join(args, " "), out)
	return ""
}

func sitePoolDoc(backend string) string {
	return `apiVersion: meridian/v1
kind: OriginPool
metadata: {name: web, namespace: shop}
spec: {endpoints: [{address: "` + backend + `"}]}
`
}

// TestSitesFleet runs a console and three `meridian node` processes
// registered with one auto-approving SiteToken, places load balancers on
// them through virtual sites and follows configuration to every node
// through updates, a decommission, a console crash under traffic, a node
// restarted while the console is down, the console's return and a
// rollback.
func TestSitesFleet(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four processes")
	}
	began := time.Now()
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

	// Backends answer with their own letter.
	backends := map[string]string{}
	for _, name := range []string{"A", "B", "C", "D"} {
		body := name
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, body) }))
		t.Cleanup(srv.Close)
		backends[name] = strings.TrimPrefix(srv.URL, "http://")
	}

	dataDir := filepath.Join(t.TempDir(), "console")
	consoleAddr := fmt.Sprintf("127.0.0.1:%d", testfixture.FreePort(t))
	console, env, url := startConsole(t, dataDir, "--listen", consoleAddr)
	caFile := filepath.Join(dataDir, "ca.crt")

	out := mustRun(t, env, "create", "sitetoken", "eu", "--labels", "region=eu", "--max-uses", "3", "--expires", "1h", "--auto-approve")
	token := strings.TrimSpace(strings.SplitN(out, "\n", 2)[0])
	if token == "" || !strings.Contains(out, "sitetoken/eu created") {
		t.Fatalf("create sitetoken:\n%s", out)
	}

	names := []string{"eu-1", "eu-2", "eu-3"}
	slots := []string{"a", "b", "c"}
	nodeDirs := map[string]string{}
	nodes := map[string]*proc{}
	startNode := func(name, token string) *proc {
		args := []string{"node", "--console", url, "--name", name, "--data-dir", nodeDirs[name], "--ca-file", caFile, "--admin", ""}
		if token != "" {
			args = append(args, "--token", token)
		}
		return start(t, nil, args...)
	}
	for _, n := range names {
		nodeDirs[n] = filepath.Join(t.TempDir(), n)
		nodes[n] = startNode(n, token)
	}

	// Registration: three approved sites with the token's labels, online.
	onlineRe := regexp.MustCompile(`(?m)^eu-\d\s+approved\s+true\s`)
	wide := waitSiteCLI(t, env, "three online sites", func(s string) bool { return len(onlineRe.FindAllString(s, -1)) == 3 },
		20*time.Second, "get", "sites", "-o", "wide")
	header := scanLines(wide)[0]
	for _, col := range []string{"ONLINE", "LAST-SEEN", "NODE-VERSION", "CAPABILITY", "APPLIED", "ERRORS"} {
		if !strings.Contains(header, col) {
			t.Fatalf("get sites -o wide has no %s column:\n%s", col, wide)
		}
	}
	if !strings.Contains(wide, "region=eu") {
		t.Fatalf("sites lack the token's labels:\n%s", wide)
	}
	t.Logf("registered three sites after %v", time.Since(began).Round(time.Millisecond))

	// The three nodes share this host, so each serves its own listener
	// port: an admin label puts each site in its own virtual site (all of
	// them select region=eu), and the three load balancers share one
	// origin pool, whose changes must reach all three sites.
	for i, n := range names {
		mustRun(t, env, "label", "site", n, "slot="+slots[i])
	}
	mustRun(t, env, "create", "namespace", "shop")
	ports := map[string]int{}
	var cfg strings.Builder
	for i, n := range names {
		ports[n] = testfixture.FreePort(t)
		fmt.Fprintf(&cfg, `---
apiVersion: meridian/v1
kind: VirtualSite
metadata: {name: eu-%[1]s}
spec: {selector: {matchLabels: {region: eu, slot: %[1]s}}}
---
apiVersion: meridian/v1
kind: HTTPLoadBalancer
metadata: {name: shop-%[1]s, namespace: shop}
spec:
  domains: ["shop.test"]
  listeners: [{port: %[2]d, address: 127.0.0.1}]
  defaultPool: web
  sites: {virtualSite: eu-%[1]s}
`, slots[i], ports[n])
	}
	dir := t.TempDir()
	poolFile := filepath.Join(dir, "pool.yaml")
	applyPool := func(backend string) time.Time {
		mustRun(t, env, "apply", "-f", writeFile(t, poolFile, sitePoolDoc(backends[backend])))
		return time.Now()
	}
	applyPool("A") // generation 1
	mustRun(t, env, "apply", "-f", writeFile(t, filepath.Join(dir, "placement.yaml"), cfg.String()))
	for _, n := range names {
		waitSiteServes(t, hc, ports[n], "A", 20*time.Second)
	}
	t.Logf("placement served by all three after %v", time.Since(began).Round(time.Millisecond))

	// An update to the shared pool reaches all three.
	at := applyPool("B") // generation 2
	for _, n := range names {
		waitSiteServes(t, hc, ports[n], "B", 20*time.Second)
	}
	t.Logf("update reached all three sites in %v", time.Since(at).Round(time.Millisecond))
	appliedRe := regexp.MustCompile(`(?m)^eu-\d\s+approved\s+true\s+\S+\s+\S+\s+\d+\s+\S+\s+0\s`)
	waitSiteCLI(t, env, "three sites with an applied version and no errors", func(s string) bool {
		return len(appliedRe.FindAllString(s, -1)) == 3
	}, 20*time.Second, "get", "sites", "-o", "wide")
	if d := mustRun(t, env, "describe", "site", "eu-1"); !strings.Contains(d, "online: true") || !strings.Contains(d, "slot=a") {
		t.Fatalf("describe site eu-1:\n%s", d)
	}
	// The requests above reach the console as per-site counters (the
	// nodes report every 10 s).
	topRe := regexp.MustCompile(`(?m)^eu-1\s+true\s+[1-9]\d*\s+[1-9]\d*\s`)
	waitSiteCLI(t, env, "eu-1's request counters in meridian top", topRe.MatchString, 30*time.Second,
		"top", "httploadbalancer", "shop-a", "-n", "shop")

	// Rejection on one node: eu-1 cannot bind the listener of "busy" (the
	// port is held here); eu-1 says so in its status and keeps serving
	// shop-a, the other sites are unaffected; deleting "busy" clears it.
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	busyPort := held.Addr().(*net.TCPAddr).Port
	mustRun(t, env, "apply", "-f", writeFile(t, filepath.Join(dir, "busy.yaml"), fmt.Sprintf(`apiVersion: meridian/v1
kind: HTTPLoadBalancer
metadata: {name: busy, namespace: shop}
spec:
  domains: ["busy.test"]
  listeners: [{port: %d, address: 127.0.0.1}]
  defaultPool: web
  sites: {virtualSite: eu-a}
`, busyPort)))
	errorsRe := func(site, n string) *regexp.Regexp {
		return regexp.MustCompile(`(?m)^` + site + `\s+approved\s+true\s+\S+\s+\S+\s+\d+\s+\S+\s+` + n + `\s`)
	}
	waitSiteCLI(t, env, "eu-1 reporting an error", func(s string) bool {
		return errorsRe("eu-1", "[1-9]").MatchString(s) && errorsRe("eu-2", "0").MatchString(s) && errorsRe("eu-3", "0").MatchString(s)
	}, 20*time.Second, "get", "sites", "-o", "wide")
	d := mustRun(t, env, "describe", "site", "eu-1")
	if !strings.Contains(d, "Errors:") || !strings.Contains(d, fmt.Sprint(busyPort)) {
		t.Fatalf("describe site eu-1 does not show the listener error:\n%s", d)
	}
	waitSiteServes(t, hc, ports["eu-1"], "B", 5*time.Second)
	// The port frees up: eu-1 starts the listener by itself (it retries
	// with backoff) and the error clears, with no change to the object.
	held.Close()
	waitSiteCLI(t, env, "eu-1 without errors once the port is free", func(s string) bool { return errorsRe("eu-1", "0").MatchString(s) },
		40*time.Second, "get", "sites", "-o", "wide")
	waitSiteCLI(t, env, "busy applied on eu-1", func(s string) bool { return strings.Contains(s, "Rollout: applied 1/1 sites\n") },
		20*time.Second, "describe", "httploadbalancer", "busy", "-n", "shop")
	mustRun(t, env, "delete", "httploadbalancer", "busy", "-n", "shop")

	// A decommissioned site gets no more updates.
	mustRun(t, env, "site", "decommission", "eu-3")
	waitSiteCLI(t, env, "eu-3 decommissioned and offline", func(s string) bool {
		return regexp.MustCompile(`(?m)^eu-3\s+decommissioned\s+false\s`).MatchString(s)
	}, 20*time.Second, "get", "sites", "-o", "wide")
	applyPool("C") // generation 3
	waitSiteServes(t, hc, ports["eu-1"], "C", 20*time.Second)
	waitSiteServes(t, hc, ports["eu-2"], "C", 20*time.Second)
	time.Sleep(300 * time.Millisecond)
	if got, _ := siteFetch(hc, ports["eu-3"]); got == "C" {
		t.Fatal("the decommissioned site eu-3 received an update")
	}

	// The console dies (SIGKILL) while a client sends requests to eu-1:
	// every request is answered.
	var sent, failed atomic.Int64
	var firstErr atomic.Value
	stopLoop := make(chan struct{})
	var loop sync.WaitGroup
	loop.Add(1)
	go func() {
		defer loop.Done()
		for {
			select {
			case <-stopLoop:
				return
			default:
			}
			got, err := siteFetch(hc, ports["eu-1"])
			sent.Add(1)
			if err == nil && got != "C" {
				err = fmt.Errorf("answer %q, want C", got)
			}
			if err != nil {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, err.Error())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	time.Sleep(200 * time.Millisecond)
	if err := console.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-console.done

	// eu-2 restarts while the console is down and serves its last-known-good copy.
	nodes["eu-2"].stop()
	nodes["eu-2"] = startNode("eu-2", "")
	waitSiteServes(t, hc, ports["eu-2"], "C", 20*time.Second)

	// The console comes back on the same address; the nodes resync and
	// follow the next update.
	console = start(t, nil, "console", "--data-dir", dataDir, "--listen", consoleAddr)
	console.waitFor(reListening, 30*time.Second)
	time.Sleep(200 * time.Millisecond)
	close(stopLoop)
	loop.Wait()
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d of %d requests failed while the console was away; first: %v", n, sent.Load(), firstErr.Load())
	}
	t.Logf("%d requests to eu-1 while the console was down and restarted, none failed", sent.Load())
	waitSiteCLI(t, env, "eu-1 and eu-2 back online", func(s string) bool {
		return len(regexp.MustCompile(`(?m)^eu-[12]\s+approved\s+true\s`).FindAllString(s, -1)) == 2
	}, 20*time.Second, "get", "sites", "-o", "wide")
	at = applyPool("D") // generation 4
	waitSiteServes(t, hc, ports["eu-1"], "D", 20*time.Second)
	waitSiteServes(t, hc, ports["eu-2"], "D", 20*time.Second)
	t.Logf("update after the console's restart reached both sites in %v", time.Since(at).Round(time.Millisecond))

	// A rollback reaches every (live) site.
	mustRun(t, env, "rollback", "originpool", "web", "-n", "shop", "--to-generation", "2")
	waitSiteServes(t, hc, ports["eu-1"], "B", 20*time.Second)
	waitSiteServes(t, hc, ports["eu-2"], "B", 20*time.Second)

	// eu-3 is recommissioned: its node, started again on its data
	// directory with the one-use token, registers under the same name with
	// its labels (slot=c) and serves again.
	out = mustRun(t, env, "site", "recommission", "eu-3", "--approve")
	rtoken := strings.TrimSpace(strings.SplitN(out, "\n", 2)[0])
	if rtoken == "" || !strings.Contains(out, "site/eu-3 recommissioned") {
		t.Fatalf("site recommission:\n%s", out)
	}
	nodes["eu-3"].stop()
	nodes["eu-3"] = startNode("eu-3", rtoken)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("eu-3 output:\n%s", nodes["eu-3"].Output())
		}
	})
	waitSiteServes(t, hc, ports["eu-3"], "B", 30*time.Second)
	waitSiteCLI(t, env, "eu-3 approved and online again", func(s string) bool {
		return regexp.MustCompile(`(?m)^eu-3\s+approved\s+true\s`).MatchString(s)
	}, 20*time.Second, "get", "sites", "-o", "wide")
	t.Logf("whole scenario took %v", time.Since(began).Round(time.Millisecond))
}
