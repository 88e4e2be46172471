package config

import (
	"crypto/tls"
	"errors"
	"strings"
	"testing"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/internal/dataplane/dptest"
	"sigs.k8s.io/yaml"
)

func decode(t *testing.T, src string) []v1.Object {
	t.Helper()
	var out []v1.Object
	for _, doc := range strings.Split(src, "\n---\n") {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		var tm v1.TypeMeta
		if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
			t.Fatal(err)
		}
		o, ok := v1.New(tm.Kind)
		if !ok {
			t.Fatalf("unknown kind %q", tm.Kind)
		}
		if err := yaml.UnmarshalStrict([]byte(doc), o); err != nil {
			t.Fatalf("decoding %s: %v", tm.Kind, err)
		}
		out = append(out, o)
	}
	return out
}

type fakeReq struct {
	method, path string
	headers      map[string]string
	query        map[string]string
}

func (r fakeReq) Method() []byte { return []byte(r.method) }
func (r fakeReq) Path() []byte   { return []byte(r.path) }
func (r fakeReq) Header(n string) ([]byte, bool) {
	v, ok := r.headers[n]
	return []byte(v), ok
}
func (r fakeReq) Query(n string) ([]byte, bool) {
	v, ok := r.query[n]
	return []byte(v), ok
}

const shop = `
apiVersion: meridian/v1
kind: OriginPool
metadata: {name: shop, namespace: retail}
spec: {endpoints: [{address: "127.0.0.1:9000"}]}
---
apiVersion: meridian/v1
kind: OriginPool
metadata: {name: shop-api, namespace: retail}
spec: {endpoints: [{address: "127.0.0.1:9001", weight: 2}], loadBalancing: ringHash, hashPolicy: {header: x-user},
  healthCheck: {http: {path: /healthz}}, outlierDetection: {consecutive5xx: 3}, circuitBreaker: {maxRequests: 10}}
---
apiVersion: meridian/v1
kind: HTTPLoadBalancer
metadata: {name: shop, namespace: retail}
spec:
  domains: ["shop.example.com", "*.shop.example.com"]
  listeners: [{port: 8080, address: 127.0.0.1}]
  routes:
    - match: {pathPrefix: /api, methods: [GET, POST], headers: [{name: x-canary, exact: "1"}]}
      pool: shop-api
      retries: {attempts: 2, on: [connect-failure, 503]}
    - match: {pathRegex: "/items/[0-9]+", queryParams: [{name: debug, present: true, invert: true}]}
      directResponse: {status: 200, body: item}
    - match: {path: /old}
      redirect: {path: /new, code: 301}
  defaultPool: shop
---
apiVersion: meridian/v1
kind: HTTPLoadBalancer
metadata: {name: other, namespace: retail}
spec:
  domains: ["*"]
  listeners: [{port: 8080, address: 127.0.0.1}]
  defaultPool: shop
`

func TestCompileRouting(t *testing.T) {
	tab := Compile(decode(t, shop))
	if len(tab.Errors) != 0 {
		t.Fatalf("errors: %v", tab.Errors)
	}
	l := tab.HTTP["127.0.0.1:8080"]
	if l == nil {
		t.Fatalf("listener missing: %v", tab.HTTP)
	}
	if l.Timeouts.Idle == 0 || l.MaxConnections != 10000 {
		t.Fatalf("listener defaults: %+v", l)
	}
	hosts := []struct{ host, want string }{
		{"shop.example.com", "retail/shop"},
		{"SHOP.example.com:8080", "retail/shop"},
		{"a.shop.example.com", "retail/shop"},
		{"shop.example.com.", "retail/shop"},
		{"example.com", "retail/other"},
		{"[::1]:8080", "retail/other"},
	}
	for _, h := range hosts {
		if vh := l.VHost([]byte(h.host)); vh == nil || vh.ID != h.want {
			t.Errorf("host %q -> %v, want %s", h.host, vh, h.want)
		}
	}
	vh := l.VHost([]byte("shop.example.com"))
	routes := []struct {
		req  fakeReq
		want string
	}{
		{fakeReq{method: "GET", path: "/api/x", headers: map[string]string{"x-canary": "1"}}, "retail/shop#0"},
		{fakeReq{method: "GET", path: "/api", headers: map[string]string{"x-canary": "1"}}, "retail/shop#0"},
		{fakeReq{method: "GET", path: "/apix", headers: map[string]string{"x-canary": "1"}}, "retail/shop#default"},
		{fakeReq{method: "PUT", path: "/api/x", headers: map[string]string{"x-canary": "1"}}, "retail/shop#default"},
		{fakeReq{method: "GET", path: "/api/x"}, "retail/shop#default"},
		{fakeReq{method: "GET", path: "/items/12"}, "retail/shop#1"},
		{fakeReq{method: "GET", path: "/items/12/x"}, "retail/shop#default"},
		{fakeReq{method: "GET", path: "/items/12", query: map[string]string{"debug": ""}}, "retail/shop#default"},
		{fakeReq{method: "GET", path: "/old"}, "retail/shop#2"},
	}
	for _, r := range routes {
		if rt := vh.Match(r.req); rt == nil || rt.Name != r.want {
			t.Errorf("%s %s -> %v, want %s", r.req.method, r.req.path, rt, r.want)
		}
	}
	rt := vh.Routes[0]
	if rt.Pool.ID != "retail/shop-api" || rt.Retry.Attempts != 2 || !rt.Retry.ConnectFailure || !rt.Retry.RetryOnStatus(503) || rt.Retry.RetryOnStatus(500) {
		t.Fatalf("route 0: %+v retry %+v", rt, rt.Retry)
	}
	p := tab.Pools["retail/shop-api"].LB
	if p.Algorithm != "ringHash" || p.HealthCheck == nil || p.HealthCheck.HTTP.Path != "/healthz" || p.Outlier.Consecutive5xx != 3 || p.Breaker.MaxRequests != 10 {
		t.Fatalf("pool config %+v", p)
	}
}

func TestCompileSkipsBrokenObjects(t *testing.T) {
	src := shop + `
---
apiVersion: meridian/v1
kind: HTTPLoadBalancer
metadata: {name: typo, namespace: retail}
spec:
  domains: ["typo.example.com"]
  listeners: [{port: 8081}]
  routes: [{pool: shop-ap}, {pool: shop}, {pool: broken}]
---
apiVersion: meridian/v1
kind: OriginPool
metadata: {name: broken, namespace: retail}
spec: {endpoints: [{address: "nope"}]}
---
apiVersion: meridian/v1
kind: HTTPLoadBalancer
metadata: {name: zclash, namespace: retail}
spec:
  domains: ["shop.example.com"]
  listeners: [{port: 8080, address: 127.0.0.1}]
  defaultPool: shop
`
	tab := Compile(decode(t, src))
	got := map[string]string{}
	for _, e := range tab.Errors {
		got[e.Kind+" "+e.Name] = e.Error()
	}
	if len(got) != 3 {
		t.Fatalf("errors: %v", tab.Errors)
	}
	for k, want := range map[string]string{
		"OriginPool broken":       "spec.endpoints[0].address",
		"HTTPLoadBalancer typo":   `spec.routes[0].pool: OriginPool "shop-ap" not found in namespace "retail"`,
		"HTTPLoadBalancer zclash": `already served by HTTPLoadBalancer retail/shop`,
	} {
		if !strings.Contains(got[k], want) {
			t.Errorf("%s: got %q, want it to contain %q", k, got[k], want)
		}
	}
	if !strings.Contains(got["HTTPLoadBalancer typo"], `spec.routes[2].pool: OriginPool "broken" is invalid`) {
		t.Errorf("typo: %s", got["HTTPLoadBalancer typo"])
	}
	var fe v1.FieldErrors
	for _, e := range tab.Errors {
		if e.Name == "typo" && !errors.As(e.Err, &fe) {
			t.Errorf("error is not FieldErrors: %T", e.Err)
		}
	}
	if tab.HTTP["127.0.0.1:8080"].VHost([]byte("shop.example.com")).ID != "retail/shop" {
		t.Fatal("neighbour not served")
	}
	if _, ok := tab.HTTP[":8081"]; ok {
		t.Fatal("broken LB's listener compiled")
	}
}

func TestCompileTLSAndTCP(t *testing.T) {
	ca, err := dptest.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	certObj := func(name string, names ...string) string {
		c, k, err := ca.Issue(names...)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := yaml.Marshal(map[string]any{"apiVersion": "meridian/v1", "kind": "Certificate",
			"metadata": map[string]any{"name": name, "namespace": "ns"}, "spec": map[string]any{"certificate": c, "privateKey": k}})
		return string(b)
	}
	src := certObj("def", "default.test") + "\n---\n" + certObj("wild", "*.example.com") + "\n---\n" + certObj("exact", "api.example.com") + `
---
apiVersion: meridian/v1
kind: OriginPool
metadata: {name: p, namespace: ns}
spec: {endpoints: [{address: "127.0.0.1:1"}]}
---
apiVersion: meridian/v1
kind: HTTPLoadBalancer
metadata: {name: web, namespace: ns}
spec:
  domains: ["*"]
  listeners: [{port: 8443, tls: {certificateRef: def, certificateRefs: [wild, exact], minVersion: "1.3"}}]
  defaultPool: p
---
apiVersion: meridian/v1
kind: TCPLoadBalancer
metadata: {name: tcp, namespace: ns}
spec:
  listeners: [{port: 9443}, {port: 8443}]
  routes: [{sni: ["*.example.com"], pool: p}]
`
	tab := Compile(decode(t, src))
	if len(tab.Errors) != 1 || !strings.Contains(tab.Errors[0].Error(), "spec.listeners[1].port") {
		t.Fatalf("errors: %v", tab.Errors)
	}
	l := tab.HTTP[":8443"]
	if l.TLS == nil || !l.HTTP2 || l.MinTLSVersion != tls.VersionTLS13 {
		t.Fatalf("listener %+v", l)
	}
	cn := func(c *tls.Certificate) string { return c.Leaf.Subject.CommonName }
	for sni, want := range map[string]string{"api.example.com": "api.example.com", "www.example.com": "*.example.com",
		"a.b.example.com": "default.test", "": "default.test", "API.EXAMPLE.COM": "api.example.com"} {
		if got := cn(l.TLS.Get(sni)); got != want {
			t.Errorf("sni %q -> %s, want %s", sni, got, want)
		}
	}
	for _, o := range tab.Objects {
		if c, ok := o.(*v1.Certificate); ok && c.Spec.PrivateKey != v1.SecretRedacted {
			t.Fatalf("secret not redacted: %q", c.Spec.PrivateKey)
		}
	}
	// A TCP listener conflicting with an HTTP one makes the TCP LB fail as a whole.
	if len(tab.TCP) != 0 {
		t.Fatalf("tcp listeners %v", tab.TCP)
	}
}

func TestTCPRouteSNI(t *testing.T) {
	p1, p2 := &Pool{ID: "a"}, &Pool{ID: "b"}
	l := &TCPListener{Routes: []TCPRoute{{Exact: []string{"x.test"}, Pool: p1}, {Suffixes: []string{".example.com"}, Pool: p2}}}
	for sni, want := range map[string]*Pool{"x.test": p1, "X.TEST": p1, "a.example.com": p2, "example.com": nil, "": nil} {
		if got := l.Route(sni); got != want {
			t.Errorf("%q -> %v", sni, got)
		}
	}
}

func TestCompileKeepsOtherKinds(t *testing.T) {
	objs := decode(t, shop+`
---
apiVersion: meridian/v1
kind: ServicePolicy
metadata: {name: block, namespace: retail}
spec: {mode: enforce, rules: [{name: r, action: deny, match: {clientCIDRs: [203.0.113.0/24]}}], defaultAction: next}
`)
	tab := Compile(objs)
	if o := tab.Object("ServicePolicy", "retail", "block"); o == nil || o.GetMetadata().Name != "block" {
		t.Fatalf("ServicePolicy not kept: %v", o)
	}
	if tab.Object("ServicePolicy", "retail", "nope") != nil {
		t.Fatal("unknown object found")
	}
}
