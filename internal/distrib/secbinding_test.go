package distrib_test

import (
	"context"
	"strings"
	"testing"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/internal/sites/sitestest"
	"github.com/meridian-platform/meridian/internal/testfixture"
)

const securedObjects = `
apiVersion: meridian/v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: meridian/v1
kind: Namespace
metadata: {name: other}
---
apiVersion: meridian/v1
kind: VirtualSite
metadata: {name: eu}
spec: {selector: {matchLabels: {region: eu}}}
---
apiVersion: meridian/v1
kind: OriginPool
metadata: {name: pool, namespace: shop}
spec: {endpoints: [{address: "127.0.0.1:9"}]}
---
apiVersion: meridian/v1
kind: AppFirewall
metadata: {name: crs, namespace: shop}
spec: {}
---
apiVersion: meridian/v1
kind: ServicePolicy
metadata: {name: base, namespace: shop}
spec: {rules: [{name: r, action: deny, match: {clientCIDRs: [203.0.113.0/24]}}]}
---
apiVersion: meridian/v1
kind: ServicePolicy
metadata: {name: other-base, namespace: other}
spec: {rules: [{name: r, action: deny, match: {clientCIDRs: [203.0.113.0/24]}}]}
---
apiVersion: meridian/v1
kind: RateLimiter
metadata: {name: rl, namespace: shop}
spec: {rate: 5}
---
apiVersion: meridian/v1
kind: SecurityBinding
metadata: {name: baseline, namespace: shop}
spec: {appFirewall: crs, servicePolicies: [base]}
---
apiVersion: meridian/v1
kind: SecurityBinding
metadata: {name: baseline, namespace: other}
spec: {servicePolicies: [other-base]}
---
apiVersion: meridian/v1
kind: HTTPLoadBalancer
metadata: {name: api, namespace: shop}
spec:
  domains: ["*"]
  listeners: [{port: 8080}]
  defaultPool: pool
  sites: {virtualSite: eu}
  authentication:
    apiKey: {keys: [{name: ci, key: "ci-key-0123456789abcdef"}]}
  routes:
    - match: {pathPrefix: /x}
      rateLimiter: rl
`

// TestSecurityBindingsAndSecretsShipWithLoadBalancers: a site running a
// load balancer gets its namespace's SecurityBindings (not another
// namespace's), what they and the route-level fields refer to, and the
// API keys in clear; the API never shows them; a dangling route-level
// reference is refused with its field path.
func TestSecurityBindingsAndSecretsShipWithLoadBalancers(t *testing.T) {
	e := sitestest.Start(t)
	e.Apply(t, "", sitestest.MustDecode(t, securedObjects)...)
	tok := e.CreateToken(t, "", "t", v1.SiteTokenSpec{MaxUses: 10, AutoApprove: true, Labels: map[string]string{"region": "eu"}})
	n := startNode(t, e, tok, "s-eu")
	want := "AppFirewall shop/crs,HTTPLoadBalancer shop/api,OriginPool shop/pool,RateLimiter shop/rl,SecurityBinding shop/baseline,ServicePolicy shop/base"
	testfixture.WaitFor(t, "the site's objects", func() bool { return n.rec.Keys() == want })
	lb := n.rec.Get("HTTPLoadBalancer shop/api").(*v1.HTTPLoadBalancer)
	if k := lb.Spec.Authentication.APIKey.Keys[0].Key; k != "ci-key-0123456789abcdef" {
		t.Fatalf("API key not delivered in clear: %q", k)
	}
	admin := e.Client(t, "")
	ctx := context.Background()
	var got v1.HTTPLoadBalancer
	if err := admin.Get(ctx, "HTTPLoadBalancer", "shop", "api", &got); err != nil {
		t.Fatal(err)
	}
	if k := got.Spec.Authentication.APIKey.Keys[0].Key; k != v1.SecretRedacted {
		t.Fatalf("the API shows the API key: %q", k)
	}
	// Removing the binding takes it off the site.
	if err := admin.Delete(ctx, "SecurityBinding", "shop", "baseline"); err != nil {
		t.Fatal(err)
	}
	testfixture.WaitFor(t, "the binding's removal", func() bool {
		return n.rec.Keys() == "HTTPLoadBalancer shop/api,OriginPool shop/pool,RateLimiter shop/rl"
	})
	// A dangling route-level reference is refused.
	bad := sitestest.MustDecode(t, `
apiVersion: meridian/v1
kind: HTTPLoadBalancer
metadata: {name: bad, namespace: shop}
spec:
  domains: ["bad.example.com"]
  listeners: [{port: 8080}]
  defaultPool: pool
  routes:
    - {match: {path: /a}}
    - {match: {path: /b}}
    - {match: {path: /c}, appFirewall: x}
`)[0]
	err := admin.Create(ctx, bad)
	if err == nil || !strings.Contains(err.Error(), `spec.routes[2].appFirewall: AppFirewall "x" not found in namespace "shop"`) {
		t.Fatalf("dangling route reference: %v", err)
	}
}
