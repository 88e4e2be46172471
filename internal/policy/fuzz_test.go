package policy

import (
	"net/netip"
	"slices"
	"testing"

	"sigs.k8s.io/yaml"

	v1 "github.com/meridian-platform/meridian/api/v1"
)

// fuzzGeo places addresses by their last byte: country DE, FR or US (none
// for multiples of 4), AS 64496 + last byte % 3.
type fuzzGeo struct{}

func (fuzzGeo) HasCountry() bool { return true }
func (fuzzGeo) HasASN() bool     { return true }
func (fuzzGeo) Country(a netip.Addr) ([2]byte, bool) {
	if !a.IsValid() {
		return [2]byte{}, false
	}
	b := a.As16()[15]
	if b%4 == 0 {
		return [2]byte{}, false
	}
	return [][2]byte{{'D', 'E'}, {'F', 'R'}, {'U', 'S'}}[b%3], true
}
func (fuzzGeo) ASN(a netip.Addr) (uint32, bool) {
	if !a.IsValid() {
		return 0, false
	}
	return 64496 + uint32(a.As16()[15]%3), true
}

// FuzzPolicy compiles fuzzed policies (invalid ones must be refused with an
// error, never a panic) and evaluates them against fuzzed requests; the
// CIDR matcher is checked against a linear scan.
func FuzzPolicy(f *testing.F) {
	f.Add(`{rules: [{name: a, action: deny, match: {clientCIDRs: [10.0.0.0/8], pathPrefix: /admin}}]}`, "10.1.2.3", "Shop.example.com:80", "/admin/x", "GET", "x-env", "prod")
	f.Add(`{algorithm: denyOverrides, rules: [{name: a, action: allow, match: {hosts: ["*.example.com"]}}, {name: b, action: deny, match: {headers: [{name: x-env, regex: "^p"}]}}]}`, "::1", "[::1]:443", "/", "POST", "x-env", "prod")
	f.Add(`{rules: [{name: a, action: redirect, redirectURL: /x, match: {claims: [{name: g, exact: b}], sni: ["*"]}}]}`, "2001:db8::1", "a.b", "/v1", "PUT", "g", "a\x1fb")
	f.Add(`{rules: [{name: a, action: deny, match: {pathRegex: "("}}]}`, "bad", "", "", "", "", "")
	f.Add(`{rules: [{name: a, action: deny, match: {countries: [DE, us], notASNs: [64497]}}, {name: b, action: allow, match: {notCountries: [FR], asns: [64496, 64498]}}]}`, "192.0.2.2", "", "/", "GET", "", "")
	f.Fuzz(func(t *testing.T, spec, client, host, path, method, name, value string) {
		p := &v1.ServicePolicy{}
		if err := yaml.Unmarshal([]byte(spec), &p.Spec); err != nil {
			return
		}
		p.Metadata.Namespace, p.Metadata.Name = "ns", "p"
		s, err := CompileWith([]*v1.ServicePolicy{p}, nil, Options{Geo: fuzzGeo{}})
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
			if g := ru.match.geo; g != nil {
				c, cok := fuzzGeo{}.Country(addr)
				n, nok := fuzzGeo{}.ASN(addr)
				want := (len(g.countries) == 0 || cok && slices.Contains(g.countries, c)) &&
					(len(g.notCountries) == 0 || !cok || !slices.Contains(g.notCountries, c)) &&
					(len(g.asns) == 0 || nok && slices.Contains(g.asns, n)) &&
					(len(g.notASNs) == 0 || !nok || !slices.Contains(g.notASNs, n))
				if got := g.match(r, &geoState{geo: fuzzGeo{}}); got != want {
					t.Fatalf("geo match says %v for %s (%s, AS%d), want %v", got, addr, c[:], n, want)
				}
			}
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
