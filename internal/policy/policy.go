package policy

import (
	"fmt"
	"sync"
	"sync/atomic"

	v1 "github.com/meridian-platform/meridian/api/v1"
)

// Action is the outcome of an evaluation.
type Action uint8

// Actions.
const (
	// None: no policy decided; the request goes on.
	None Action = iota
	Allow
	Deny
	Redirect
)

func (a Action) String() string {
	switch a {
	case Allow:
		return "allow"
	case Deny:
		return "deny"
	case Redirect:
		return "redirect"
	}
	return "none"
}

// Verdict is one policy's decision (enforced or, in dry-run, only counted).
type Verdict struct {
	Action      Action
	Status      int
	RedirectURL string
	// Policy is "namespace/name"; Rule is the rule name, or "" when the
	// policy's default action decided.
	Policy string
	Rule   string
}

// Decision is the result of evaluating a Set.
type Decision struct {
	// Verdict is what to do. Action None or Allow let the request go on.
	Verdict
	// DryRun is the first verdict of a dry-run policy that would have
	// allowed, denied or redirected the request (Action None if there was
	// none): for events and counters, never acted upon.
	DryRun Verdict
}

// Counter counts the hits of one rule (or of a policy's default action);
// counters live in a Registry so that a configuration push keeps them.
type Counter struct {
	Policy string // "namespace/name"
	Rule   string // "" for the default action
	Action string
	DryRun bool
	hits   atomic.Uint64
}

// Hits returns the number of decisions this rule made.
func (c *Counter) Hits() uint64 { return c.hits.Load() }

// Registry holds hit counters across compilations, keyed by policy
// identity, rule name, action and mode.
type Registry struct {
	mu sync.Mutex
	m  map[counterKey]*Counter
}

type counterKey struct {
	policy, rule, action string
	dryRun               bool
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{m: map[counterKey]*Counter{}} }

func (r *Registry) counter(policy, rule, action string, dryRun bool) *Counter {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := counterKey{policy, rule, action, dryRun}
	c := r.m[k]
	if c == nil {
		c = &Counter{Policy: policy, Rule: rule, Action: action, DryRun: dryRun}
		r.m[k] = c
	}
	return c
}

// Counters returns every counter (in no particular order).
func (r *Registry) Counters() []*Counter {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*Counter, 0, len(r.m))
	for _, c := range r.m {
		out = append(out, c)
	}
	return out
}

// Forget drops the counters of a policy that no longer exists.
func (r *Registry) Forget(policy string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k := range r.m {
		if k.policy == policy {
			delete(r.m, k)
		}
	}
}

type rule struct {
	name    string
	match   *matcher
	verdict Verdict
	hits    *Counter
}

type algorithm uint8

const (
	firstMatch algorithm = iota
	allowOverrides
	denyOverrides
)

// compiled is one ServicePolicy.
type compiled struct {
	id       string
	dryRun   bool
	algo     algorithm
	rules    []rule
	dflt     Verdict // Action None for "next"
	dfltHits *Counter
}

// Set is an ordered list of compiled policies. It is immutable and safe
// for concurrent use.
type Set struct {
	policies []*compiled
	geo      Geo
}

// Len returns the number of policies.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return len(s.policies)
}

func parseAction(a string) (Action, error) {
	switch a {
	case v1.PolicyActionAllow:
		return Allow, nil
	case v1.PolicyActionDeny:
		return Deny, nil
	case v1.PolicyActionRedirect:
		return Redirect, nil
	case v1.PolicyActionNext, "":
		return None, nil
	}
	return None, fmt.Errorf("unknown action %q", a)
}

// Compile compiles an ordered list of policies (defaults are applied to a
// copy, so specs that skipped the console's defaulting work as well).
// Counters are taken from reg (a new registry when nil).
func Compile(pols []*v1.ServicePolicy, reg *Registry) (*Set, error) {
	return CompileWith(pols, reg, Options{})
}

// CompileWith is Compile with options (a GeoIP database for country and
// ASN matches). A rule matching countries or ASNs without the database it
// needs is an error naming the field.
func CompileWith(pols []*v1.ServicePolicy, reg *Registry, opts Options) (*Set, error) {
	if reg == nil {
		reg = NewRegistry()
	}
	s := &Set{geo: opts.Geo}
	for _, p := range pols {
		c, err := compileOne(p, reg, opts)
		if err != nil {
			return nil, fmt.Errorf("compiling ServicePolicy %s/%s: %w", p.Metadata.Namespace, p.Metadata.Name, err)
		}
		s.policies = append(s.policies, c)
	}
	return s, nil
}

func compileOne(src *v1.ServicePolicy, reg *Registry, opts Options) (*compiled, error) {
	p := *src
	p.Spec.Rules = append([]v1.ServicePolicyRule(nil), src.Spec.Rules...)
	for i := range p.Spec.Rules {
		p.Spec.Rules[i].Match.Methods = append([]string(nil), src.Spec.Rules[i].Match.Methods...)
	}
	p.Default()
	if errs := p.Validate(); len(errs) > 0 {
		return nil, errs
	}
	c := &compiled{id: p.Metadata.Namespace + "/" + p.Metadata.Name, dryRun: p.Spec.Mode == v1.PolicyModeDryRun}
	switch p.Spec.Algorithm {
	case v1.PolicyAllowOverrides:
		c.algo = allowOverrides
	case v1.PolicyDenyOverrides:
		c.algo = denyOverrides
	}
	for i, r := range p.Spec.Rules {
		f := fmt.Sprintf("spec.rules[%d]", i)
		act, err := parseAction(r.Action)
		if err != nil || act == None {
			return nil, fmt.Errorf("%s.action: unknown action %q", f, r.Action)
		}
		m, err := compileMatch(f+".match", &r.Match, opts)
		if err != nil {
			return nil, err
		}
		c.rules = append(c.rules, rule{name: r.Name, match: m,
			verdict: Verdict{Action: act, Status: r.Status, RedirectURL: r.RedirectURL, Policy: c.id, Rule: r.Name},
			hits:    reg.counter(c.id, r.Name, r.Action, c.dryRun)})
	}
	act, err := parseAction(p.Spec.DefaultAction)
	if err != nil {
		return nil, fmt.Errorf("spec.defaultAction: %w", err)
	}
	c.dflt = Verdict{Action: act, Policy: c.id}
	if act == Deny {
		c.dflt.Status = 403
	}
	if act != None {
		c.dfltHits = reg.counter(c.id, "", p.Spec.DefaultAction, c.dryRun)
	}
	return c, nil
}

// evaluate returns the policy's verdict (Action None for "next").
func (c *compiled) evaluate(r Request, g *geoState) Verdict {
	var chosen *rule
	switch c.algo {
	case firstMatch:
		for i := range c.rules {
			if c.rules[i].match.match(r, g) {
				chosen = &c.rules[i]
				break
			}
		}
	case allowOverrides, denyOverrides:
		want := Allow
		if c.algo == denyOverrides {
			want = Deny
		}
		for i := range c.rules {
			ru := &c.rules[i]
			if chosen != nil && ru.verdict.Action != want {
				continue // cannot override what was found
			}
			if !ru.match.match(r, g) {
				continue
			}
			chosen = ru
			if ru.verdict.Action == want {
				break
			}
		}
	}
	if chosen != nil {
		chosen.hits.hits.Add(1)
		return chosen.verdict
	}
	if c.dfltHits != nil {
		c.dfltHits.hits.Add(1)
	}
	return c.dflt
}

// Evaluate runs the policies in order. The first enforcing policy that
// allows, denies or redirects decides; dry-run policies are evaluated and
// counted only. Evaluate does not allocate.
func (s *Set) Evaluate(r Request) Decision {
	var d Decision
	if s == nil {
		return d
	}
	g := geoState{geo: s.geo}
	for _, p := range s.policies {
		v := p.evaluate(r, &g)
		if v.Action == None {
			continue
		}
		if p.dryRun {
			if d.DryRun.Action == None {
				d.DryRun = v
			}
			continue
		}
		d.Verdict = v
		return d
	}
	return d
}
