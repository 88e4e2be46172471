package distrib_test

import (
	"context"
	"strings"
	"testing"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/internal/sites/sitestest"
	"github.com/meridian-platform/meridian/internal/testfixture"
)

// guestObjects adds to the guest's side of the shared site a load
// balancer whose listener collides with the owner's.
func guestObjects() string {
	g := sitestest.Guest()
	g.Domains = `["*"]`
	return g.YAML() + `---
apiVersion: meridian/v1
kind: HTTPLoadBalancer
metadata: {name: clash, namespace: retail}
spec:
  domains: [other.example, shop.example]
  listeners: [{port: 8080}]
  defaultPool: shop
  sites: {virtualSite: leased}
`
}

// TestSiteShare: a leased site runs the other tenant's load balancers too
// (its namespaces kept apart), a site that is not leased does not; a
// listener collision is reported in both objects' status and the first
// placed keeps the port; ending the lease removes the guest's objects.
func TestSiteShare(t *testing.T) {
	e := sitestest.Start(t)
	e.CreateTenant(t, "other")
	e.Apply(t, "", sitestest.MustDecode(t, sitestest.Owner().YAML())...)
	e.Apply(t, "other", sitestest.MustDecode(t, guestObjects())...)
	tok := e.CreateToken(t, "", "t", v1.SiteTokenSpec{MaxUses: 5, AutoApprove: true, Labels: map[string]string{"region": "eu"}})
	leased := startNode(t, e, tok, "s1")
	plain := startNode(t, e, tok, "s2")
	ownOnly := "HTTPLoadBalancer retail/own,OriginPool retail/shop"
	testfixture.WaitFor(t, "owner's objects", func() bool { return leased.rec.Keys() == ownOnly && plain.rec.Keys() == ownOnly })

	e.Lease(t, "lease-s1", "s1", "other")
	withGuest := "HTTPLoadBalancer other--retail/guest,HTTPLoadBalancer retail/own,OriginPool other--retail/shop,OriginPool retail/shop"
	testfixture.WaitFor(t, "the guest's objects on the leased site", func() bool { return leased.rec.Keys() == withGuest })
	if got := leased.rec.Get("OriginPool other--retail/shop").(*v1.OriginPool); got.Spec.Endpoints[0].Address != "127.0.0.1:10" {
		t.Fatalf("guest pool: %+v", got.Spec)
	}
	if plain.rec.Keys() != ownOnly {
		t.Fatalf("a site that is not leased got %s", plain.rec.Keys())
	}

	ctx := context.Background()
	owner, guest := e.Client(t, ""), e.Client(t, "other")
	testfixture.WaitFor(t, "the collision in both statuses", func() bool {
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
	testfixture.WaitFor(t, "the guest's rollout", func() bool {
		guest.Get(ctx, "HTTPLoadBalancer", "retail", "guest", &g)
		return g.Status.Rollout == "applied 1/1 sites"
	})

	// End of the lease.
	if err := owner.Delete(ctx, "SiteShare", "", "lease-s1"); err != nil {
		t.Fatal(err)
	}
	testfixture.WaitFor(t, "the guest's objects removed", func() bool { return leased.rec.Keys() == ownOnly })
	testfixture.WaitFor(t, "the collision cleared", func() bool {
		var a v1.HTTPLoadBalancer
		owner.Get(ctx, "HTTPLoadBalancer", "retail", "own", &a)
		return len(a.Status.Errors) == 0
	})
}
