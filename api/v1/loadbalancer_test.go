package v1

import (
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/meridian-platform/meridian/internal/testcert"
)

const dpSampleLB = `
apiVersion: meridian/v1
kind: HTTPLoadBalancer
metadata: {name: shop, namespace: retail}
spec:
  domains: ["shop.example.com", "*"]
  listeners: [{port: 8080}, {port: 8443, tls: {certificateRef: shop-cert}}]
  routes:
    - match: {pathPrefix: /api, methods: [GET, POST], headers: [{name: x-canary, exact: "1"}]}
      pool: shop-api
      timeout: 15s
      retries: {attempts: 2, on: [connect-failure, 503]}
  defaultPool: shop
  appFirewall: shop-waf
  servicePolicies: [block-bad-ips]
  rateLimiter: per-client
  apiDiscovery: {enabled: true}
  sites: {virtualSite: stations-eu}
`

func TestHTTPLoadBalancerDecodeDefaultValidate(t *testing.T) {
	var lb HTTPLoadBalancer
	if err := yaml.UnmarshalStrict([]byte(dpSampleLB), &lb); err != nil {
		t.Fatal(err)
	}
	lb.Default()
	if errs := lb.Validate(); errs != nil {
		t.Fatalf("unexpected errors: %v", errs)
	}
	if got := lb.Spec.Routes[0].Retries.On; len(got) != 2 || got[1] != "503" {
		t.Fatalf("retry on = %v", got)
	}
	if !*lb.Spec.Listeners[1].HTTP2 || lb.Spec.Timeouts.Idle.Duration != time.Minute {
		t.Fatalf("defaults not applied: %+v", lb.Spec)
	}
	refs := lb.References()
	want := map[string]string{
		"spec.listeners[1].tls.certificateRef": "Certificate/retail/shop-cert",
		"spec.routes[0].pool":                  "OriginPool/retail/shop-api",
		"spec.defaultPool":                     "OriginPool/retail/shop",
		"spec.appFirewall":                     "AppFirewall/retail/shop-waf",
		"spec.servicePolicies[0]":              "ServicePolicy/retail/block-bad-ips",
		"spec.rateLimiter":                     "RateLimiter/retail/per-client",
		"spec.sites.virtualSite":               "VirtualSite//stations-eu",
	}
	if len(refs) != len(want) {
		t.Fatalf("refs = %+v", refs)
	}
	for _, r := range refs {
		if want[r.Field] != r.Kind+"/"+r.Namespace+"/"+r.Name {
			t.Errorf("ref %s = %+v", r.Field, r)
		}
	}
}

func TestHTTPLoadBalancerValidateErrors(t *testing.T) {
	cases := []struct {
		name, spec, field string
	}{
		{"bad regex", `{domains: [a.com], listeners: [{port: 80}], routes: [{match: {pathRegex: "("}, pool: p}]}`, "spec.routes[0].match.pathRegex"},
		{"two actions", `{domains: [a.com], listeners: [{port: 80}], routes: [{pool: p, directResponse: {status: 200}}]}`, "spec.routes[0]"},
		{"no action", `{domains: [a.com], listeners: [{port: 80}], routes: [{}, {}, {match: {path: /x}}]}`, "spec.routes[2].pool"},
		{"bad domain", `{domains: ["a.*.com"], listeners: [{port: 80}], defaultPool: p}`, "spec.domains[0]"},
		{"dup listener", `{domains: [a.com], listeners: [{port: 80}, {port: 80}], defaultPool: p}`, "spec.listeners[1].port"},
		{"bad port", `{domains: [a.com], listeners: [{port: 70000}], defaultPool: p}`, "spec.listeners[0].port"},
		{"bad retry", `{domains: [a.com], listeners: [{port: 80}], routes: [{pool: p, retries: {on: [sometimes]}}]}`, "spec.routes[0].retries.on[0]"},
		{"header match", `{domains: [a.com], listeners: [{port: 80}], routes: [{pool: p, match: {headers: [{name: x, exact: a, prefix: b}]}}]}`, "spec.routes[0].match.headers[0]"},
		{"hop header", `{domains: [a.com], listeners: [{port: 80}], routes: [{pool: p, requestHeaders: {set: [{name: Connection, value: x}]}}]}`, "spec.routes[0].requestHeaders.set[0].name"},
		{"tls without cert", `{domains: [a.com], listeners: [{port: 443, tls: {}}], defaultPool: p}`, "spec.listeners[0].tls.certificateRef"},
		{"trusted proxy", `{domains: [a.com], listeners: [{port: 80}], defaultPool: p, trustedProxies: [nope]}`, "spec.trustedProxies[0]"},
		{"log field", `{domains: [a.com], listeners: [{port: 80}], defaultPool: p, accessLog: {enabled: true, fields: [nope]}}`, "spec.accessLog.fields[0]"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var lb HTTPLoadBalancer
			if err := yaml.UnmarshalStrict([]byte("spec: "+c.spec), &lb); err != nil {
				t.Fatal(err)
			}
			lb.Default()
			errs := lb.Validate()
			for _, e := range errs {
				if e.Field == c.field {
					return
				}
			}
			t.Fatalf("want error on %s, got %v", c.field, errs)
		})
	}
}

func TestOriginPoolValidate(t *testing.T) {
	var p OriginPool
	src := `{metadata: {name: a, namespace: ns}, spec: {endpoints: [{address: "127.0.0.1:9000"}, {address: "api.internal:80", weight: 3}],
	  loadBalancing: maglev, healthCheckRef: hc, tls: {sni: api.internal, caRef: ca, clientCertRef: client}}}`
	if err := yaml.UnmarshalStrict([]byte(src), &p); err != nil {
		t.Fatal(err)
	}
	p.Default()
	if errs := p.Validate(); errs != nil {
		t.Fatal(errs)
	}
	if p.Spec.HashPolicy == nil || !p.Spec.HashPolicy.SourceIP || p.Spec.Endpoints[0].Weight != 1 {
		t.Fatalf("defaults: %+v", p.Spec)
	}
	if refs := p.References(); len(refs) != 3 || refs[0].Kind != "HealthCheck" || refs[2].Field != "spec.tls.clientCertRef" {
		t.Fatalf("refs %+v", refs)
	}
	bad := OriginPool{Spec: OriginPoolSpec{Endpoints: []OriginEndpoint{{Address: "nope"}, {Address: "1.2.3.4:0"}},
		LoadBalancing: "fastest", HealthCheck: &HealthCheckSpec{}, HealthCheckRef: "x", ProxyProtocol: 3}}
	fields := map[string]bool{}
	for _, e := range bad.Validate() {
		fields[e.Field] = true
	}
	for _, f := range []string{"spec.endpoints[0].address", "spec.endpoints[1].address", "spec.loadBalancing", "spec.healthCheckRef", "spec.healthCheck.http", "spec.proxyProtocol"} {
		if !fields[f] {
			t.Errorf("missing error for %s in %v", f, fields)
		}
	}
}

func TestHealthCheckDefaultValidate(t *testing.T) {
	h := HealthCheck{Spec: HealthCheckSpec{TCP: &TCPHealthCheck{Send: "PING", Expect: "PONG"}}}
	h.Default()
	if h.Spec.HTTP != nil || h.Spec.Interval.Duration != 5*time.Second || h.Spec.UnhealthyThreshold != 3 {
		t.Fatalf("defaults %+v", h.Spec)
	}
	if errs := h.Validate(); errs != nil {
		t.Fatal(errs)
	}
	h.Spec.Timeout.Duration = time.Minute
	if errs := h.Validate(); len(errs) != 1 || errs[0].Field != "spec.timeout" {
		t.Fatalf("errs %v", errs)
	}
}

func TestTCPLoadBalancerValidate(t *testing.T) {
	lb := TCPLoadBalancer{Spec: TCPLoadBalancerSpec{Listeners: []TCPListener{{Port: 443}},
		Routes: []TCPRoute{{SNI: []string{"*.example.com"}, Pool: "a"}, {SNI: []string{"*"}, Pool: "b"}}}}
	lb.Default()
	errs := lb.Validate()
	if len(errs) != 1 || errs[0].Field != "spec.routes[1].sni[0]" {
		t.Fatalf("errs %v", errs)
	}
}

func TestCertificateValidate(t *testing.T) {
	cert, key := testcert.SelfSigned(t, "x")
	_, other := testcert.SelfSigned(t, "x")
	cases := []struct {
		name      string
		spec      CertificateSpec
		wantField string
	}{
		{"ok", CertificateSpec{Certificate: cert, PrivateKey: Secret(key)}, ""},
		{"ca bundle", CertificateSpec{Certificate: cert}, ""},
		{"redacted", CertificateSpec{Certificate: cert, PrivateKey: SecretRedacted}, ""},
		{"empty", CertificateSpec{}, "spec.certificate"},
		{"garbage", CertificateSpec{Certificate: "hello"}, "spec.certificate"},
		{"mismatch", CertificateSpec{Certificate: cert, PrivateKey: Secret(other)}, "spec.privateKey"},
	}
	for _, c := range cases {
		cr := Certificate{Spec: c.spec}
		errs := cr.Validate()
		if c.wantField == "" && errs != nil || c.wantField != "" && (len(errs) == 0 || errs[0].Field != c.wantField) {
			t.Errorf("%s: errs %v", c.name, errs)
		}
	}
	cr := Certificate{Spec: CertificateSpec{Certificate: cert, PrivateKey: Secret(key)}}
	sf := cr.SecretFields()
	if len(sf) != 1 || sf[0].Field != "spec.privateKey" || !strings.Contains(string(*sf[0].Value), "PRIVATE KEY") {
		t.Fatalf("secret fields %+v", sf)
	}
}

func TestRetryPolicyStrict(t *testing.T) {
	var p HTTPRetryPolicy
	if err := yaml.Unmarshal([]byte(`{on: [reset], attempts: 3}`), &p); err != nil || len(p.On) != 1 || p.Attempts != 3 {
		t.Fatalf("p=%+v err=%v", p, err)
	}
	if err := yaml.Unmarshal([]byte(`{"on": [reset]}`), &p); err != nil || p.On[0] != "reset" {
		t.Fatalf("p=%+v err=%v", p, err)
	}
	if err := yaml.Unmarshal([]byte(`{attempt: 3}`), &p); err == nil {
		t.Fatal("unknown field accepted")
	}
}
