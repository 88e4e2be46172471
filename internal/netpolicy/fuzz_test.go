package netpolicy

import (
	"encoding/json"
	"net/netip"
	"testing"

	v1 "github.com/meridian-platform/meridian/api/v1"
)

// FuzzRule decodes a rule as a client would send it, and checks that a
// rule that validates compiles, that compile errors come only with
// validation errors, and that the range table agrees with a plain scan of
// the prefixes.
func FuzzRule(f *testing.F) {
	f.Add(`{"name":"a","action":"deny","sources":["10.0.0.0/8","2001:db8::/32"],"ports":[{"port":80,"endPort":90}]}`, "10.1.2.3", uint16(85))
	f.Add(`{"name":"b","action":"allow","sources":["::ffff:192.0.2.0/120"],"notSources":["192.0.2.128/25"],"protocol":"TCP"}`, "::ffff:192.0.2.1", uint16(1))
	f.Add(`{"name":"c","action":"deny","destinations":["0.0.0.0/0","::/0"],"ports":[{"port":65535}]}`, "::1", uint16(65535))
	f.Add(`{"name":"d","action":"deny","sources":["10.0.0.1/8"]}`, "10.0.0.1", uint16(0))
	f.Add(`{"name":"e","action":"deny","sources":["1.2.3.4","1.2.3.5","1.2.3.3/32","fe80::1%eth0"]}`, "1.2.3.4", uint16(2))
	f.Fuzz(func(t *testing.T, ruleJSON, addr string, port uint16) {
		var rule v1.NetworkPolicyRule
		if err := json.Unmarshal([]byte(ruleJSON), &rule); err != nil {
			return
		}
		np := &v1.NetworkPolicy{Spec: v1.NetworkPolicySpec{Ingress: []v1.NetworkPolicyRule{rule}}}
		np.Metadata.Namespace, np.Metadata.Name = "ns", "p"
		np.Default()
		verrs := np.Validate()
		p, err := Compile(np)
		if len(verrs) == 0 && err != nil {
			t.Fatalf("valid rule %s does not compile: %v", ruleJSON, err)
		}
		if err != nil {
			if len(verrs) == 0 {
				t.Fatalf("compile error without validation error: %v", err)
			}
			return
		}
		a, perr := netip.ParseAddr(addr)
		if perr != nil {
			return
		}
		a = a.WithZone("")
		src, _ := ParseCIDRs("s", rule.Sources)
		inSrc := len(src) == 0
		for _, pr := range src {
			inSrc = inSrc || pr.Contains(a.Unmap())
		}
		if got := p.Rules[0].src.contains(a.Unmap()); got != (len(src) > 0 && inSrc) {
			t.Fatalf("range table says %v for %s in %v", got, a, src)
		}
		r := NewMatcher([]*Policy{p}).Check(TCP, netip.AddrPortFrom(a, 1), netip.AddrPortFrom(a, port))
		if r.Hit.Policy != p {
			t.Fatalf("no verdict from the only policy: %+v", r)
		}
	})
}
