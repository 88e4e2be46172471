package agent_test

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/internal/dataplane"
	"github.com/meridian-platform/meridian/internal/distrib"
	"github.com/meridian-platform/meridian/internal/node/agent"
	"github.com/meridian-platform/meridian/internal/sites/sitestest"
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
	ownPort, guestPort := freePort(t), freePort(t)
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
	waitFor(t, "s1 registered", func() bool { return a.Version() != "" })

	share := &v1.SiteShare{Spec: v1.SiteShareSpec{Site: "s1", Tenant: "other"}}
	share.APIVersion, share.Kind, share.Metadata.Name = v1.APIVersion, "SiteShare", "lease-s1"
	e.Apply(t, "", share)

	ownURL, guestURL := fmt.Sprintf("http://127.0.0.1:%d/", ownPort), fmt.Sprintf("http://127.0.0.1:%d/", guestPort)
	// Every answered request (whatever its status) is one the data plane
	// counted.
	sent := map[string]float64{}
	serves := func(url, want string) func() bool {
		return func() bool {
			c, b := get(url)
			if c != 0 {
				sent[url]++
			}
			return b == want
		}
	}
	waitFor(t, "the owner's load balancer on s1", serves(ownURL, "own"))
	waitFor(t, "the guest's load balancer on s1", serves(guestURL, "guest"))
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
	waitFor(t, "per-tenant counters at the console", func() bool {
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
	waitFor(t, "the next report", func() bool { return d.ObjectTelemetry(e.Tenant, e.Tenant, "s1")[ownRef]["probe"] == 1 })
	mine, theirs = d.ObjectTelemetry(e.Tenant, e.Tenant, "s1"), d.ObjectTelemetry("other", e.Tenant, "s1")
	if len(mine) != 1 || len(theirs) != 1 || theirs[guestRef]["requests_total"] != sent[guestURL] {
		t.Fatalf("counters of objects the node was not sent were attributed: owner %v, guest %v", mine, theirs)
	}
	// A tenant with no lease on s1 sees nothing there.
	if got := d.ObjectTelemetry("nobody", e.Tenant, "s1"); len(got) != 0 {
		t.Fatalf("a third tenant sees %v", got)
	}
}
