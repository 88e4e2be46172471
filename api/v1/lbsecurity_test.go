package v1

import (
	"sort"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

const securedLB = `
apiVersion: meridian/v1
kind: HTTPLoadBalancer
metadata: {name: api, namespace: retail}
spec:
  domains: ["api.example.com"]
  listeners: [{port: 8080}]
  defaultPool: api
  appFirewall: api-waf
  servicePolicies: [geo]
  rateLimiter: per-client
  authentication:
    jwt: {issuer: "https://id.example.com/", audiences: [shop], jwksURL: "https://id.example.com/jwks.json"}
    apiKey:
      keys:
        - {name: ci, key: "0123456789abcdef-ci"}
        - {name: partner, sha256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}
    forwardClaims: [{claim: sub, header: X-User}]
  routes:
    - match: {path: /healthz}
      authentication: {disabled: true}
    - match: {pathPrefix: /admin}
      appFirewall: strict-waf
      servicePolicies: [admins-only]
      rateLimiter: per-user
      authentication:
        mtls: {caRef: corp-ca, allowedNames: ["spiffe://corp/admin"]}
        apiKey: {header: X-Admin-Key, keys: [{name: ops, key: "fedcba9876543210-ops"}]}
`

func decodeLB(t *testing.T, doc string) *HTTPLoadBalancer {
	t.Helper()
	var lb HTTPLoadBalancer
	if err := yaml.UnmarshalStrict([]byte(doc), &lb); err != nil {
		t.Fatal(err)
	}
	lb.Default()
	return &lb
}

func TestSecuredLBValidReferencesSecrets(t *testing.T) {
	lb := decodeLB(t, securedLB)
	if errs := lb.Validate(); errs != nil {
		t.Fatalf("unexpected errors: %v", errs)
	}
	if a := lb.Spec.Authentication; a.APIKey.Header != "X-API-Key" || a.JWT.Header != "Authorization" || len(a.JWT.Algorithms) != 3 {
		t.Fatalf("authentication defaults not applied: %+v %+v", a.APIKey, a.JWT)
	}
	got := map[string]string{}
	for _, r := range lb.References() {
		got[r.Field] = r.Kind + "/" + r.Namespace + "/" + r.Name
	}
	for f, want := range map[string]string{
		"spec.routes[1].appFirewall":               "AppFirewall/retail/strict-waf",
		"spec.routes[1].servicePolicies[0]":        "ServicePolicy/retail/admins-only",
		"spec.routes[1].rateLimiter":               "RateLimiter/retail/per-user",
		"spec.routes[1].authentication.mtls.caRef": "Certificate/retail/corp-ca",
		"spec.appFirewall":                         "AppFirewall/retail/api-waf",
		"spec.servicePolicies[0]":                  "ServicePolicy/retail/geo",
	} {
		if got[f] != want {
			t.Errorf("reference %s = %q, want %q", f, got[f], want)
		}
	}
	var fields []string
	for _, f := range lb.SecretFields() {
		fields = append(fields, f.Field+"="+string(*f.Value))
	}
	sort.Strings(fields)
	want := []string{
		"spec.authentication.apiKey.keys[0].key=0123456789abcdef-ci",
		"spec.authentication.apiKey.keys[1].key=",
		"spec.routes[1].authentication.apiKey.keys[0].key=fedcba9876543210-ops",
	}
	if strings.Join(fields, "\n") != strings.Join(want, "\n") {
		t.Fatalf("secret fields:\n%s\nwant\n%s", strings.Join(fields, "\n"), strings.Join(want, "\n"))
	}
	// A redacted key written back validates (the console keeps the stored one).
	lb.Spec.Authentication.APIKey.Keys[0].Key = SecretRedacted
	if errs := lb.Validate(); errs != nil {
		t.Fatalf("redacted key: %v", errs)
	}
}

func TestSecuredLBInvalid(t *testing.T) {
	tests := []struct {
		name, patch, field string
	}{
		{"lb disabled", "spec.authentication", "spec.authentication.disabled"},
		{"no method", "spec.routes[1].authentication", "spec.routes[1].authentication"},
		{"both jwks", "spec.authentication.jwt", "spec.authentication.jwt"},
		{"no jwks", "spec.authentication.jwt.jwksURL", "spec.authentication.jwt.jwksURL"},
		{"bad url", "spec.authentication.jwt.jwksURL", "spec.authentication.jwt.jwksURL"},
		{"relative file", "spec.authentication.jwt.jwksFile", "spec.authentication.jwt.jwksFile"},
		{"file when placed", "spec.sites", "spec.authentication.jwt.jwksFile"},
		{"bad alg", "spec.authentication.jwt.algorithms", "spec.authentication.jwt.algorithms[0]"},
		{"skew", "spec.authentication.jwt.clockSkew", "spec.authentication.jwt.clockSkew"},
		{"short key", "spec.authentication.apiKey.keys[0].key", "spec.authentication.apiKey.keys[0].key"},
		{"key and sha", "spec.authentication.apiKey.keys[1]", "spec.authentication.apiKey.keys[1]"},
		{"bad sha", "spec.authentication.apiKey.keys[1].sha256", "spec.authentication.apiKey.keys[1].sha256"},
		{"dup key name", "spec.authentication.apiKey.keys[1].name", "spec.authentication.apiKey.keys[1].name"},
		{"no keys", "spec.authentication.apiKey.keys", "spec.authentication.apiKey.keys"},
		{"caRef", "spec.routes[1].authentication.mtls.caRef", "spec.routes[1].authentication.mtls.caRef"},
		{"forward hop", "spec.authentication.forwardClaims[0].header", "spec.authentication.forwardClaims[0].header"},
		{"disabled with method", "spec.routes[0].authentication", "spec.routes[0].authentication.disabled"},
		{"route waf", "spec.routes[1].appFirewall", "spec.routes[1].appFirewall"},
		{"route policy", "spec.routes[1].servicePolicies[0]", "spec.routes[1].servicePolicies[0]"},
		{"route limiter", "spec.routes[1].rateLimiter", "spec.routes[1].rateLimiter"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			lb := decodeLB(t, securedLB)
			a, r1 := lb.Spec.Authentication, &lb.Spec.Routes[1]
			switch tc.name {
			case "lb disabled":
				a.Disabled = true
			case "no method":
				r1.Authentication.MTLS, r1.Authentication.APIKey = nil, nil
			case "both jwks":
				a.JWT.JWKSFile = "/etc/jwks.json"
			case "no jwks":
				a.JWT.JWKSURL = ""
			case "bad url":
				a.JWT.JWKSURL = "ftp://x/jwks"
			case "relative file":
				a.JWT.JWKSURL, a.JWT.JWKSFile = "", "jwks.json"
			case "file when placed":
				a.JWT.JWKSURL, a.JWT.JWKSFile = "", "/etc/jwks.json"
				lb.Spec.Sites = &LBPlacement{VirtualSite: "eu"}
			case "bad alg":
				a.JWT.Algorithms = []string{"HS256"}
			case "skew":
				a.JWT.ClockSkew.Duration = 2 * 60 * 60 * 1e9
			case "short key":
				a.APIKey.Keys[0].Key = "short"
			case "key and sha":
				a.APIKey.Keys[1].Key = "0123456789abcdef-xx"
			case "bad sha":
				a.APIKey.Keys[1].SHA256 = "abc"
			case "dup key name":
				a.APIKey.Keys[1].Name = "ci"
			case "no keys":
				a.APIKey.Keys = nil
			case "caRef":
				r1.Authentication.MTLS.CARef = ""
			case "forward hop":
				a.ForwardClaims[0].Header = "Transfer-Encoding"
			case "disabled with method":
				lb.Spec.Routes[0].Authentication.APIKey = &APIKeyAuthentication{Keys: []APIKeyCredential{{Name: "x", Key: "0123456789abcdef"}}}
			case "route waf":
				r1.AppFirewall = "Bad_Name"
			case "route policy":
				r1.ServicePolicies = []string{"UPPER"}
			case "route limiter":
				r1.RateLimiter = "-x"
			}
			errs := lb.Validate()
			for _, e := range errs {
				if e.Field == tc.field {
					return
				}
			}
			t.Fatalf("no error at %s; got %v", tc.field, errs)
		})
	}
}

func TestSecurityBinding(t *testing.T) {
	obj, err := Decode([]byte(`
apiVersion: meridian/v1
kind: SecurityBinding
metadata: {name: baseline, namespace: retail}
spec: {appFirewall: crs, servicePolicies: [block-bad-ips, geo], rateLimiter: ns-wide}
`))
	if err != nil {
		t.Fatal(err)
	}
	b := obj.(*SecurityBinding)
	if errs := ValidateObject(b); errs != nil {
		t.Fatalf("unexpected: %v", errs)
	}
	var refs []string
	for _, r := range b.References() {
		refs = append(refs, r.Field+"="+r.Kind+"/"+r.Namespace+"/"+r.Name)
	}
	want := "spec.appFirewall=AppFirewall/retail/crs spec.servicePolicies[0]=ServicePolicy/retail/block-bad-ips " +
		"spec.servicePolicies[1]=ServicePolicy/retail/geo spec.rateLimiter=RateLimiter/retail/ns-wide"
	if strings.Join(refs, " ") != want {
		t.Fatalf("refs = %s", strings.Join(refs, " "))
	}
	for _, tc := range []struct {
		spec  SecurityBindingSpec
		field string
	}{
		{SecurityBindingSpec{}, "spec"},
		{SecurityBindingSpec{AppFirewall: "Bad"}, "spec.appFirewall"},
		{SecurityBindingSpec{ServicePolicies: []string{"a", "a"}}, "spec.servicePolicies[1]"},
		{SecurityBindingSpec{RateLimiter: "x_y"}, "spec.rateLimiter"},
	} {
		b.Spec = tc.spec
		errs := b.Validate()
		if len(errs) == 0 || errs[0].Field != tc.field {
			t.Errorf("%+v: errors %v, want one at %s", tc.spec, errs, tc.field)
		}
	}
	if k, ok := LookupKind("secb"); !ok || k.Kind != "SecurityBinding" || k.Scope != ScopeNamespaced {
		t.Fatalf("LookupKind(secb) = %+v %v", k, ok)
	}
}

func TestServicePolicyGeoMatch(t *testing.T) {
	p := &ServicePolicy{Spec: ServicePolicySpec{Rules: []ServicePolicyRule{
		{Name: "eu", Action: "allow", Match: ServicePolicyMatch{Countries: []string{"de", "FR"}, ASNs: []uint32{64496}}},
		{Name: "bad", Action: "deny", Match: ServicePolicyMatch{NotCountries: []string{"DEU", "1A"}, NotASNs: []uint32{0}}},
	}}}
	p.Metadata.Name = "geo"
	p.Default()
	if p.Spec.Rules[0].Match.Countries[0] != "DE" {
		t.Fatalf("countries not upper-cased: %v", p.Spec.Rules[0].Match.Countries)
	}
	if !p.Spec.Rules[0].Match.UsesCountry() || !p.Spec.Rules[0].Match.UsesASN() {
		t.Fatal("UsesCountry/UsesASN false")
	}
	errs := p.Validate()
	var fields []string
	for _, e := range errs {
		fields = append(fields, e.Field)
	}
	want := "spec.rules[1].match.notCountries[0] spec.rules[1].match.notCountries[1] spec.rules[1].match.notASNs[0]"
	if strings.Join(fields, " ") != want {
		t.Fatalf("errors at %v, want %s (%v)", fields, want, errs)
	}
}
