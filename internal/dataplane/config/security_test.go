package config

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/meridian-platform/meridian/internal/dataplane/dptest"
)

const secObjs = `
apiVersion: meridian/v1
kind: OriginPool
metadata: {name: api, namespace: retail}
spec: {endpoints: [{address: "127.0.0.1:9000"}]}
---
apiVersion: meridian/v1
kind: AppFirewall
metadata: {name: lb-waf, namespace: retail}
spec: {}
---
apiVersion: meridian/v1
kind: AppFirewall
metadata: {name: strict-waf, namespace: retail}
spec: {paranoiaLevel: 2}
---
apiVersion: meridian/v1
kind: AppFirewall
metadata: {name: crs, namespace: retail}
spec: {}
---
apiVersion: meridian/v1
kind: ServicePolicy
metadata: {name: lb-pol, namespace: retail}
spec: {rules: [{name: r, action: deny, match: {pathPrefix: /x}}]}
---
apiVersion: meridian/v1
kind: ServicePolicy
metadata: {name: admins, namespace: retail}
spec: {rules: [{name: r, action: deny, match: {notClientCIDRs: [10.0.0.0/8]}}]}
---
apiVersion: meridian/v1
kind: ServicePolicy
metadata: {name: baseline, namespace: retail}
spec: {rules: [{name: r, action: deny, match: {clientCIDRs: [203.0.113.0/24]}}]}
---
apiVersion: meridian/v1
kind: RateLimiter
metadata: {name: per-client, namespace: retail}
spec: {rate: 10}
---
apiVersion: meridian/v1
kind: RateLimiter
metadata: {name: per-user, namespace: retail}
spec: {rate: 5, key: {type: jwtClaim, name: sub}}
`

const secLB = `
apiVersion: meridian/v1
kind: HTTPLoadBalancer
metadata: {name: api, namespace: retail}
spec:
  domains: ["*"]
  listeners: [{port: 8080, address: 127.0.0.1}]
  defaultPool: api
  appFirewall: lb-waf
  servicePolicies: [lb-pol]
  rateLimiter: per-client
  authentication:
    apiKey: {keys: [{name: ci, key: "0123456789abcdef-ci"}]}
  routes:
    - match: {path: /healthz}
      authentication: {disabled: true}
    - match: {pathPrefix: /admin}
      appFirewall: strict-waf
      servicePolicies: [admins]
      rateLimiter: per-user
    - match: {pathPrefix: /plain}
`

func TestCompileRouteSecurity(t *testing.T) {
	tab := Compile(decode(t, secObjs+"---"+secLB))
	if len(tab.Errors) != 0 {
		t.Fatalf("errors: %v", tab.Errors)
	}
	vh := tab.HTTP["127.0.0.1:8080"].VHost([]byte("x"))
	if len(vh.Security) != 3 {
		t.Fatalf("%d security profiles, want 3 (lb, healthz, admin): %+v", len(vh.Security), vh.Security)
	}
	lb, health, admin, plain := vh.Default.Security, vh.Routes[0].Security, vh.Routes[1].Security, vh.Routes[2].Security
	if lb.Index != 0 || plain != lb {
		t.Fatalf("the load balancer's profile is not shared: %+v %+v", lb, plain)
	}
	if got := strings.Join(lb.AppFirewalls, ",") + "|" + strings.Join(lb.ServicePolicies, ",") + "|" + strings.Join(lb.RateLimiters, ","); got != "lb-waf|lb-pol|per-client" {
		t.Fatalf("lb profile %s", got)
	}
	if lb.Authn == nil || lb.Authn.APIKey == nil || lb.Authn.APIKey.Keys[0].Key != "0123456789abcdef-ci" || vh.Authn != lb.Authn {
		t.Fatalf("lb authn %+v", lb.Authn)
	}
	if health.Authn != nil || strings.Join(health.AppFirewalls, ",") != "lb-waf" {
		t.Fatalf("healthz %+v", health)
	}
	if got := strings.Join(admin.AppFirewalls, ",") + "|" + strings.Join(admin.ServicePolicies, ",") + "|" + strings.Join(admin.RateLimiters, ","); got != "strict-waf|admins|per-user" || admin.Authn == nil {
		t.Fatalf("admin profile %s %+v", got, admin.Authn)
	}
	if tab.HTTP["127.0.0.1:8080"].ClientCertificates {
		t.Fatal("client certificates asked for without mtls")
	}
	// The effective configuration redacts the API key.
	for _, o := range tab.Objects {
		if o.GetTypeMeta().Kind == "HTTPLoadBalancer" && strings.Contains(mustJSON(t, o), "0123456789abcdef") {
			t.Fatal("API key in Table.Objects")
		}
	}
}

func TestCompileSecurityBinding(t *testing.T) {
	binding := `
apiVersion: meridian/v1
kind: SecurityBinding
metadata: {name: baseline, namespace: retail}
spec: {appFirewall: crs, servicePolicies: [baseline, lb-pol], rateLimiter: per-client}
`
	tab := Compile(decode(t, secObjs+"---"+secLB+"---"+binding))
	if len(tab.Errors) != 0 {
		t.Fatalf("errors: %v", tab.Errors)
	}
	vh := tab.HTTP["127.0.0.1:8080"].VHost([]byte("x"))
	lb, admin := vh.Default.Security, vh.Routes[1].Security
	for _, tc := range []struct {
		got, want string
	}{
		{strings.Join(lb.AppFirewalls, ","), "crs,lb-waf"},
		{strings.Join(lb.ServicePolicies, ","), "baseline,lb-pol"},
		{strings.Join(lb.RateLimiters, ","), "per-client"},
		{strings.Join(admin.AppFirewalls, ","), "crs,strict-waf"},
		{strings.Join(admin.ServicePolicies, ","), "baseline,lb-pol,admins"},
		{strings.Join(admin.RateLimiters, ","), "per-client,per-user"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %s, want %s", tc.got, tc.want)
		}
	}
	// Another namespace's load balancer is not bound.
	other := strings.ReplaceAll(secObjs+"---"+secLB, "namespace: retail", "namespace: other")
	other = strings.ReplaceAll(other, "port: 8080", "port: 8081")
	tab = Compile(decode(t, secObjs+"---"+secLB+"---"+binding+"---"+other))
	if len(tab.Errors) != 0 {
		t.Fatalf("errors: %v", tab.Errors)
	}
	if fw := tab.HTTP["127.0.0.1:8081"].VHost([]byte("x")).Default.Security.AppFirewalls; strings.Join(fw, ",") != "lb-waf" {
		t.Fatalf("other namespace firewalls %v", fw)
	}
	// A broken binding keeps its namespace's load balancers out: serving
	// them without it would drop mandatory protection.
	broken := strings.Replace(binding, "appFirewall: crs", "appFirewall: gone", 1)
	tab = Compile(decode(t, secObjs+"---"+secLB+"---"+broken))
	errs := map[string]string{}
	for _, e := range tab.Errors {
		errs[e.Kind+" "+e.Name] = e.Err.Error()
	}
	if msg := errs["SecurityBinding baseline"]; !strings.Contains(msg, `spec.appFirewall: AppFirewall "gone" not found in namespace "retail"`) {
		t.Fatalf("binding error %q (all: %v)", msg, errs)
	}
	if msg := errs["HTTPLoadBalancer api"]; !strings.Contains(msg, `SecurityBinding "baseline" of namespace "retail" is invalid`) {
		t.Fatalf("load balancer error %q", msg)
	}
	if tab.HTTP["127.0.0.1:8080"] != nil {
		t.Fatal("the load balancer of the broken binding's namespace is served")
	}
}

func TestCompileSecurityRefErrors(t *testing.T) {
	for _, tc := range []struct {
		name, edit, want string
	}{
		{"route firewall", "appFirewall: strict-waf", `spec.routes[1].appFirewall: AppFirewall "nope" not found in namespace "retail"`},
		{"route policy", "servicePolicies: [admins]", `spec.routes[1].servicePolicies[0]: ServicePolicy "nope" not found in namespace "retail"`},
		{"route limiter", "rateLimiter: per-user", `spec.routes[1].rateLimiter: RateLimiter "nope" not found in namespace "retail"`},
		{"lb firewall", "appFirewall: lb-waf", `spec.appFirewall: AppFirewall "nope" not found in namespace "retail"`},
		{"lb policy", "servicePolicies: [lb-pol]", `spec.servicePolicies[0]: ServicePolicy "nope" not found in namespace "retail"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			field, _, _ := strings.Cut(tc.edit, ":")
			repl := field + ": nope"
			if strings.Contains(tc.edit, "[") {
				repl = field + ": [nope]"
			}
			tab := Compile(decode(t, secObjs+"---"+strings.Replace(secLB, tc.edit, repl, 1)))
			if len(tab.Errors) != 1 || !strings.Contains(tab.Errors[0].Err.Error(), tc.want) {
				t.Fatalf("errors %v, want %s", tab.Errors, tc.want)
			}
		})
	}
	// An invalid security object is reported itself and with its users.
	tab := Compile(decode(t, strings.Replace(secObjs, "spec: {rate: 10}", "spec: {rate: -1}", 1)+"---"+secLB))
	var kinds []string
	for _, e := range tab.Errors {
		kinds = append(kinds, e.Kind+":"+e.Err.Error())
	}
	if len(kinds) != 2 || !strings.Contains(kinds[0], "RateLimiter:spec.rate") || !strings.Contains(kinds[1], `spec.rateLimiter: RateLimiter "per-client" is invalid`) {
		t.Fatalf("errors %v", kinds)
	}
	// A redacted API key cannot authenticate anything.
	tab = Compile(decode(t, secObjs+"---"+strings.Replace(secLB, `"0123456789abcdef-ci"`, `"(set)"`, 1)))
	if len(tab.Errors) != 1 || !strings.Contains(tab.Errors[0].Err.Error(), "spec.authentication.apiKey.keys[0].key") {
		t.Fatalf("errors %v", tab.Errors)
	}
}

func TestCompileMTLSAndGeo(t *testing.T) {
	ca, err := dptest.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := ca.Issue("api.example.com")
	if err != nil {
		t.Fatal(err)
	}
	objs := secObjs + `---
apiVersion: meridian/v1
kind: Certificate
metadata: {name: corp-ca, namespace: retail}
spec:
  certificate: |
` + indent(ca.CertPEM, "    ") + `---
apiVersion: meridian/v1
kind: Certificate
metadata: {name: tls, namespace: retail}
spec:
  certificate: |
` + indent(cert, "    ") + `  privateKey: |
` + indent(key, "    ") + `---
apiVersion: meridian/v1
kind: HTTPLoadBalancer
metadata: {name: m, namespace: retail}
spec:
  domains: ["*"]
  listeners: [{port: 8443, address: 127.0.0.1, tls: {certificateRef: tls}}]
  defaultPool: api
  routes:
    - match: {pathPrefix: /admin}
      authentication: {mtls: {caRef: corp-ca, allowedNames: [admin]}}
---
apiVersion: meridian/v1
kind: ServicePolicy
metadata: {name: geo, namespace: retail}
spec: {rules: [{name: eu, action: allow, match: {countries: [DE]}}, {name: as, action: deny, match: {asns: [64496]}}]}
`
	tab := Compile(decode(t, objs))
	if len(tab.Errors) != 0 {
		t.Fatalf("errors: %v", tab.Errors)
	}
	l := tab.HTTP["127.0.0.1:8443"]
	if !l.ClientCertificates {
		t.Fatal("mtls listener does not ask for client certificates")
	}
	vh := l.VHost([]byte("x"))
	if a := vh.Routes[0].Security.Authn; a == nil || a.MTLS == nil || !strings.Contains(a.MTLS.CAPEM, "BEGIN CERTIFICATE") {
		t.Fatalf("route mtls %+v", a)
	}
	// The GeoIP check happens only when the node says what it has.
	for _, tc := range []struct {
		opts []CompileOption
		want string
	}{
		{[]CompileOption{WithGeoIP(false, false)}, "spec.rules[0].match.countries: no GeoIP country database"},
		{[]CompileOption{WithGeoIP(true, false)}, "spec.rules[1].match.asns: no GeoIP ASN database"},
		{[]CompileOption{WithGeoIP(true, true)}, ""},
		{nil, ""},
	} {
		tab := Compile(decode(t, objs), tc.opts...)
		got := ""
		for _, e := range tab.Errors {
			got += e.Error()
		}
		if tc.want == "" && got != "" || !strings.Contains(got, tc.want) {
			t.Errorf("errors %q, want %q", got, tc.want)
		}
	}
	// A missing CA is a dangling reference.
	tab = Compile(decode(t, strings.Replace(objs, "caRef: corp-ca", "caRef: gone", 1)))
	if len(tab.Errors) != 1 || !strings.Contains(tab.Errors[0].Err.Error(), `spec.routes[0].authentication.mtls.caRef: Certificate "gone" not found in namespace "retail"`) {
		t.Fatalf("errors %v", tab.Errors)
	}
}

func indent(s, pre string) string {
	var b strings.Builder
	for _, l := range strings.SplitAfter(s, "\n") {
		if l != "" {
			b.WriteString(pre + l)
		}
	}
	return b.String()
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
