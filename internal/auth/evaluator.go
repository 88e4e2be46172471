package auth

import (
	"fmt"
	"slices"
	"sort"

	v1 "github.com/meridian-platform/meridian/api/v1"
)

// Decision is the answer of an authorization check, with a reason fit for
// an audit record or an access review.
type Decision struct {
	Allowed bool
	Reason  string
}

type set struct {
	any   bool
	items map[string]struct{}
}

func newSet(items []string, wildcard string) set {
	s := set{items: make(map[string]struct{}, len(items))}
	for _, it := range items {
		if it == wildcard && wildcard != "" {
			s.any = true
		}
		s.items[it] = struct{}{}
	}
	return s
}

func (s set) has(x string) bool {
	if s.any {
		return true
	}
	_, ok := s.items[x]
	return ok
}

type compiledRule struct {
	verbs, kinds, except set
	namespaces           []string // empty = all
}

func (r *compiledRule) matches(verb, kind string) bool {
	if !r.verbs.has(verb) || !r.kinds.has(kind) {
		return false
	}
	_, excluded := r.except.items[kind]
	return !excluded
}

type compiledBinding struct {
	name, role string
	namespaces []string // empty = tenant-wide
	rules      []*compiledRule
}

// nsAllowed reports whether the binding and rule together cover namespace
// ns ("" = a tenant-scoped kind, or every namespace at once).
func nsAllowed(bindingNS, ruleNS []string, ns string) bool {
	if ns == "" {
		return len(bindingNS) == 0 && len(ruleNS) == 0
	}
	return (len(bindingNS) == 0 || slices.Contains(bindingNS, ns)) &&
		(len(ruleNS) == 0 || slices.Contains(ruleNS, ns))
}

// Evaluator answers authorization questions for one tenant from its roles
// and bindings, indexed by subject. It is immutable and safe for concurrent
// use: build a new one when the tenant's Roles or RoleBindings change.
type Evaluator struct {
	tenant    string
	bySubject map[string][]*compiledBinding
	unknown   []string
}

func subjectKey(kind, name string) string { return kind + "\x00" + name }

// NewEvaluator compiles the tenant's custom roles and bindings. Built-in
// roles are always present and win over a custom role of the same name.
// Bindings naming an unknown role grant nothing (see UnknownRoles).
func NewEvaluator(tenant string, roles []Role, bindings []Binding) *Evaluator {
	byName := map[string][]*compiledRule{}
	compile := func(r Role) {
		rules := make([]*compiledRule, 0, len(r.Rules))
		for _, rule := range r.Rules {
			rules = append(rules, &compiledRule{
				verbs:      newSet(rule.Verbs, v1.VerbAll),
				kinds:      newSet(rule.Kinds, KindAll),
				except:     newSet(rule.ExceptKinds, ""),
				namespaces: slices.Clone(rule.Namespaces),
			})
		}
		byName[r.Name] = rules
	}
	for _, r := range roles {
		compile(r)
	}
	for _, r := range BuiltinRoles() {
		compile(r)
	}
	e := &Evaluator{tenant: tenant, bySubject: map[string][]*compiledBinding{}}
	for _, b := range bindings {
		rules, ok := byName[b.Role]
		if !ok {
			e.unknown = append(e.unknown, fmt.Sprintf("RoleBinding %q refers to unknown role %q", b.Name, b.Role))
			continue
		}
		cb := &compiledBinding{name: b.Name, role: b.Role, namespaces: slices.Clone(b.Namespaces), rules: rules}
		seen := map[string]bool{}
		for _, s := range b.Subjects {
			k := subjectKey(s.Kind, s.Name)
			if !seen[k] {
				seen[k] = true
				e.bySubject[k] = append(e.bySubject[k], cb)
			}
		}
	}
	return e
}

// Tenant returns the tenant the Evaluator was built for.
func (e *Evaluator) Tenant() string { return e.tenant }

// UnknownRoles lists bindings whose role does not exist (they grant nothing).
func (e *Evaluator) UnknownRoles() []string { return slices.Clone(e.unknown) }

// bindingsOf returns the bindings that apply to p, in a stable order.
func (e *Evaluator) bindingsOf(p Principal) []*compiledBinding {
	var out []*compiledBinding
	switch p.Kind {
	case KindUser:
		out = append(out, e.bySubject[subjectKey(SubjectUser, p.Name)]...)
	case KindAPIToken:
		out = append(out, e.bySubject[subjectKey(SubjectAPIToken, p.Name)]...)
	}
	for _, g := range p.Groups {
		out = append(out, e.bySubject[subjectKey(SubjectGroup, g)]...)
	}
	return out
}

// precheck applies the rules that hold whatever the bindings say. It
// returns a decision when one applies.
func (e *Evaluator) precheck(p Principal, verb, kind string) (Decision, bool) {
	switch {
	case p.Tenant != e.tenant || p.Tenant == "":
		return Decision{false, fmt.Sprintf("principal %s is not in tenant %q", p, e.tenant)}, true
	case !isVerb(verb) || verb == v1.VerbAll:
		return Decision{false, fmt.Sprintf("unknown verb %q", verb)}, true
	case kind == "" || kind == KindAll:
		return Decision{false, "no kind given"}, true
	case kind == KindTenant && e.tenant != SystemTenant:
		return Decision{false, fmt.Sprintf("Tenant objects are managed only from the %q tenant", SystemTenant)}, true
	case kind == KindAuditRecord && !isReadVerb(verb):
		return Decision{false, "audit records are read-only"}, true
	case kind == KindSecurityEvent && !isReadVerb(verb):
		return Decision{false, "security events are read-only"}, true
	case p.Kind == KindSystem:
		return Decision{true, "system principal"}, true
	case p.Kind != KindUser && p.Kind != KindAPIToken:
		return Decision{false, fmt.Sprintf("unknown principal kind %q", p.Kind)}, true
	}
	return Decision{}, false
}

// Authorize decides whether p may do verb on kind in namespace (namespace ""
// for tenant-scoped kinds and for requests across all namespaces; for the
// kind Namespace itself, pass the namespace's own name so that bindings to
// that namespace can read it).
func (e *Evaluator) Authorize(p Principal, verb, kind, namespace string) Decision {
	if d, ok := e.precheck(p, verb, kind); ok {
		return d
	}
	for _, b := range e.bindingsOf(p) {
		for _, r := range b.rules {
			if r.matches(verb, kind) && nsAllowed(b.namespaces, r.namespaces, namespace) {
				scope := "tenant-wide"
				if len(b.namespaces) > 0 {
					scope = fmt.Sprintf("in namespaces %v", b.namespaces)
				}
				return Decision{true, fmt.Sprintf("RoleBinding %q grants role %q %s", b.name, b.role, scope)}
			}
		}
	}
	where := "tenant-wide"
	if namespace != "" {
		where = fmt.Sprintf("in namespace %q", namespace)
	}
	return Decision{false, fmt.Sprintf("%s %q may not %s %s %s", p.Kind, p.Name, verb, kind, where)}
}

// Allowed is Authorize returning its two fields.
func (e *Evaluator) Allowed(p Principal, verb, kind, namespace string) (bool, string) {
	d := e.Authorize(p, verb, kind, namespace)
	return d.Allowed, d.Reason
}

// AllowedNamespaces says where p may do verb on a namespaced kind: all is
// true when every namespace is allowed; otherwise namespaces lists the
// allowed ones (sorted). A list across namespaces by a principal bound to
// some namespaces only can be filtered with it.
func (e *Evaluator) AllowedNamespaces(p Principal, verb, kind string) (all bool, namespaces []string) {
	if d, ok := e.precheck(p, verb, kind); ok {
		return d.Allowed, nil
	}
	seen := map[string]bool{}
	for _, b := range e.bindingsOf(p) {
		for _, r := range b.rules {
			if !r.matches(verb, kind) {
				continue
			}
			switch {
			case len(b.namespaces) == 0 && len(r.namespaces) == 0:
				return true, nil
			case len(b.namespaces) == 0:
				for _, n := range r.namespaces {
					seen[n] = true
				}
			default:
				for _, n := range b.namespaces {
					if len(r.namespaces) == 0 || slices.Contains(r.namespaces, n) {
						seen[n] = true
					}
				}
			}
		}
	}
	for n := range seen {
		namespaces = append(namespaces, n)
	}
	sort.Strings(namespaces)
	return false, namespaces
}

// RolesOf returns the names of the roles bound to p (sorted, unique), for
// whoami.
func (e *Evaluator) RolesOf(p Principal) []string {
	if p.Tenant != e.tenant {
		return nil
	}
	seen := map[string]bool{}
	var out []string
	for _, b := range e.bindingsOf(p) {
		if !seen[b.role] {
			seen[b.role] = true
			out = append(out, b.role)
		}
	}
	sort.Strings(out)
	return out
}

// Allowed is a one-shot check: it builds an Evaluator for p's tenant from
// roles and bindings (which must be that tenant's) and asks it. Callers that
// check often keep an Evaluator instead.
func Allowed(p Principal, verb, kind, namespace string, roles []Role, bindings []Binding) (bool, string) {
	return NewEvaluator(p.Tenant, roles, bindings).Allowed(p, verb, kind, namespace)
}
