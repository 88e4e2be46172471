package policy

import (
	"net/netip"
	"testing"

	"sigs.k8s.io/yaml"

	v1 "github.com/meridian-platform/meridian/api/v1"
)

// FuzzPolicy compiles fuzzed policies (invalid ones must be refused with an
// error, never a panic) and evaluates them against fuzzed requests; the
// CIDR matcher is checked against a linear scan.
func FuzzPolicy(f *testing.F) {
	f.Add(`{rules: [{name: a, action: deny, match: {clientCIDRs: [10.0.0.0/8], pathPrefix: /admin}}]}`, "10.1.2.3", "Shop.example.com:80", "/admin/x", "GET", "x-env", "prod")
	f.Add(`{algorithm: denyOverrides, rules: [{name: a, action: allow, match: {hosts: ["*.example.com"]}}, {name: b, action: deny, match: {headers: [{name: x-env, regex: "^p"}]}}]}`, "::1", "[::1]:443", "/", "POST", "x-env", "prod")
	f.Add(`{rules: [{name: a, action: redirect, redirectURL: /x, match: {claims: [{name: g, exact: b}], sni: ["*"]}}]}`, "2001:db8::1", "a.b", "/v1", "PUT", "g", "a\x1fb")
	f.Add(`{rules: [{name: a, action: deny, match: {pathRegex: "("}}]}`, "bad", "", "", "", "", "")
	f.Fuzz(func(t *testing.T, spec, client, host, path, method, name, value string) {
		p := &v1.ServicePolicy{}
		if err := yaml.Unmarshal([]byte(spec), &p.Spec); err != nil {
			return
		}
		p.Metadata.Namespace, p.Metadata.Name = "ns", "p"
		s, err := Compile([]*v1.ServicePolicy{p}, nil)
		if err != nil {
			return
		}
		addr, _ := netip.ParseAddr(client)
		r := &req{client: addr, host: host, path: path, method: method, sni: host,
			headers: map[string]string{name: value}, query: map[string]string{name: value}, claims: map[string]string{name: value}}
		d := s.Evaluate(r)
		if d.Action != None && d.Policy != "ns/p" {
			t.Fatalf("verdict from nowhere: %+v", d)
		}
		for _, ru := range s.policies[0].rules {
			if ps := ru.match.clients; ps != nil {
				want := false
				for pfx := range ps.set {
					if addr.IsValid() && pfx.Contains(addr.Unmap().WithZone("")) {
						want = true
					}
				}
				if got := ps.contains(addr); got != want {
					t.Fatalf("prefix set says %v for %s, linear scan %v", got, addr, want)
				}
			}
		}
	})
}
