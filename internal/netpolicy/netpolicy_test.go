package netpolicy

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/internal/secevents"
)

func policy(t testing.TB, ns, name string, spec v1.NetworkPolicySpec) *Policy {
	t.Helper()
	np := &v1.NetworkPolicy{Spec: spec}
	np.Metadata.Namespace, np.Metadata.Name = ns, name
	np.Default()
	if errs := np.Validate(); len(errs) > 0 {
		t.Fatalf("policy %s/%s does not validate: %v", ns, name, errs)
	}
	p, err := Compile(np)
	if err != nil {
		t.Fatalf("compiling %s/%s: %v", ns, name, err)
	}
	return p
}

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func TestRuleConditions(t *testing.T) {
	spec := v1.NetworkPolicySpec{
		DefaultAction: "allow",
		Ingress: []v1.NetworkPolicyRule{
			{Name: "scanners", Action: "deny", Sources: []string{"203.0.113.0/24", "2001:db8:bad::/48"}},
			{Name: "office-except-guest", Action: "allow", Sources: []string{"198.51.100.0/24"}, NotSources: []string{"198.51.100.128/25"}, Ports: []v1.NetworkPortRange{{Port: 8443}}},
			{Name: "office-guest", Action: "deny", Sources: []string{"198.51.100.0/24"}, Ports: []v1.NetworkPortRange{{Port: 8443}}},
			{Name: "range", Action: "deny", Ports: []v1.NetworkPortRange{{Port: 9000, EndPort: 9100}}},
			{Name: "udp-only", Action: "deny", Protocol: "UDP", Ports: []v1.NetworkPortRange{{Port: 53}}},
			{Name: "internal-vip", Action: "deny", Destinations: []string{"10.0.0.0/8", "fd00::/8"}, Ports: []v1.NetworkPortRange{{Port: 7000}}},
			{Name: "single-host", Action: "deny", Sources: []string{"192.0.2.7"}},
		},
	}
	m := NewMatcher([]*Policy{policy(t, "shop", "edge", spec)})
	tests := []struct {
		name     string
		src, dst string
		proto    Proto
		action   Action
		rule     string
	}{
		{"v4 source in deny list", "203.0.113.9:5555", "10.1.1.1:443", TCP, Deny, "scanners"},
		{"v4 first and last of the prefix", "203.0.113.255:1", "10.1.1.1:443", TCP, Deny, "scanners"},
		{"v4 just outside", "203.0.114.0:1", "192.0.2.1:443", TCP, Allow, DefaultRule},
		{"v6 source in deny list", "[2001:db8:bad:1::5]:5555", "[2001:db8::1]:443", TCP, Deny, "scanners"},
		{"v6 outside", "[2001:db8:bae::5]:5555", "[2001:db8::1]:443", TCP, Allow, DefaultRule},
		{"v4-mapped v6 client matches the v4 CIDR", "[::ffff:203.0.113.9]:5555", "[::ffff:10.1.1.1]:443", TCP, Deny, "scanners"},
		{"notSources excludes the guest half", "198.51.100.200:1", "192.0.2.1:8443", TCP, Deny, "office-guest"},
		{"office allowed on its port", "198.51.100.20:1", "192.0.2.1:8443", TCP, Allow, "office-except-guest"},
		{"office on another port falls through", "198.51.100.20:1", "192.0.2.1:8080", TCP, Allow, DefaultRule},
		{"port range start", "192.0.2.50:1", "192.0.2.1:9000", TCP, Deny, "range"},
		{"port range end", "192.0.2.50:1", "192.0.2.1:9100", TCP, Deny, "range"},
		{"port range past end", "192.0.2.50:1", "192.0.2.1:9101", TCP, Allow, DefaultRule},
		{"udp rule skips tcp", "192.0.2.50:1", "192.0.2.1:53", TCP, Allow, DefaultRule},
		{"udp rule matches udp", "192.0.2.50:1", "192.0.2.1:53", UDP, Deny, "udp-only"},
		{"destination v4", "192.0.2.50:1", "10.9.9.9:7000", TCP, Deny, "internal-vip"},
		{"destination v4-mapped", "192.0.2.50:1", "[::ffff:10.9.9.9]:7000", TCP, Deny, "internal-vip"},
		{"destination v6", "[2001:db8::9]:1", "[fd12::1]:7000", TCP, Deny, "internal-vip"},
		{"destination outside", "192.0.2.50:1", "172.16.0.1:7000", TCP, Allow, DefaultRule},
		{"bare address", "192.0.2.7:1", "172.16.0.1:80", TCP, Deny, "single-host"},
		{"bare address neighbour", "192.0.2.8:1", "172.16.0.1:80", TCP, Allow, DefaultRule},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := m.Check(tc.proto, ap(tc.src), ap(tc.dst))
			if r.Action != tc.action || r.Hit.RuleName() != tc.rule {
				t.Fatalf("got %v by %q, want %v by %q", r.Action, r.Hit.RuleName(), tc.action, tc.rule)
			}
			if r.Hit.Policy == nil || r.Hit.Policy.ID() != "shop/edge" {
				t.Fatalf("hit policy %+v", r.Hit.Policy)
			}
			if r.DryRun.Policy != nil {
				t.Fatalf("dry-run hit without dryRun policies: %+v", r.DryRun)
			}
		})
	}
}

func TestCombination(t *testing.T) {
	allowOffice := v1.NetworkPolicySpec{DefaultAction: "deny", Ingress: []v1.NetworkPolicyRule{
		{Name: "office", Action: "allow", Sources: []string{"198.51.100.0/24"}}}}
	allowVPN := v1.NetworkPolicySpec{DefaultAction: "deny", Ingress: []v1.NetworkPolicyRule{
		{Name: "vpn", Action: "allow", Sources: []string{"100.64.0.0/10"}}}}
	denyOne := v1.NetworkPolicySpec{Ingress: []v1.NetworkPolicyRule{
		{Name: "bad-laptop", Action: "deny", Sources: []string{"198.51.100.66"}}}}
	allowFirst := v1.NetworkPolicySpec{Priority: -0, Ingress: []v1.NetworkPolicyRule{
		{Name: "monitoring", Action: "allow", Sources: []string{"198.51.100.66"}}}}
	later := denyOne
	later.Priority = 10

	tests := []struct {
		name     string
		policies []*Policy
		src      string
		action   Action
		by       string // policy/rule
	}{
		{"allow lists combine (union)", []*Policy{policy(t, "a", "office", allowOffice), policy(t, "a", "vpn", allowVPN)}, "100.64.1.1:1", Allow, "a/vpn/vpn"},
		{"no allow list matches: default deny", []*Policy{policy(t, "a", "office", allowOffice), policy(t, "a", "vpn", allowVPN)}, "192.0.2.1:1", Deny, "a/office/(default)"},
		{"deny wins at the same priority", []*Policy{policy(t, "a", "office", allowOffice), policy(t, "a", "z-deny", denyOne)}, "198.51.100.66:1", Deny, "a/z-deny/bad-laptop"},
		{"deny wins whatever the name order", []*Policy{policy(t, "a", "z-office", allowOffice), policy(t, "a", "b-deny", denyOne)}, "198.51.100.66:1", Deny, "a/b-deny/bad-laptop"},
		{"lower priority decides first", []*Policy{policy(t, "a", "allow", allowFirst), policy(t, "a", "deny", later)}, "198.51.100.66:1", Allow, "a/allow/monitoring"},
		{"one default deny is enough", []*Policy{policy(t, "a", "deny-list", denyOne), policy(t, "a", "office", allowOffice)}, "203.0.113.1:1", Deny, "a/office/(default)"},
		{"all defaults allow", []*Policy{policy(t, "a", "deny-list", denyOne)}, "203.0.113.1:1", Allow, "a/deny-list/(default)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := NewMatcher(tc.policies).Check(TCP, ap(tc.src), ap("192.0.2.1:443"))
			if by := r.Hit.Policy.ID() + "/" + r.Hit.RuleName(); r.Action != tc.action || by != tc.by {
				t.Fatalf("got %v by %s, want %v by %s", r.Action, by, tc.action, tc.by)
			}
		})
	}
}

func TestDryRun(t *testing.T) {
	enforced := policy(t, "a", "enforced", v1.NetworkPolicySpec{Ingress: []v1.NetworkPolicyRule{
		{Name: "scanners", Action: "deny", Sources: []string{"203.0.113.0/24"}}}})
	trial := policy(t, "a", "trial", v1.NetworkPolicySpec{Mode: "dryRun", DefaultAction: "deny", Ingress: []v1.NetworkPolicyRule{
		{Name: "office", Action: "allow", Sources: []string{"198.51.100.0/24"}},
		{Name: "lab", Action: "deny", Sources: []string{"192.0.2.0/24"}}}})
	m := NewMatcher([]*Policy{enforced, trial})

	// A client the trial policy would refuse by a rule: allowed, reported.
	r := m.Check(TCP, ap("192.0.2.5:1"), ap("10.0.0.1:443"))
	if r.Action != Allow || r.Hit.Policy != enforced || r.Hit.Rule != -1 {
		t.Fatalf("real verdict %+v", r)
	}
	if r.DryRun.Policy != trial || r.DryRun.RuleName() != "lab" || r.DryRun.Action != Deny {
		t.Fatalf("dry-run verdict %+v", r.DryRun)
	}
	if e := Event(r, time.Unix(0, 0), "a/web", ap("192.0.2.5:1"), ap("10.0.0.1:443")); e == nil || e.Action != secevents.ActionDetected || e.Source != "a/trial/lab" {
		t.Fatalf("dry-run event %+v", e)
	}
	// Refused by its default: allowed, reported.
	r = m.Check(TCP, ap("203.0.114.1:1"), ap("10.0.0.1:443"))
	if r.Action != Allow || r.DryRun.Policy != trial || r.DryRun.Rule != -1 || r.DryRun.Action != Deny {
		t.Fatalf("dry-run default: %+v", r)
	}
	// Allowed by the trial policy: counted as a dry-run allow, no event.
	r = m.Check(TCP, ap("198.51.100.1:1"), ap("10.0.0.1:443"))
	if r.Action != Allow || r.DryRun.Policy != trial || r.DryRun.Action != Allow {
		t.Fatalf("dry-run allow: %+v", r)
	}
	if e := Event(r, time.Now(), "", ap("198.51.100.1:1"), ap("10.0.0.1:443")); e != nil {
		t.Fatalf("event for an allowed connection: %+v", e)
	}
	// The enforced policy denies first: a real deny, no dry-run hit.
	r = m.Check(TCP, ap("203.0.113.1:1"), ap("10.0.0.1:443"))
	if r.Action != Deny || r.Hit.RuleName() != "scanners" || r.DryRun.Policy != nil {
		t.Fatalf("enforced deny: %+v", r)
	}
	e := Event(r, time.Now(), "a/web", ap("203.0.113.1:1"), ap("10.0.0.1:443"))
	if e == nil || e.LoadBalancer != "a/web" || e.Action != secevents.ActionDenied || e.Kind != EventKind || e.Client != "203.0.113.1:1" || !strings.Contains(e.Message, "a/enforced") {
		t.Fatalf("deny event %+v", e)
	}
	// Only dryRun policies: nothing is ever refused.
	only := NewMatcher([]*Policy{trial})
	r = only.Check(TCP, ap("192.0.2.5:1"), ap("10.0.0.1:443"))
	if r.Action != Allow || r.Hit.Policy != nil || r.DryRun.RuleName() != "lab" {
		t.Fatalf("dry-run only: %+v", r)
	}
}

func TestNoPolicies(t *testing.T) {
	var m *Matcher
	if r := m.Check(TCP, ap("1.2.3.4:1"), ap("5.6.7.8:9")); r.Action != Allow || r.Hit.Policy != nil {
		t.Fatalf("nil matcher: %+v", r)
	}
	if r := NewMatcher(nil).Check(TCP, ap("1.2.3.4:1"), ap("5.6.7.8:9")); r.Action != Allow {
		t.Fatalf("empty matcher: %+v", r)
	}
}

func TestIPSet(t *testing.T) {
	ps, err := ParseCIDRs("x", []string{"10.0.0.0/8", "10.1.0.0/16", "11.0.0.0/8", "0.0.0.0/32", "255.255.255.255/32",
		"::/128", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "2001:db8::/127", "2001:db8::2/127", "::ffff:192.0.2.0/120"})
	if err != nil {
		t.Fatal(err)
	}
	s := newIPSet(ps)
	if len(s.v4) != 4 { // 0.0.0.0, 10-11/8 merged (adjacent), 192.0.2.0/24, 255.255.255.255
		t.Fatalf("v4 ranges %v", s.v4)
	}
	if len(s.v6) != 3 { // ::, 2001:db8::0-3 merged, ffff...
		t.Fatalf("v6 ranges %v", s.v6)
	}
	for a, want := range map[string]bool{
		"10.0.0.0": true, "11.255.255.255": true, "12.0.0.0": false, "9.255.255.255": false,
		"0.0.0.0": true, "0.0.0.1": false, "255.255.255.255": true, "255.255.255.254": false,
		"192.0.2.77": true, "::": true, "::1": false, "2001:db8::3": true, "2001:db8::4": false,
		"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff": true, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe": false,
		"::ffff:10.0.0.1": false, // callers unmap; the v6 table has no mapped ranges
	} {
		if got := s.contains(netip.MustParseAddr(a)); got != want {
			t.Errorf("contains(%s) = %v, want %v", a, got, want)
		}
	}
	all := newIPSet([]netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")})
	for _, a := range []string{"0.0.0.0", "255.255.255.255", "::", "ffff::1"} {
		if !all.contains(netip.MustParseAddr(a)) {
			t.Errorf("/0 misses %s", a)
		}
	}
}

func TestCompileErrorsNameTheField(t *testing.T) {
	for _, tc := range []struct {
		rule  v1.NetworkPolicyRule
		field string
	}{
		{v1.NetworkPolicyRule{Name: "a", Action: "drop"}, "spec.ingress[0].action"},
		{v1.NetworkPolicyRule{Name: "a", Action: "deny", Sources: []string{"10.0.0.1/8"}}, "spec.ingress[0].sources[0]"},
		{v1.NetworkPolicyRule{Name: "a", Action: "deny", NotSources: []string{"nope"}}, "spec.ingress[0].notSources[0]"},
		{v1.NetworkPolicyRule{Name: "a", Action: "deny", Destinations: []string{"::ffff:0:0/64"}}, "spec.ingress[0].destinations[0]"},
		{v1.NetworkPolicyRule{Name: "a", Action: "deny", Ports: []v1.NetworkPortRange{{Port: 90, EndPort: 80}}}, "spec.ingress[0].ports[0].endPort"},
		{v1.NetworkPolicyRule{Name: "a", Action: "deny", Ports: []v1.NetworkPortRange{{Port: 70000}}}, "spec.ingress[0].ports[0].port"},
		{v1.NetworkPolicyRule{Name: "a", Action: "deny", Protocol: "SCTP"}, "spec.ingress[0].protocol"},
	} {
		np := &v1.NetworkPolicy{Spec: v1.NetworkPolicySpec{Ingress: []v1.NetworkPolicyRule{tc.rule}}}
		np.Default()
		_, err := Compile(np)
		if err == nil || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("rule %+v: error %v, want one naming %s", tc.rule, err, tc.field)
		}
		verrs := np.Validate()
		if len(verrs) == 0 || verrs[0].Field != tc.field {
			t.Errorf("rule %+v: validation %v, want field %s", tc.rule, verrs, tc.field)
		}
	}
}

func TestMetrics(t *testing.T) {
	p := policy(t, "a", "p", v1.NetworkPolicySpec{Ingress: []v1.NetworkPolicyRule{{Name: "r", Action: "deny", Sources: []string{"192.0.2.0/24"}}}})
	m := NewMatcher([]*Policy{p})
	met := NewMetrics(nil)
	for range 3 {
		met.Observe(m.Check(TCP, ap("192.0.2.1:1"), ap("10.0.0.1:80")))
	}
	met.Observe(m.Check(TCP, ap("192.0.3.1:1"), ap("10.0.0.1:80")))
	// A recompiled policy of the same name counts into the same counter.
	p2 := policy(t, "a", "p", v1.NetworkPolicySpec{Ingress: []v1.NetworkPolicyRule{{Name: "r", Action: "deny", Sources: []string{"192.0.2.0/24"}}}})
	met.Observe(NewMatcher([]*Policy{p2}).Check(TCP, ap("192.0.2.1:1"), ap("10.0.0.1:80")))
	if v := met.Value("a", "p", "r", Deny, false); v != 4 {
		t.Fatalf("deny counter %d, want 4", v)
	}
	if v := met.Value("a", "p", DefaultRule, Allow, false); v != 1 {
		t.Fatalf("default allow counter %d, want 1", v)
	}
	// Another Metrics (another server) counting the same compiled policy
	// keeps its own counters.
	other := NewMetrics(nil)
	other.Observe(m.Check(TCP, ap("192.0.2.1:1"), ap("10.0.0.1:80")))
	met.Observe(m.Check(TCP, ap("192.0.2.1:1"), ap("10.0.0.1:80")))
	if a, b := other.Value("a", "p", "r", Deny, false), met.Value("a", "p", "r", Deny, false); a != 1 || b != 5 {
		t.Fatalf("counters %d and %d, want 1 and 5", a, b)
	}
}

func TestCheckDoesNotAllocate(t *testing.T) {
	m, met := benchMatcher(t)
	src, dst := ap("[::ffff:198.51.100.7]:40000"), ap("10.0.0.1:8443")
	met.Observe(m.Check(TCP, src, dst))
	if n := testing.AllocsPerRun(1000, func() { met.Observe(m.Check(TCP, src, dst)) }); n != 0 {
		t.Fatalf("%v allocations per check", n)
	}
}

func benchMatcher(t testing.TB) (*Matcher, *Metrics) {
	var cidrs []string
	for i := range 4096 {
		cidrs = append(cidrs, netip.AddrFrom4([4]byte{203, byte(i >> 8), byte(i), 0}).String()+"/24")
	}
	deny := policy(t, "a", "blocklist", v1.NetworkPolicySpec{Ingress: []v1.NetworkPolicyRule{
		{Name: "scanners", Action: "deny", Sources: cidrs},
		{Name: "v6", Action: "deny", Sources: []string{"2001:db8::/32"}, Ports: []v1.NetworkPortRange{{Port: 9000, EndPort: 9100}}},
	}})
	allow := policy(t, "a", "office", v1.NetworkPolicySpec{DefaultAction: "deny", Ingress: []v1.NetworkPolicyRule{
		{Name: "office", Action: "allow", Sources: []string{"198.51.100.0/24"}, Ports: []v1.NetworkPortRange{{Port: 8443}}}}})
	trial := policy(t, "a", "trial", v1.NetworkPolicySpec{Mode: "dryRun", Ingress: []v1.NetworkPolicyRule{
		{Name: "lab", Action: "deny", Sources: []string{"192.0.2.0/24"}}}})
	return NewMatcher([]*Policy{deny, allow, trial}), NewMetrics(nil)
}

func BenchmarkCheck(b *testing.B) {
	m, met := benchMatcher(b)
	src, dst := ap("[::ffff:198.51.100.7]:40000"), ap("10.0.0.1:8443")
	b.ReportAllocs()
	for b.Loop() {
		met.Observe(m.Check(TCP, src, dst))
	}
}

func TestEventFloodIsBounded(t *testing.T) {
	p := policy(t, "a", "p", v1.NetworkPolicySpec{Ingress: []v1.NetworkPolicyRule{{Name: "r", Action: "deny", Sources: []string{"192.0.2.0/24"}}}})
	m := NewMatcher([]*Policy{p})
	src, dst := ap("192.0.2.1:1"), ap("10.0.0.1:80")
	t0 := time.Unix(1_800_000_000, 0)
	n := 0
	for range MaxEventsPerRule + 50 {
		if Event(m.Check(TCP, src, dst), t0, "", src, dst) != nil {
			n++
		}
	}
	if n != MaxEventsPerRule {
		t.Fatalf("%d events in one second, want %d", n, MaxEventsPerRule)
	}
	// The default action has its own budget.
	if Event(m.Check(TCP, ap("198.51.100.1:1"), dst), t0, "", src, dst) != nil {
		t.Fatal("an allowed connection made an event")
	}
	e := Event(m.Check(TCP, src, dst), t0.Add(time.Second), "", src, dst)
	if e == nil || !strings.Contains(e.Message, "(50 similar events suppressed)") {
		t.Fatalf("next second's event: %+v", e)
	}
	if e = Event(m.Check(TCP, src, dst), t0.Add(time.Second), "", src, dst); e == nil || strings.Contains(e.Message, "suppressed") {
		t.Fatalf("second event of the new second: %+v", e)
	}
}

func BenchmarkCheckOnly(b *testing.B) {
	m, _ := benchMatcher(b)
	src, dst := ap("[::ffff:198.51.100.7]:40000"), ap("10.0.0.1:8443")
	b.ReportAllocs()
	for b.Loop() {
		m.Check(TCP, src, dst)
	}
}
