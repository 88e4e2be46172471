package distrib_test

import (
	"strings"
	"testing"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/internal/sites/sitestest"
	"github.com/meridian-platform/meridian/internal/testfixture"
)

// TestNetworkPolicyPlacement: a NetworkPolicy reaches the sites of its
// virtual site only, and none without a placement.
func TestNetworkPolicyPlacement(t *testing.T) {
	e := sitestest.Start(t)
	e.Apply(t, "", sitestest.MustDecode(t, `
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
kind: VirtualSite
metadata: {name: us}
spec: {selector: {matchLabels: {region: us}}}
---
apiVersion: meridian/v1
kind: NetworkPolicy
metadata: {name: eu-edge, namespace: retail}
spec:
  sites: {virtualSite: eu}
  ingress: [{name: scanners, action: deny, sources: [203.0.113.0/24]}]
---
apiVersion: meridian/v1
kind: NetworkPolicy
metadata: {name: nowhere, namespace: retail}
spec:
  ingress: [{name: all, action: deny}]
`)...)
	eu := startNode(t, e, e.CreateToken(t, "", "eu", v1.SiteTokenSpec{MaxUses: 1, AutoApprove: true, Labels: map[string]string{"region": "eu"}}), "n-eu")
	us := startNode(t, e, e.CreateToken(t, "", "us", v1.SiteTokenSpec{MaxUses: 1, AutoApprove: true, Labels: map[string]string{"region": "us"}}), "n-us")
	testfixture.WaitFor(t, "the eu site's policy", func() bool { return eu.rec.Keys() == "NetworkPolicy retail/eu-edge" })
	np, ok := eu.rec.Get("NetworkPolicy retail/eu-edge").(*v1.NetworkPolicy)
	if !ok || len(np.Spec.Ingress) != 1 || np.Spec.Ingress[0].Sources[0] != "203.0.113.0/24" {
		t.Fatalf("policy delivered as %+v", np)
	}
	testfixture.WaitFor(t, "the us site's first snapshot", func() bool { return us.a.Version() != "" })
	if k := us.rec.Keys(); k != "" {
		t.Fatalf("us site got %s", k)
	}
	// Moving the policy moves it between sites.
	admin := e.Client(t, "")
	if err := admin.Patch(t.Context(), "NetworkPolicy", "retail", "eu-edge", []byte(`{"spec":{"sites":{"virtualSite":"us"}}}`), nil); err != nil {
		t.Fatal(err)
	}
	testfixture.WaitFor(t, "the policy on the us site", func() bool { return us.rec.Keys() == "NetworkPolicy retail/eu-edge" })
	testfixture.WaitFor(t, "the policy gone from the eu site", func() bool { return !strings.Contains(eu.rec.Keys(), "NetworkPolicy") })
}
