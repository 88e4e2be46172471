package auth

import (
	"fmt"
	"slices"
	"strings"

	v1 "github.com/meridian-platform/meridian/api/v1"
)

// KindAll in a rule matches every kind.
const KindAll = "*"

// Kinds with rules of their own in the evaluator.
const (
	// KindTenant objects may be managed only by principals of SystemTenant.
	KindTenant = "Tenant"
	// KindAuditRecord is read-only: only get, list and watch are ever allowed.
	KindAuditRecord = "AuditRecord"
	// KindSecurityEvent (security events reported by sites, per namespace)
	// is read-only like audit records.
	KindSecurityEvent = "SecurityEvent"
)

// Verbs returns every verb, in a stable order.
func Verbs() []string {
	return []string{v1.VerbGet, v1.VerbList, v1.VerbWatch, v1.VerbCreate, v1.VerbUpdate, v1.VerbPatch, v1.VerbDelete}
}

// ReadVerbs returns get, list and watch.
func ReadVerbs() []string { return []string{v1.VerbGet, v1.VerbList, v1.VerbWatch} }

func isVerb(v string) bool { return v == v1.VerbAll || slices.Contains(Verbs(), v) }

func isReadVerb(v string) bool { return v == v1.VerbGet || v == v1.VerbList || v == v1.VerbWatch }

// Rule grants Verbs on Kinds (minus ExceptKinds) in Namespaces. Empty
// Namespaces means every namespace the binding covers; a rule limited to
// namespaces never grants tenant-scoped kinds.
type Rule struct {
	Verbs       []string `json:"verbs"`
	Kinds       []string `json:"kinds"`
	ExceptKinds []string `json:"exceptKinds,omitempty"`
	Namespaces  []string `json:"namespaces,omitempty"`
}

// Role is a named set of rules: a built-in one (BuiltinRoles) or a custom
// Role of a tenant.
type Role struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	Rules       []Rule `json:"rules"`
}

// Subject kinds of a binding.
const (
	SubjectUser     = "User"
	SubjectAPIToken = "APIToken"
	SubjectGroup    = "Group"
)

// Subject names who a binding applies to.
type Subject struct {
	Kind string `json:"kind"` // User | APIToken | Group
	Name string `json:"name"`
}

// Binding grants Role to Subjects in Namespaces; empty Namespaces means
// tenant-wide (every namespace and the tenant-scoped kinds).
type Binding struct {
	Name       string    `json:"name"`
	Role       string    `json:"role"`
	Subjects   []Subject `json:"subjects"`
	Namespaces []string  `json:"namespaces,omitempty"`
}

// ValidateRule checks a rule's shape (the caller checks kind names).
func ValidateRule(r Rule) error {
	if len(r.Verbs) == 0 {
		return fmt.Errorf("verbs: must not be empty")
	}
	for i, v := range r.Verbs {
		if !isVerb(v) {
			return fmt.Errorf("verbs[%d]: unknown verb %q (want one of %s or *)", i, v, strings.Join(Verbs(), ", "))
		}
	}
	if len(r.Kinds) == 0 {
		return fmt.Errorf("kinds: must not be empty")
	}
	for i, k := range r.Kinds {
		if k == "" {
			return fmt.Errorf("kinds[%d]: must not be empty", i)
		}
	}
	for i, k := range r.ExceptKinds {
		if k == "" || k == KindAll {
			return fmt.Errorf("exceptKinds[%d]: must name a kind", i)
		}
	}
	for i, n := range r.Namespaces {
		if n == "" {
			return fmt.Errorf("namespaces[%d]: must not be empty", i)
		}
	}
	return nil
}

// ValidateRole checks a custom role: a name that is not a built-in role's,
// and valid rules. Field paths are relative to the role's spec.
func ValidateRole(r Role) error {
	if _, ok := BuiltinRole(r.Name); ok {
		return fmt.Errorf("name: %q is a built-in role", r.Name)
	}
	for i, rule := range r.Rules {
		if err := ValidateRule(rule); err != nil {
			return fmt.Errorf("rules[%d].%w", i, err)
		}
	}
	return nil
}

// ValidateBinding checks a binding's subjects and namespaces.
func ValidateBinding(b Binding) error {
	if b.Role == "" {
		return fmt.Errorf("role: must not be empty")
	}
	if len(b.Subjects) == 0 {
		return fmt.Errorf("subjects: must not be empty")
	}
	for i, s := range b.Subjects {
		switch s.Kind {
		case SubjectUser, SubjectAPIToken, SubjectGroup:
		default:
			return fmt.Errorf("subjects[%d].kind: unknown subject kind %q (want User, APIToken or Group)", i, s.Kind)
		}
		if s.Name == "" {
			return fmt.Errorf("subjects[%d].name: must not be empty", i)
		}
	}
	for i, n := range b.Namespaces {
		if n == "" {
			return fmt.Errorf("namespaces[%d]: must not be empty", i)
		}
	}
	return nil
}
