package wafstage

import (
	"fmt"
	"sync/atomic"
	"testing"

	"sigs.k8s.io/yaml"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/internal/authn"
	"github.com/meridian-platform/meridian/internal/secevents"
)

var pipelineRuns atomic.Int64

// TestSecurityPipeline runs authn → service policies → rate limit → WAF in
// the order dataplane.Order gives, through a real listener: API-key
// identities feed the policy and the rate limit, and the WAF sees what
// passed them.
func TestSecurityPipeline(t *testing.T) {
	backend := reflectBackend(t)
	authConfigs.Store("t/secure", &authn.Config{APIKey: &authn.APIKeyConfig{Keys: []authn.APIKey{
		{Name: "partner", Key: "partner-key-0123456789"}, {Name: "intern", Key: "intern-key-0123456789"}}}})
	pol := &v1.ServicePolicy{}
	if err := yaml.UnmarshalStrict([]byte(`{rules: [{name: no-interns-in-admin, action: deny, status: 451,
  match: {pathPrefix: /admin, headers: [{name: x-api-key, regex: "^intern-"}]}}]}`), &pol.Spec); err != nil {
		t.Fatal(err)
	}
	pol.Kind, pol.Metadata.Namespace, pol.Metadata.Name = "ServicePolicy", "t", "guard"
	rl := &v1.RateLimiter{Spec: v1.RateLimiterSpec{Rate: 3, Burst: 3, Per: "hour", Key: v1.RateLimitKey{Type: "apiKey"}}}
	// The stages (and their rate-limit buckets) live for the whole test
	// process: a fresh limiter name per run keeps -count=N runs apart.
	rlName := fmt.Sprintf("per-key-%d", pipelineRuns.Add(1))
	rl.Kind, rl.Metadata.Namespace, rl.Metadata.Name = "RateLimiter", "t", rlName
	addr := "http://" + startFrontWith(t, "secure", v1.AppFirewallSpec{}, backend, []v1.Object{pol, rl}, func(s *v1.HTTPLoadBalancerSpec) {
		s.ServicePolicies = []string{"guard"}
		s.RateLimiter = rlName
	})
	call := func(key, path string) int {
		r, err := newRequest("GET", addr+path, key)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := client.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := call("", "/"); got != 401 {
		t.Errorf("no key: %d", got)
	}
	if got := call("intern-key-0123456789", "/admin/x"); got != 451 {
		t.Errorf("intern on /admin: %d", got)
	}
	if got := call("partner-key-0123456789", "/admin/x"); got != 200 {
		t.Errorf("partner on /admin: %d", got)
	}
	if got := call("partner-key-0123456789", "/search?q=1%27%20UNION%20SELECT%20password%20FROM%20users--"); got != 403 {
		t.Errorf("partner sending SQLi: %d", got)
	}
	if got := call("partner-key-0123456789", "/"); got != 200 {
		t.Errorf("partner third request: %d", got)
	}
	if got := call("partner-key-0123456789", "/"); got != 429 {
		t.Errorf("partner over the limit: %d", got)
	}
	if got := call("intern-key-0123456789", "/"); got != 200 {
		t.Errorf("intern has its own bucket: %d", got)
	}
	kinds := map[string]bool{}
	for _, e := range events.takeAll("t/secure") {
		kinds[e.Kind] = true
	}
	for _, k := range []string{secevents.KindAuthn, secevents.KindPolicy, secevents.KindRateLimit, secevents.KindWAF} {
		if !kinds[k] {
			t.Errorf("no %s event", k)
		}
	}
}
