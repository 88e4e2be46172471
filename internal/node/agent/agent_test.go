package agent_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/internal/dataplane"
	"github.com/meridian-platform/meridian/internal/node/agent"
	"github.com/meridian-platform/meridian/internal/sites/sitestest"
	"github.com/meridian-platform/meridian/internal/testfixture"
)

func backend(t *testing.T, name string) string {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, name) }))
	t.Cleanup(s.Close)
	return strings.TrimPrefix(s.URL, "http://")
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

type runningNode struct {
	a      *agent.Agent
	dp     *dataplane.Server
	cancel func()
	done   chan struct{}
	err    error // what Run returned, once done is closed
}

func startNode(t *testing.T, e *sitestest.Env, token, name, dir string) *runningNode {
	t.Helper()
	dp := dataplane.New(dataplane.Options{Logger: quiet, AccessLog: io.Discard})
	a, err := agent.New(agent.Options{ConsoleURL: e.URL, Token: token, Name: name, DataDir: dir, CAData: e.CA,
		NodeVersion: "test", Applier: &agent.DataplaneApplier{DP: dp}, MinBackoff: 20 * time.Millisecond,
		MaxBackoff: 300 * time.Millisecond, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &runningNode{a: a, dp: dp, cancel: cancel, done: make(chan struct{})}
	go func() { n.err = a.Run(ctx); close(n.done) }()
	t.Cleanup(n.stop)
	return n
}

func (n *runningNode) stop() {
	if n.cancel == nil {
		return
	}
	n.cancel()
	<-n.done
	ctx, c := context.WithTimeout(context.Background(), 5*time.Second)
	defer c()
	n.dp.Shutdown(ctx)
	n.cancel = nil
}

const objectsYAML = `
apiVersion: meridian/v1
kind: Namespace
metadata: {name: retail}
---
apiVersion: meridian/v1
kind: VirtualSite
metadata: {name: eu}
spec:
  selector:
    matchExpressions: [{key: region, operator: In, values: [eu]}]
---
apiVersion: meridian/v1
kind: OriginPool
metadata: {name: shop, namespace: retail}
spec:
  endpoints: [{address: "%s"}]
---
apiVersion: meridian/v1
kind: HTTPLoadBalancer
metadata: {name: shop, namespace: retail}
spec:
  domains: ["*"]
  listeners: [{port: %d, address: 127.0.0.1}]
  defaultPool: shop
  sites: {virtualSite: eu}
`

// startShop runs a console serving objectsYAML: the shop load balancer of
// the eu sites on port, its pool on an origin answering "one" (returned),
// with a token registering auto-approved eu sites; url is the load
// balancer's.
func startShop(t *testing.T, port int) (e *sitestest.Env, tok, url, origin string) {
	t.Helper()
	e = sitestest.Start(t)
	origin = backend(t, "one")
	e.Apply(t, "", sitestest.MustDecode(t, fmt.Sprintf(objectsYAML, origin, port))...)
	tok = e.CreateToken(t, "", "eu", v1.SiteTokenSpec{MaxUses: 5, AutoApprove: true, Labels: map[string]string{"region": "eu"}})
	return e, tok, fmt.Sprintf("http://127.0.0.1:%d/", port), origin
}

// TestNodeEndToEnd runs a real console and a node agent driving a real
// data plane: registration, placement by label, an update, a label
// change that removes and restores the configuration, the console going
// away (traffic keeps flowing), a node restart while the console is down
// (served from the last-known-good copy) and the resync after the console
// is back.
func TestNodeEndToEnd(t *testing.T) {
	e, tok, url, b1 := startShop(t, testfixture.FreePort(t))
	b2 := backend(t, "two")
	admin := e.Client(t, "")
	ctx := context.Background()

	dir := filepath.Join(t.TempDir(), "node")
	n := startNode(t, e, tok, "station-1", dir)
	testfixture.WaitFor(t, "traffic through the node", func() bool { _, b := testfixture.Get(url); return b == "one" })

	// Status: the site is online and the load balancer shows its rollout.
	testfixture.WaitFor(t, "site status", func() bool {
		var s v1.Site
		admin.Get(ctx, "Site", "", "station-1", &s)
		return s.Status.Online && s.Status.AppliedVersion != "" && s.Status.AppliedVersion == n.a.Version()
	})
	testfixture.WaitFor(t, "rollout status", func() bool {
		var lb v1.HTTPLoadBalancer
		admin.Get(ctx, "HTTPLoadBalancer", "retail", "shop", &lb)
		return lb.Status.Rollout == "applied 1/1 sites"
	})

	// An update reaches the node.
	if err := admin.Patch(ctx, "OriginPool", "retail", "shop", []byte(fmt.Sprintf(`{"spec":{"endpoints":[{"address":%q}]}}`, b2)), nil); err != nil {
		t.Fatal(err)
	}
	testfixture.WaitFor(t, "the update", func() bool { _, b := testfixture.Get(url); return b == "two" })

	// The site loses its label: the configuration goes; it comes back.
	if err := admin.Patch(ctx, "Site", "", "station-1", []byte(`{"metadata":{"labels":{"region":"us"}}}`), nil); err != nil {
		t.Fatal(err)
	}
	testfixture.WaitFor(t, "the configuration to be removed", func() bool { c, _ := testfixture.Get(url); return c == 0 })
	if err := admin.Patch(ctx, "Site", "", "station-1", []byte(`{"metadata":{"labels":{"region":"eu"}}}`), nil); err != nil {
		t.Fatal(err)
	}
	testfixture.WaitFor(t, "the configuration to come back", func() bool { _, b := testfixture.Get(url); return b == "two" })

	// The snapshot on disk is sealed.
	raw, err := os.ReadFile(filepath.Join(dir, "snapshot.enc"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), "HTTPLoadBalancer") || strings.Contains(string(raw), b2) {
		t.Fatal("last-known-good snapshot is stored in clear")
	}

	// Console down: traffic keeps flowing.
	e.Stop()
	for i := 0; i < 20; i++ {
		if _, b := testfixture.Get(url); b != "two" {
			t.Fatalf("request %d failed with the console down: %q", i, b)
		}
	}
	// Node restart while the console is down: served from disk.
	n.stop()
	version := n.a.Version()
	n = startNode(t, e, "", "station-1", dir)
	testfixture.WaitFor(t, "traffic from the last-known-good copy", func() bool { _, b := testfixture.Get(url); return b == "two" })
	if n.a.Version() != version {
		t.Fatalf("restarted node runs %q, want %q", n.a.Version(), version)
	}

	// Console back: the node resynchronises and picks up a change made
	// while it was away.
	e.Restart(t)
	admin = e.Client(t, "")
	if err := admin.Patch(ctx, "OriginPool", "retail", "shop", []byte(fmt.Sprintf(`{"spec":{"endpoints":[{"address":%q}]}}`, b1)), nil); err != nil {
		t.Fatal(err)
	}
	testfixture.WaitFor(t, "the change after the console restart", func() bool { _, b := testfixture.Get(url); return b == "one" })
	testfixture.WaitFor(t, "the site online again", func() bool {
		var s v1.Site
		admin.Get(ctx, "Site", "", "station-1", &s)
		return s.Status.Online && s.Status.AppliedVersion == n.a.Version()
	})

}

func TestRegistrationRefusedForGood(t *testing.T) {
	e := sitestest.Start(t)
	dp := dataplane.New(dataplane.Options{Logger: quiet, AccessLog: io.Discard})
	defer dp.Shutdown(context.Background())
	a, err := agent.New(agent.Options{ConsoleURL: e.URL, Token: "mt_0123456789abcdef0123456789abcdef_x", Name: "s1",
		DataDir: t.TempDir(), CAData: e.CA, Applier: &agent.DataplaneApplier{DP: dp}, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = a.Run(ctx)
	if err == nil || !strings.Contains(err.Error(), "invalid site token") {
		t.Fatalf("Run with a bad token: %v", err)
	}
}

func TestRegistrationNeedsTrustedConsole(t *testing.T) {
	e := sitestest.Start(t)
	tok := e.CreateToken(t, "", "t", v1.SiteTokenSpec{})
	dp := dataplane.New(dataplane.Options{Logger: quiet, AccessLog: io.Discard})
	defer dp.Shutdown(context.Background())
	a, err := agent.New(agent.Options{ConsoleURL: e.URL, Token: tok, Name: "s1", DataDir: t.TempDir(),
		Applier: &agent.DataplaneApplier{DP: dp}, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Run(ctx); err == nil || !strings.Contains(err.Error(), "--ca-file") {
		t.Fatalf("Run against an untrusted console: %v", err)
	}
}
