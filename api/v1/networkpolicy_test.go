package v1

import (
	"strings"
	"testing"
)

func TestNetworkPolicyDecodeDefaultValidate(t *testing.T) {
	src := `
apiVersion: meridian/v1
kind: NetworkPolicy
metadata: {name: edge, namespace: shop}
spec:
  sites: {virtualSite: eu}
  listenerPorts: [8443]
  ingress:
    - name: deny-scanners
      action: deny
      sources: [203.0.113.0/24, "2001:db8::/32"]
      notSources: [203.0.113.7]
      destinations: [10.0.0.0/8]
      ports: [{port: 8443}, {port: 9000, endPort: 9100}]
      protocol: TCP
  defaultAction: deny
  mode: dryRun
`
	obj, err := Decode([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	np, ok := obj.(*NetworkPolicy)
	if !ok {
		t.Fatalf("decoded %T", obj)
	}
	DefaultObject(np)
	if errs := ValidateObject(np); len(errs) > 0 {
		t.Fatalf("valid policy rejected: %v", errs)
	}
	if refs := np.References(); len(refs) != 1 || refs[0].Kind != "VirtualSite" || refs[0].Name != "eu" {
		t.Fatalf("references %+v", refs)
	}
	if _, err := Decode([]byte(strings.Replace(src, "endPort", "lastPort", 1))); err == nil || !strings.Contains(err.Error(), "lastPort") {
		t.Fatalf("unknown field accepted: %v", err)
	}
	if k, ok := LookupKind("netpol"); !ok || k.Kind != "NetworkPolicy" || k.Plural != "networkpolicies" {
		t.Fatalf("short name: %+v %v", k, ok)
	}
}

func TestNetworkPolicyValidate(t *testing.T) {
	rule := func(f func(r *NetworkPolicyRule)) NetworkPolicySpec {
		r := NetworkPolicyRule{Name: "r", Action: "deny"}
		f(&r)
		return NetworkPolicySpec{Ingress: []NetworkPolicyRule{r}}
	}
	tests := []struct {
		name  string
		spec  NetworkPolicySpec
		field string
	}{
		{"mode", NetworkPolicySpec{Mode: "audit"}, "spec.mode"},
		{"default action", NetworkPolicySpec{DefaultAction: "drop"}, "spec.defaultAction"},
		{"priority", NetworkPolicySpec{Priority: 1001}, "spec.priority"},
		{"virtual site", NetworkPolicySpec{Sites: &LBPlacement{VirtualSite: "EU"}}, "spec.sites.virtualSite"},
		{"listener port", NetworkPolicySpec{ListenerPorts: []int{0}}, "spec.listenerPorts[0]"},
		{"duplicate listener port", NetworkPolicySpec{ListenerPorts: []int{80, 80}}, "spec.listenerPorts[1]"},
		{"rule name", rule(func(r *NetworkPolicyRule) { r.Name = "" }), "spec.ingress[0].name"},
		{"rule action", rule(func(r *NetworkPolicyRule) { r.Action = "reject" }), "spec.ingress[0].action"},
		{"protocol", rule(func(r *NetworkPolicyRule) { r.Protocol = "ICMP" }), "spec.ingress[0].protocol"},
		{"host bits", rule(func(r *NetworkPolicyRule) { r.Sources = []string{"10.0.0.0/8", "10.1.2.3/8"} }), "spec.ingress[0].sources[1]"},
		{"not an address", rule(func(r *NetworkPolicyRule) { r.NotSources = []string{"example.com"} }), "spec.ingress[0].notSources[0]"},
		{"zone", rule(func(r *NetworkPolicyRule) { r.Destinations = []string{"fe80::1%eth0"} }), "spec.ingress[0].destinations[0]"},
		{"short mapped prefix", rule(func(r *NetworkPolicyRule) { r.Sources = []string{"::ffff:0:0/90"} }), "spec.ingress[0].sources[0]"},
		{"port", rule(func(r *NetworkPolicyRule) { r.Ports = []NetworkPortRange{{Port: 65536}} }), "spec.ingress[0].ports[0].port"},
		{"end port", rule(func(r *NetworkPolicyRule) { r.Ports = []NetworkPortRange{{Port: 90, EndPort: 89}} }), "spec.ingress[0].ports[0].endPort"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			np := &NetworkPolicy{Spec: tc.spec}
			np.Metadata.Name, np.Metadata.Namespace = "p", "ns"
			np.Default()
			errs := np.Validate()
			if len(errs) != 1 || errs[0].Field != tc.field {
				t.Fatalf("errors %v, want one on %s", errs, tc.field)
			}
		})
	}
	dup := &NetworkPolicy{Spec: NetworkPolicySpec{Ingress: []NetworkPolicyRule{{Name: "a", Action: "allow"}, {Name: "a", Action: "deny"}}}}
	dup.Default()
	if errs := dup.Validate(); len(errs) != 1 || errs[0].Field != "spec.ingress[1].name" || errs[0].Reason != ReasonDuplicate {
		t.Fatalf("duplicate rule names: %v", errs)
	}
}
