package v1

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// SystemTenant is the tenant whose admins manage tenants.
const SystemTenant = "system"

// MaxDisplayNameLength bounds display names and descriptions.
const MaxDisplayNameLength = 1024

// Tenant is an isolated customer of the console (system scope).
type Tenant struct {
	Envelope
	Spec   TenantSpec `json:"spec"`
	Status Status     `json:"status,omitempty"`
}

// TenantSpec is the desired state of a Tenant.
type TenantSpec struct {
	// DisplayName is a human-readable name.
	DisplayName string `json:"displayName,omitempty"`
	// Limits bound what the tenant may use; defaults apply when absent.
	Limits TenantLimits `json:"limits,omitempty"`
}

// TenantLimits are per-tenant limits.
type TenantLimits struct {
	// RequestsPerSecond is the sustained API request rate of the tenant
	// (default 100); beyond it the API answers 429 with Retry-After.
	RequestsPerSecond int `json:"requestsPerSecond,omitempty"`
	// Burst is the number of requests allowed at once above the rate
	// (default twice RequestsPerSecond).
	Burst int `json:"burst,omitempty"`
}

// Tenant limit defaults and bounds.
const (
	DefaultTenantRequestsPerSecond = 100
	MaxTenantRequestsPerSecond     = 1_000_000
)

// Default fills in the API rate limit.
func (t *Tenant) Default() {
	l := &t.Spec.Limits
	if l.RequestsPerSecond == 0 {
		l.RequestsPerSecond = DefaultTenantRequestsPerSecond
	}
	if l.Burst == 0 {
		l.Burst = 2 * l.RequestsPerSecond
	}
}

// Validate checks the spec.
func (t *Tenant) Validate() FieldErrors {
	var errs FieldErrors
	errs = append(errs, validateDisplayName("spec.displayName", t.Spec.DisplayName)...)
	l := t.Spec.Limits
	if l.RequestsPerSecond < 0 || l.RequestsPerSecond > MaxTenantRequestsPerSecond {
		errs = append(errs, Invalid("spec.limits.requestsPerSecond", l.RequestsPerSecond, fmt.Sprintf("must be between 1 and %d", MaxTenantRequestsPerSecond)))
	}
	if l.Burst < 0 || l.Burst > 10*MaxTenantRequestsPerSecond {
		errs = append(errs, Invalid("spec.limits.burst", l.Burst, fmt.Sprintf("must be between 1 and %d", 10*MaxTenantRequestsPerSecond)))
	}
	return errs
}

func validateDisplayName(field, s string) FieldErrors {
	if len(s) > MaxDisplayNameLength {
		return FieldErrors{tooLong(field, len(s), MaxDisplayNameLength)}
	}
	return nil
}

// Namespace groups objects of a tenant (tenant scope).
type Namespace struct {
	Envelope
	Spec   NamespaceSpec `json:"spec,omitempty"`
	Status Status        `json:"status,omitempty"`
}

// NamespaceSpec is the desired state of a Namespace.
type NamespaceSpec struct {
	// DisplayName is a human-readable name.
	DisplayName string `json:"displayName,omitempty"`
	// Description says what the namespace is for.
	Description string `json:"description,omitempty"`
}

// Validate checks the spec.
func (n *Namespace) Validate() FieldErrors {
	return append(validateDisplayName("spec.displayName", n.Spec.DisplayName),
		validateDisplayName("spec.description", n.Spec.Description)...)
}

// User is a person who logs in with a password (tenant scope).
type User struct {
	Envelope
	Spec   UserSpec `json:"spec,omitempty"`
	Status Status   `json:"status,omitempty"`
}

// UserSpec is the desired state of a User.
type UserSpec struct {
	// DisplayName is the person's name.
	DisplayName string `json:"displayName,omitempty"`
	// Password is write-only; the console stores a slow hash of it.
	Password Secret `json:"password,omitempty"`
	// Disabled users cannot log in; their sessions stop working.
	Disabled bool `json:"disabled,omitempty"`
}

// Password length bounds.
const (
	MinPasswordLength = 8
	MaxPasswordLength = 256
)

// Validate checks the spec.
func (u *User) Validate() FieldErrors {
	errs := validateDisplayName("spec.displayName", u.Spec.DisplayName)
	if p := u.Spec.Password; p != "" && p != SecretRedacted {
		if len(p) < MinPasswordLength {
			errs = append(errs, FieldError{Field: "spec.password", Reason: ReasonInvalid,
				Message: fmt.Sprintf("must be at least %d characters", MinPasswordLength)})
		} else if len(p) > MaxPasswordLength {
			errs = append(errs, tooLong("spec.password", len(p), MaxPasswordLength))
		}
	}
	return errs
}

// SecretFields returns the password.
func (u *User) SecretFields() []SecretField {
	return []SecretField{{Field: "spec.password", Value: &u.Spec.Password}}
}

// RBAC verbs.
const (
	VerbGet    = "get"
	VerbList   = "list"
	VerbWatch  = "watch"
	VerbCreate = "create"
	VerbUpdate = "update"
	VerbPatch  = "patch"
	VerbDelete = "delete"
	VerbAll    = "*"
)

// Verbs returns the RBAC verbs, "*" last.
func Verbs() []string {
	return []string{VerbGet, VerbList, VerbWatch, VerbCreate, VerbUpdate, VerbPatch, VerbDelete, VerbAll}
}

// BuiltinRoles returns the names of the built-in roles, which RoleBindings
// may name without a Role object.
func BuiltinRoles() []string {
	return []string{"admin", "netops", "devops", "secops", "developer", "viewer"}
}

// NonObjectKinds returns the names RBAC rules may use besides the kinds of
// Kinds(): records that are not objects of the resource API.
func NonObjectKinds() []string { return []string{"AuditRecord", "SecurityEvent"} }

// Role is a custom set of permissions (tenant scope).
type Role struct {
	Envelope
	Spec   RoleSpec `json:"spec"`
	Status Status   `json:"status,omitempty"`
}

// RoleSpec is the desired state of a Role.
type RoleSpec struct {
	// Description says what the role is for.
	Description string `json:"description,omitempty"`
	// Rules are added together: a request is allowed when any rule allows it.
	Rules []RoleRule `json:"rules"`
}

// RoleRule allows verbs on kinds in namespaces.
type RoleRule struct {
	// Verbs: get, list, watch, create, update, patch, delete or "*".
	Verbs []string `json:"verbs" enum:"get,list,watch,create,update,patch,delete,*"`
	// Kinds are kind names (short and plural names are turned into kind
	// names by Default) or "*".
	Kinds []string `json:"kinds"`
	// Namespaces are namespace names or "*" (the default). A rule for a
	// tenant-scoped kind applies whatever its namespaces.
	Namespaces []string `json:"namespaces,omitempty"`
}

// Default turns kind aliases into kind names and fills in namespaces.
func (r *Role) Default() {
	for i := range r.Spec.Rules {
		rule := &r.Spec.Rules[i]
		for j, k := range rule.Kinds {
			if ki, ok := LookupKind(k); ok {
				rule.Kinds[j] = ki.Kind
				continue
			}
			for _, nk := range NonObjectKinds() {
				if strings.EqualFold(k, nk) || strings.EqualFold(k, nk+"s") {
					rule.Kinds[j] = nk
				}
			}
		}
		for j, v := range rule.Verbs {
			rule.Verbs[j] = strings.ToLower(v)
		}
		if len(rule.Namespaces) == 0 {
			rule.Namespaces = []string{"*"}
		}
	}
}

// Validate checks the rules.
func (r *Role) Validate() FieldErrors {
	errs := validateDisplayName("spec.description", r.Spec.Description)
	if IsBuiltinRole(r.Metadata.Name) {
		errs = append(errs, forbidden("metadata.name", fmt.Sprintf("%q is a built-in role; choose another name", r.Metadata.Name)))
	}
	if len(r.Spec.Rules) == 0 {
		errs = append(errs, Required("spec.rules", "at least one rule is required"))
	}
	kinds := []string{"*"}
	for _, ki := range Kinds() {
		kinds = append(kinds, ki.Kind)
	}
	kinds = append(kinds, NonObjectKinds()...)
	for i, rule := range r.Spec.Rules {
		f := idx("spec.rules", i)
		if len(rule.Verbs) == 0 {
			errs = append(errs, Required(f+".verbs", ""))
		}
		for j, v := range rule.Verbs {
			errs = append(errs, oneOf(idx(f+".verbs", j), v, Verbs())...)
		}
		if len(rule.Kinds) == 0 {
			errs = append(errs, Required(f+".kinds", ""))
		}
		for j, k := range rule.Kinds {
			if !slices.Contains(kinds, k) {
				errs = append(errs, FieldError{Field: idx(f+".kinds", j), Reason: ReasonNotSupported,
					Message: fmt.Sprintf("unknown kind %q", k)})
			}
		}
		for j, ns := range rule.Namespaces {
			if ns != "*" && !IsDNS1123Label(ns) {
				errs = append(errs, Invalid(idx(f+".namespaces", j), ns, "must be a namespace name or \"*\""))
			}
		}
	}
	return errs
}

// Subject kinds of role bindings.
const (
	SubjectUser     = "User"
	SubjectAPIToken = "APIToken"
)

// RoleBinding grants a role to subjects in namespaces (tenant scope).
type RoleBinding struct {
	Envelope
	Spec   RoleBindingSpec `json:"spec"`
	Status Status          `json:"status,omitempty"`
}

// RoleBindingSpec is the desired state of a RoleBinding.
type RoleBindingSpec struct {
	// Role is a built-in role (admin, netops, devops, secops, developer,
	// viewer) or the name of a Role.
	Role string `json:"role"`
	// Subjects are the users and API tokens granted the role.
	Subjects []Subject `json:"subjects"`
	// Namespaces limit the grant; empty means every namespace of the
	// tenant and the tenant-scoped kinds.
	Namespaces []string `json:"namespaces,omitempty"`
}

// Subject is a principal: a User or an APIToken.
type Subject struct {
	// Kind is User or APIToken.
	Kind string `json:"kind" enum:"User,APIToken"`
	// Name is the user's or token's name.
	Name string `json:"name"`
}

// Validate checks the spec.
func (b *RoleBinding) Validate() FieldErrors {
	errs := validateNameField("spec.role", b.Spec.Role)
	if len(b.Spec.Subjects) == 0 {
		errs = append(errs, Required("spec.subjects", "at least one subject is required"))
	}
	seen := map[Subject]bool{}
	for i, s := range b.Spec.Subjects {
		f := idx("spec.subjects", i)
		errs = append(errs, oneOf(f+".kind", s.Kind, []string{SubjectUser, SubjectAPIToken})...)
		errs = append(errs, validateNameField(f+".name", s.Name)...)
		if seen[s] {
			errs = append(errs, duplicate(f, s.Kind+"/"+s.Name))
		}
		seen[s] = true
	}
	nsSeen := map[string]bool{}
	for i, ns := range b.Spec.Namespaces {
		errs = append(errs, validateNameField(idx("spec.namespaces", i), ns)...)
		if nsSeen[ns] {
			errs = append(errs, duplicate(idx("spec.namespaces", i), ns))
		}
		nsSeen[ns] = true
	}
	return errs
}

// IsBuiltinRole reports whether name is a built-in role.
func IsBuiltinRole(name string) bool { return slices.Contains(BuiltinRoles(), name) }

// References lists the custom role and the subjects.
func (b *RoleBinding) References() []Reference {
	var refs []Reference
	if b.Spec.Role != "" && !IsBuiltinRole(b.Spec.Role) {
		refs = append(refs, Reference{Field: "spec.role", Kind: "Role", Name: b.Spec.Role})
	}
	for i, s := range b.Spec.Subjects {
		if s.Kind == SubjectUser || s.Kind == SubjectAPIToken {
			refs = append(refs, Reference{Field: idx("spec.subjects", i) + ".name", Kind: s.Kind, Name: s.Name})
		}
	}
	return refs
}

// APIToken is a bearer token for programs (tenant scope). It is a subject
// of RoleBindings. The token itself is shown once, in status.token of the
// answer to its creation; the console keeps only its hash.
type APIToken struct {
	Envelope
	Spec   APITokenSpec   `json:"spec,omitempty"`
	Status APITokenStatus `json:"status,omitempty"`
}

// APITokenSpec is the desired state of an APIToken.
type APITokenSpec struct {
	// Description says who or what uses the token.
	Description string `json:"description,omitempty"`
	// Expires is the lifetime counted from creation (default 2160h, 90
	// days). At most one of Expires and ExpiresAt is set.
	Expires *Duration `json:"expires,omitempty"`
	// ExpiresAt is an absolute expiry time.
	ExpiresAt *time.Time `json:"expiresAt,omitempty"`
}

// APITokenStatus is written by the console.
type APITokenStatus struct {
	Status `json:",inline"`
	// Token is the bearer token; set only in the answer to the creation.
	Token string `json:"token,omitempty"`
	// TokenHash is the stored hash of the token; never returned.
	TokenHash Secret `json:"tokenHash,omitempty"`
	// ExpiresAt is when the token stops working.
	ExpiresAt *time.Time `json:"expiresAt,omitempty"`
	// LastUsed is when the token last authenticated a request (updated at
	// a bounded rate).
	LastUsed *time.Time `json:"lastUsed,omitempty"`
}

// Token lifetime defaults and bounds.
const (
	DefaultAPITokenLifetime = 90 * 24 * time.Hour
	MaxTokenLifetime        = 10 * 365 * 24 * time.Hour
)

// Default fills in the lifetime.
func (t *APIToken) Default() {
	if t.Spec.Expires == nil && t.Spec.ExpiresAt == nil {
		t.Spec.Expires = &Duration{DefaultAPITokenLifetime}
	}
}

// Validate checks the spec.
func (t *APIToken) Validate() FieldErrors {
	errs := validateDisplayName("spec.description", t.Spec.Description)
	if t.Spec.Expires != nil && t.Spec.ExpiresAt != nil {
		errs = append(errs, forbidden("spec.expiresAt", "only one of expires and expiresAt may be set"))
	}
	if d := t.Spec.Expires; d != nil && (d.Duration <= 0 || d.Duration > MaxTokenLifetime) {
		errs = append(errs, Invalid("spec.expires", d.Duration, fmt.Sprintf("must be positive and at most %s", MaxTokenLifetime)))
	}
	return errs
}

// SecretFields returns the token hash, so that it is never shown.
func (t *APIToken) SecretFields() []SecretField {
	return []SecretField{{Field: "status.tokenHash", Value: &t.Status.TokenHash}}
}
