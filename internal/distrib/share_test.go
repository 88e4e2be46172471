package distrib_test

import (
	"context"
	"strings"
	"testing"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/internal/sites/sitestest"
)

const ownerObjects = `
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
spec: {endpoints: [{address: "127.0.0.1:9"}]}
---
apiVersion: meridian/v1
kind: HTTPLoadBalancer
metadata: {name: own, namespace: retail}
spec:
  domains: [shop.example]
  listeners: [{port: 8080}]
  defaultPool: shop
  sites: {virtualSite: eu}
`

const guestObjects = `
apiVersion: meridian/v1
kind: Namespace
metadata: {name: retail}
---
apiVersion: meridian/v1
kind: VirtualSite
metadata: {name: leased}
spec: {selector: {matchLabels: {region: eu}}}
---
apiVersion: meridian/v1
kind: OriginPool
metadata: {name: shop, namespace: retail}
spec: {endpoints: [{address: "127.0.0.1:10"}]}
---
apiVersion: meridian/v1
kind: HTTPLoadBalancer
metadata: {name: guest, namespace: retail}
spec:
  domains: ["*"]
  listeners: [{port: 8081}]
  defaultPool: shop
  sites: {virtualSite: leased}
---
apiVersion: meridian/v1
kind: HTTPLoadBalancer
metadata: {name: clash, namespace: retail}
spec:
  domains: [other.example, shop.example]
  listeners: [{port: 8080}]
  defaultPool: shop
  sites: {virtualSite: leased}
`

// TestSiteShare: a leased site runs the other tenant's load balancers too
// (its namespaces kept apart), a site that is not leased does not; a
// listener collision is reported in both objects' status and the first
// placed keeps the port; ending the lease removes the guest's objects.
func TestSiteShare(t *testing.T) {
	e := sitestest.Start(t)
	e.CreateTenant(t, "other")
	e.Apply(t, "", sitestest.MustDecode(t, ownerObjects)...)
	e.Apply(t, "other", sitestest.MustDecode(t, guestObjects)...)
	tok := e.CreateToken(t, "", "t", v1.SiteTokenSpec{MaxUses: 5, AutoApprove: true, Labels: map[string]string{"region": "eu"}})
	leased := startNode(t, e, tok, "s1")
	plain := startNode(t, e, tok, "s2")
	ownOnly := "HTTPLoadBalancer retail/own,OriginPool retail/shop"
	waitFor(t, "owner's objects", func() bool { return leased.rec.keys() == ownOnly && plain.rec.keys() == ownOnly })

	share := &v1.SiteShare{Spec: v1.SiteShareSpec{Site: "s1", Tenant: "other"}}
	share.APIVersion, share.Kind, share.Metadata.Name = v1.APIVersion, "SiteShare", "lease-s1"
	e.Apply(t, "", share)
	withGuest := "HTTPLoadBalancer other--retail/guest,HTTPLoadBalancer retail/own,OriginPool other--retail/shop,OriginPool retail/shop"
	waitFor(t, "the guest's objects on the leased site", func() bool { return leased.rec.keys() == withGuest })
	if got := leased.rec.get("OriginPool other--retail/shop").(*v1.OriginPool); got.Spec.Endpoints[0].Address != "127.0.0.1:10" {
		t.Fatalf("guest pool: %+v", got.Spec)
	}
	if plain.rec.keys() != ownOnly {
		t.Fatalf("a site that is not leased got %s", plain.rec.keys())
	}

	ctx := context.Background()
	owner, guest := e.Client(t, ""), e.Client(t, "other")
	waitFor(t, "the collision in both statuses", func() bool {
		var a, b v1.HTTPLoadBalancer
		owner.Get(ctx, "HTTPLoadBalancer", "retail", "own", &a)
		guest.Get(ctx, "HTTPLoadBalancer", "retail", "clash", &b)
		return len(a.Status.Errors) == 1 && strings.Contains(a.Status.Errors[0], `listener :8080 for domain "shop.example" collides on site s1`) &&
			len(b.Status.Errors) == 1 && strings.Contains(b.Status.Errors[0], "not placed on site s1")
	})
	var a v1.HTTPLoadBalancer
	owner.Get(ctx, "HTTPLoadBalancer", "retail", "own", &a)
	if strings.Contains(a.Status.Errors[0], "clash") || strings.Contains(a.Status.Errors[0], "other.example") {
		t.Fatalf("the owner's status names the other tenant's object: %q", a.Status.Errors[0])
	}
	var g v1.HTTPLoadBalancer
	guest.Get(ctx, "HTTPLoadBalancer", "retail", "guest", &g)
	waitFor(t, "the guest's rollout", func() bool {
		guest.Get(ctx, "HTTPLoadBalancer", "retail", "guest", &g)
		return g.Status.Rollout == "applied 1/1 sites"
	})

	// End of the lease.
	if err := owner.Delete(ctx, "SiteShare", "", "lease-s1"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the guest's objects removed", func() bool { return leased.rec.keys() == ownOnly })
	waitFor(t, "the collision cleared", func() bool {
		var a v1.HTTPLoadBalancer
		owner.Get(ctx, "HTTPLoadBalancer", "retail", "own", &a)
		return len(a.Status.Errors) == 0
	})
}
