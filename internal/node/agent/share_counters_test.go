package agent_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/client"
	"github.com/meridian-platform/meridian/internal/dataplane"
	"github.com/meridian-platform/meridian/internal/distrib"
	"github.com/meridian-platform/meridian/internal/node/agent"
	"github.com/meridian-platform/meridian/internal/sites"
	"github.com/meridian-platform/meridian/internal/sites/sitestest"
	"github.com/meridian-platform/meridian/internal/testfixture"
)

const tenantLB = `
apiVersion: meridian/v1
kind: Namespace
metadata: {name: retail}
---
apiVersion: meridian/v1
kind: VirtualSite
metadata: {name: eu}
spec: {selector: {matchLabels: {region: eu}}}
---
apiVersion: meridian/v1
kind: OriginPool
metadata: {name: shop, namespace: retail}
spec: {endpoints: [{address: "%s"}]}
---
apiVersion: meridian/v1
kind: HTTPLoadBalancer
metadata: {name: %s, namespace: retail}
spec:
  domains: ["*"]
  listeners: [{port: %d, address: 127.0.0.1}]
  defaultPool: shop
  sites: {virtualSite: eu}
`

// TestSharedSiteCountersPerTenant: on a leased site, the node's
// per-load-balancer counters (from its real data plane) reach the console
// attributed to their tenants: each tenant sees its own objects' counters
// under its own names, never the other's, and nothing is summed per site.
func TestSharedSiteCountersPerTenant(t *testing.T) {
	e := sitestest.Start(t)
	e.CreateTenant(t, "other")
	ownPort, guestPort := testfixture.FreePort(t), testfixture.FreePort(t)
	e.Apply(t, "", sitestest.MustDecode(t, fmt.Sprintf(tenantLB, backend(t, "own"), "own", ownPort))...)
	e.Apply(t, "other", sitestest.MustDecode(t, fmt.Sprintf(tenantLB, backend(t, "guest"), "guest", guestPort))...)
	tok := e.CreateToken(t, "", "t", v1.SiteTokenSpec{MaxUses: 5, AutoApprove: true, Labels: map[string]string{"region": "eu"}})

	reg := prometheus.NewRegistry()
	dp := dataplane.New(dataplane.Options{Logger: quiet, AccessLog: io.Discard, Metrics: reg})
	a, err := agent.New(agent.Options{ConsoleURL: e.URL, Token: tok, Name: "s1", DataDir: filepath.Join(t.TempDir(), "s1"), CAData: e.CA,
		Applier: &agent.DataplaneApplier{DP: dp}, ObjectMetrics: reg, TelemetryInterval: 50 * time.Millisecond,
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 300 * time.Millisecond, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &runningNode{a: a, dp: dp, cancel: cancel, done: make(chan struct{})}
	go func() { n.err = a.Run(ctx); close(n.done) }()
	t.Cleanup(n.stop)
	testfixture.WaitFor(t, "s1 registered", func() bool { return a.Version() != "" })

	share := &v1.SiteShare{Spec: v1.SiteShareSpec{Site: "s1", Tenant: "other"}}
	share.APIVersion, share.Kind, share.Metadata.Name = v1.APIVersion, "SiteShare", "lease-s1"
	e.Apply(t, "", share)

	ownURL, guestURL := fmt.Sprintf("http://127.0.0.1:%d/", ownPort), fmt.Sprintf("http://127.0.0.1:%d/", guestPort)
	// Every answered request (whatever its status) is one the data plane
	// counted.
	sent := map[string]float64{}
	serves := func(url, want string) func() bool {
		return func() bool {
			c, b := testfixture.Get(url)
			if c != 0 {
				sent[url]++
			}
			return b == want
		}
	}
	testfixture.WaitFor(t, "the owner's load balancer on s1", serves(ownURL, "own"))
	testfixture.WaitFor(t, "the guest's load balancer on s1", serves(guestURL, "guest"))
	for i := 0; i < 3; i++ {
		serves(ownURL, "own")()
	}
	// Different totals per tenant, so that a sum or a swap shows.
	for i := 0; i < 100 && sent[guestURL] < sent[ownURL]+2; i++ {
		serves(guestURL, "guest")()
	}

	d := e.Console.Distributor()
	ownRef := distrib.ObjectRef{Kind: "HTTPLoadBalancer", Namespace: "retail", Name: "own"}
	guestRef := distrib.ObjectRef{Kind: "HTTPLoadBalancer", Namespace: "retail", Name: "guest"}
	var mine, theirs map[distrib.ObjectRef]map[string]float64
	testfixture.WaitFor(t, "per-tenant counters at the console", func() bool {
		mine, theirs = d.ObjectTelemetry(e.Tenant, e.Tenant, "s1"), d.ObjectTelemetry("other", e.Tenant, "s1")
		return mine[ownRef]["requests_total"] == sent[ownURL] && theirs[guestRef]["requests_total"] == sent[guestURL]
	})
	if len(mine) != 1 || len(theirs) != 1 {
		t.Fatalf("each tenant must see only its own load balancer: owner %v, guest %v", mine, theirs)
	}
	if mine[ownRef]["request_bytes_total"] <= 0 || theirs[guestRef]["response_body_bytes_total"] <= 0 {
		t.Fatalf("byte counters missing: owner %v, guest %v", mine, theirs)
	}
	// A node reporting counters for objects it was not sent (or naming a
	// guest's object without its namespace renamed) attributes them to
	// nobody.
	a.SetObjectCounter(distrib.ObjectRef{Kind: "HTTPLoadBalancer", Namespace: "retail", Name: "guest"}, "requests_total", 1000)
	a.SetObjectCounter(distrib.ObjectRef{Kind: "HTTPLoadBalancer", Namespace: "other--retail", Name: "elsewhere"}, "requests_total", 1000)
	a.SetObjectCounter(ownRef, "probe", 1)
	testfixture.WaitFor(t, "the next report", func() bool { return d.ObjectTelemetry(e.Tenant, e.Tenant, "s1")[ownRef]["probe"] == 1 })
	mine, theirs = d.ObjectTelemetry(e.Tenant, e.Tenant, "s1"), d.ObjectTelemetry("other", e.Tenant, "s1")
	if len(mine) != 1 || len(theirs) != 1 || theirs[guestRef]["requests_total"] != sent[guestURL] {
		t.Fatalf("counters of objects the node was not sent were attributed: owner %v, guest %v", mine, theirs)
	}
	// A tenant with no lease on s1 sees nothing there.
	if got := d.ObjectTelemetry("nobody", e.Tenant, "s1"); len(got) != 0 {
		t.Fatalf("a third tenant sees %v", got)
	}

	// The same through the REST API, each tenant with its own client.
	hold, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", guestPort))
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Close()
	ctx2 := context.Background()
	ownC, guestC := e.Client(t, ""), e.Client(t, "other")
	var om, gm *sites.ObjectMetrics
	testfixture.WaitFor(t, "metrics through the REST API", func() bool {
		if om, err = sites.GetObjectMetrics(ctx2, ownC, "HTTPLoadBalancer", "retail", "own"); err != nil {
			t.Fatal(err)
		}
		if gm, err = sites.GetObjectMetrics(ctx2, guestC, "HTTPLoadBalancer", "retail", "guest"); err != nil {
			t.Fatal(err)
		}
		return len(om.Sites) == 1 && len(gm.Sites) == 1 && gm.Sites[0].Counters["listener_connections"] >= 1
	})
	if om.Sites[0].Site != "s1" || om.Sites[0].Owner != "" || !om.Sites[0].Online || om.Total["requests_total"] != sent[ownURL] {
		t.Fatalf("owner's metrics: %+v", om)
	}
	if gm.Sites[0].Site != "s1" || gm.Sites[0].Owner != e.Tenant || gm.Total["requests_total"] != sent[guestURL] {
		t.Fatalf("guest's metrics: %+v", gm)
	}
	for _, m := range []*sites.ObjectMetrics{om, gm} {
		var byClass float64
		for _, c := range []string{"1xx", "2xx", "3xx", "4xx", "5xx", "other"} {
			byClass += m.Total["requests_"+c]
		}
		if byClass != m.Total["requests_total"] || m.Total["requests_2xx"] == 0 {
			t.Fatalf("status classes do not add up to requests_total: %v", m.Total)
		}
	}
	// Neither tenant reaches the other's object or the owner's site.
	if _, err := sites.GetObjectMetrics(ctx2, guestC, "HTTPLoadBalancer", "retail", "own"); !client.IsNotFound(err) {
		t.Fatalf("guest reading the owner's load balancer metrics: %v", err)
	}
	if _, err := sites.GetObjectMetrics(ctx2, ownC, "HTTPLoadBalancer", "retail", "guest"); !client.IsNotFound(err) {
		t.Fatalf("owner reading the guest's load balancer metrics: %v", err)
	}
	if _, err := sites.GetSiteTelemetry(ctx2, guestC, "s1"); !client.IsNotFound(err) {
		t.Fatalf("guest reading the owner's site telemetry: %v", err)
	}
	st, err := sites.GetSiteTelemetry(ctx2, ownC, "s1")
	if err != nil {
		t.Fatal(err)
	}
	if !st.Online || len(st.Objects) != 1 || st.Objects[0].Name != "own" {
		t.Fatalf("owner's site telemetry must hold its own load balancer only: %+v", st)
	}

	// A guest load balancer on the owner's port (another domain): the
	// listener's connections are no longer shown to either tenant.
	e.Apply(t, "other", sitestest.MustDecode(t, fmt.Sprintf(`
apiVersion: meridian/v1
kind: HTTPLoadBalancer
metadata: {name: guest2, namespace: retail}
spec:
  domains: ["guest2.example"]
  listeners: [{port: %d, address: 127.0.0.1}]
  defaultPool: shop
  sites: {virtualSite: eu}
`, ownPort))...)
	testfixture.WaitFor(t, "connections of a listener two tenants share dropped", func() bool {
		om, err = sites.GetObjectMetrics(ctx2, ownC, "HTTPLoadBalancer", "retail", "own")
		if err != nil {
			t.Fatal(err)
		}
		g2, err := sites.GetObjectMetrics(ctx2, guestC, "HTTPLoadBalancer", "retail", "guest2")
		if err != nil {
			t.Fatal(err)
		}
		_, ownConns := om.Total["listener_connections"]
		return len(om.Sites) == 1 && !ownConns && len(g2.Sites) == 1 && g2.Sites[0].Counters != nil &&
			func() bool { _, ok := g2.Total["listener_connections"]; return !ok }()
	})
	if gm, err = sites.GetObjectMetrics(ctx2, guestC, "HTTPLoadBalancer", "retail", "guest"); err != nil || gm.Total["listener_connections"] < 1 {
		t.Fatalf("the guest's own port keeps its connection count: %+v %v", gm, err)
	}
}
