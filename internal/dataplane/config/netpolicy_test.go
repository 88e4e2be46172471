package config

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/meridian-platform/meridian/internal/netpolicy"
)

const netpolSetup = `
apiVersion: meridian/v1
kind: OriginPool
metadata: {name: web, namespace: retail}
spec: {endpoints: [{address: "127.0.0.1:9000"}]}
---
apiVersion: meridian/v1
kind: HTTPLoadBalancer
metadata: {name: shop, namespace: retail}
spec: {domains: [shop.example.com], listeners: [{port: 8080, address: 127.0.0.1}, {port: 8443, address: 127.0.0.1}], defaultPool: web}
---
apiVersion: meridian/v1
kind: OriginPool
metadata: {name: db, namespace: data}
spec: {endpoints: [{address: "127.0.0.1:5432"}]}
---
apiVersion: meridian/v1
kind: TCPLoadBalancer
metadata: {name: pg, namespace: data}
spec: {listeners: [{port: 6432, address: 127.0.0.1}], pool: db}
---
apiVersion: meridian/v1
kind: OriginPool
metadata: {name: blog, namespace: media}
spec: {endpoints: [{address: "127.0.0.1:9001"}]}
---
apiVersion: meridian/v1
kind: HTTPLoadBalancer
metadata: {name: blog, namespace: media}
spec: {domains: [blog.example.com], listeners: [{port: 8080, address: 127.0.0.1}, {port: 9090, address: 127.0.0.1}], defaultPool: blog}
---
apiVersion: meridian/v1
kind: NetworkPolicy
metadata: {name: edge, namespace: retail}
spec:
  ingress:
    - {name: scanners, action: deny, sources: [203.0.113.0/24]}
---
apiVersion: meridian/v1
kind: NetworkPolicy
metadata: {name: admin-only, namespace: data}
spec:
  defaultAction: deny
  ingress:
    - {name: admins, action: allow, sources: ["10.1.0.0/16"]}
---
apiVersion: meridian/v1
kind: NetworkPolicy
metadata: {name: tls-only, namespace: retail}
spec:
  listenerPorts: [8443]
  mode: dryRun
  defaultAction: deny
---
apiVersion: meridian/v1
kind: NetworkPolicy
metadata: {name: broken, namespace: retail}
spec:
  ingress:
    - {name: bad, action: deny, sources: ["10.0.0.1/8"]}
`

func TestCompileNetworkPolicies(t *testing.T) {
	tab := Compile(decode(t, netpolSetup))
	ids := func(key string) string {
		m := tab.NetPolicy(key)
		if m == nil {
			return ""
		}
		var out []string
		for _, p := range m.Policies() {
			out = append(out, p.ID())
		}
		return strings.Join(out, ",")
	}
	for key, want := range map[string]string{
		"127.0.0.1:8443": "retail/edge,retail/tls-only",
		"127.0.0.1:6432": "data/admin-only",
		"127.0.0.1:9090": "", // media has no policy
		"127.0.0.1:8080": "", // shared by retail and media: not enforced
		"127.0.0.1:1":    "", // no such listener
	} {
		if got := ids(key); got != want {
			t.Errorf("listener %s: policies %q, want %q", key, got, want)
		}
	}
	if len(tab.Errors) != 1 || tab.Errors[0].Name != "broken" || !strings.Contains(tab.Errors[0].Error(), "spec.ingress[0].sources[0]") {
		t.Fatalf("errors %v: want the broken policy's field", tab.Errors)
	}
	if w := tab.NetPolicyWarnings(); len(w) != 1 || w[0].Name != "edge" || !strings.Contains(w[0].Error(), "127.0.0.1:8080") || !strings.Contains(w[0].Error(), "media") {
		t.Fatalf("warnings %v: want the shared listener", w)
	}
	r := tab.NetPolicy("127.0.0.1:6432").Check(netpolicy.TCP, netip.MustParseAddrPort("10.2.0.1:3333"), netip.MustParseAddrPort("127.0.0.1:6432"))
	if m := tab.NetPolicy("127.0.0.1:6432"); m.LoadBalancer != "data/pg" || tab.NetPolicy("127.0.0.1:8443").LoadBalancer != "retail/shop" {
		t.Fatalf("listeners' load balancers: %q, %q", m.LoadBalancer, tab.NetPolicy("127.0.0.1:8443").LoadBalancer)
	}
	if r.Action != netpolicy.Deny || r.Hit.Policy.ID() != "data/admin-only" || r.Hit.Rule != -1 {
		t.Fatalf("outsider on the database listener: %+v", r)
	}
	r = tab.NetPolicy("127.0.0.1:8443").Check(netpolicy.TCP, netip.MustParseAddrPort("192.0.2.1:3333"), netip.MustParseAddrPort("127.0.0.1:8443"))
	if r.Action != netpolicy.Allow || r.DryRun.Policy == nil || r.DryRun.Policy.Name != "tls-only" {
		t.Fatalf("dry-run policy on the TLS listener: %+v", r)
	}
}
