package netpolicy

import (
	"cmp"
	"net/netip"
	"slices"
)

// Matcher holds the policies that select one listener, in evaluation
// order: priority (lower first), then namespace and name. It is immutable
// and safe for concurrent use.
type Matcher struct {
	// LoadBalancer ("namespace/name") names a load balancer served on the
	// listener, so that events can be attributed to it; set it before the
	// matcher is shared.
	LoadBalancer string
	policies     []*Policy
	dryRun       bool // some policy is in dryRun mode
	enforce      bool // some policy is enforced
}

// NewMatcher orders the policies; it does not modify them.
func NewMatcher(policies []*Policy) *Matcher {
	m := &Matcher{policies: slices.Clone(policies)}
	slices.SortStableFunc(m.policies, func(a, b *Policy) int {
		return cmp.Or(cmp.Compare(a.Priority, b.Priority), cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	for _, p := range m.policies {
		m.dryRun = m.dryRun || p.DryRun
		m.enforce = m.enforce || !p.DryRun
	}
	return m
}

// Policies returns the policies in evaluation order (not to be modified).
func (m *Matcher) Policies() []*Policy { return m.policies }

// Hit says which rule of which policy decided. Policy is nil when no
// policy took part; Rule is -1 for the policy's default action.
type Hit struct {
	Policy *Policy
	Rule   int
	Action Action
}

// RuleName is the rule's name, or DefaultRule.
func (h Hit) RuleName() string {
	if h.Policy == nil || h.Rule < 0 {
		return DefaultRule
	}
	return h.Policy.Rules[h.Rule].Name
}

// Result is the verdict on one connection.
type Result struct {
	// Action is what the listener must do.
	Action Action
	// Hit is what decided Action among the enforced policies (Policy nil
	// when none selects the listener).
	Hit Hit
	// DryRun is set (Policy non-nil) when a policy in dryRun mode decided
	// the verdict the connection would get if every policy were enforced.
	DryRun Hit
}

// Check evaluates a connection from src to dst (the listener's address)
// against the policies. It does not allocate.
func (m *Matcher) Check(proto Proto, src, dst netip.AddrPort) Result {
	var res Result
	if m == nil || len(m.policies) == 0 {
		return res
	}
	srcAddr := src.Addr().Unmap()
	// Two evaluations at once: the real one over enforced policies, and,
	// when dryRun policies exist, the one as if they were enforced too.
	var real, all tierEval
	realDone, allDone := !m.enforce, !m.dryRun
	ps := m.policies
	for i := 0; i < len(ps) && !(realDone && allDone); {
		prio := ps[i].Priority
		real.reset()
		all.reset()
		for ; i < len(ps) && ps[i].Priority == prio; i++ {
			p := ps[i]
			if (p.DryRun || realDone) && allDone {
				continue // its verdict counts nowhere any more
			}
			r := p.firstMatch(proto, srcAddr, dst)
			if r < 0 {
				continue
			}
			h := Hit{Policy: p, Rule: r, Action: p.Rules[r].Action}
			if !p.DryRun && !realDone {
				real.add(h)
			}
			if !allDone {
				all.add(h)
			}
		}
		if !realDone && real.decided() {
			res.Hit, realDone = real.result(), true
		}
		if !allDone && all.decided() {
			res.DryRun, allDone = all.result(), true
		}
	}
	if !realDone {
		res.Hit = m.defaultHit(false)
	}
	if !allDone {
		res.DryRun = m.defaultHit(true)
	}
	res.Action = res.Hit.Action
	if !m.dryRun || res.DryRun.Policy == nil || !res.DryRun.Policy.DryRun {
		res.DryRun = Hit{}
	}
	return res
}

// firstMatch returns the index of the first matching rule, or -1.
func (p *Policy) firstMatch(proto Proto, src netip.Addr, dst netip.AddrPort) int {
	for i := range p.Rules {
		if p.Rules[i].Matches(proto, src, dst) {
			return i
		}
	}
	return -1
}

// defaultHit is the decision when no rule matched: the first policy (of
// the enforced ones, or of all with withDryRun) whose default is deny,
// else an allow by the first such policy.
func (m *Matcher) defaultHit(withDryRun bool) Hit {
	var first *Policy
	for _, p := range m.policies {
		if p.DryRun && !withDryRun {
			continue
		}
		if p.Default == Deny {
			return Hit{Policy: p, Rule: -1, Action: Deny}
		}
		if first == nil {
			first = p
		}
	}
	if first == nil {
		return Hit{Rule: -1}
	}
	return Hit{Policy: first, Rule: -1, Action: Allow}
}

// tierEval combines the matches of the policies of one priority: the
// first deny wins, else the first allow.
type tierEval struct {
	deny, allow Hit
}

func (t *tierEval) reset() { *t = tierEval{} }

func (t *tierEval) add(h Hit) {
	if h.Action == Deny {
		if t.deny.Policy == nil {
			t.deny = h
		}
	} else if t.allow.Policy == nil {
		t.allow = h
	}
}

func (t *tierEval) decided() bool { return t.deny.Policy != nil || t.allow.Policy != nil }

func (t *tierEval) result() Hit {
	if t.deny.Policy != nil {
		return t.deny
	}
	return t.allow
}
