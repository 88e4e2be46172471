package auth

import (
	"fmt"
	"strings"

	v1 "github.com/meridian-platform/meridian/api/v1"
)

// Built-in roles. Each is data (BuiltinRoles); a RoleBinding refers to them
// by name, tenant-wide or in chosen namespaces:
//
//   - admin: every verb on every kind in its tenant, including users, roles,
//     bindings, API tokens and audit records. Admins of the system tenant
//     also manage Tenant objects.
//   - netops: sites and how they are grouped and connected: Site, SiteToken,
//     VirtualSite, NetworkPolicy, SiteShare (all verbs); reads
//     TCPLoadBalancer and Namespace.
//   - devops: publishes applications: HTTPLoadBalancer, TCPLoadBalancer,
//     OriginPool, HealthCheck, Certificate (all verbs); reads the security
//     objects they attach (AppFirewall, ServicePolicy, RateLimiter) and
//     the SecurityBindings and NetworkPolicies that SecOps or NetOps
//     impose on their namespaces, the
//     security events of their load balancers, the placement objects
//     (VirtualSite, Site) and Namespace.
//   - secops: AppFirewall, ServicePolicy, RateLimiter, SecurityBinding
//     (namespace-wide mandatory protection), NetworkPolicy, APIDefinition
//     (all verbs); reads every kind, audit records and security events
//     included.
//   - developer: like devops, but meant to be bound to namespaces: load
//     balancers, origin pools and health checks (all verbs); reads
//     Certificate (never writes one, so never handles private keys),
//     AppFirewall, ServicePolicy, RateLimiter, SecurityBinding,
//     NetworkPolicy, APIDefinition, Namespace and the security events of
//     their namespaces.
//   - viewer: reads every kind except those that hold secrets or manage
//     access: User, APIToken, Role, RoleBinding, SiteToken, Certificate and
//     AuditRecord.
const (
	RoleAdmin     = "admin"
	RoleNetOps    = "netops"
	RoleDevOps    = "devops"
	RoleSecOps    = "secops"
	RoleDeveloper = "developer"
	RoleViewer    = "viewer"
)

func all(kinds ...string) Rule  { return Rule{Verbs: []string{v1.VerbAll}, Kinds: kinds} }
func read(kinds ...string) Rule { return Rule{Verbs: ReadVerbs(), Kinds: kinds} }

// BuiltinRoles returns the built-in roles (a fresh copy on every call).
func BuiltinRoles() []Role {
	return []Role{
		{
			Name:        RoleAdmin,
			Description: "Everything in its tenant: objects, users, roles, bindings, tokens, audit. System-tenant admins also manage tenants.",
			Rules:       []Rule{all(KindAll)},
		},
		{
			Name:        RoleNetOps,
			Description: "Registers, groups and connects sites; reads TCP load balancers.",
			Rules: []Rule{
				all("Site", "SiteToken", "VirtualSite", "NetworkPolicy", "SiteShare"),
				read("TCPLoadBalancer", "Namespace"),
			},
		},
		{
			Name:        RoleDevOps,
			Description: "Publishes applications: load balancers, origin pools, health checks, certificates.",
			Rules: []Rule{
				all("HTTPLoadBalancer", "TCPLoadBalancer", "OriginPool", "HealthCheck", "Certificate"),
				read("AppFirewall", "ServicePolicy", "RateLimiter", "SecurityBinding", "NetworkPolicy", "VirtualSite", "Site", "Namespace", KindSecurityEvent),
			},
		},
		{
			Name:        RoleSecOps,
			Description: "Owns WAF, service policies, rate limits, namespace security bindings, network policies and API definitions; reads everything, audit included.",
			Rules: []Rule{
				all("AppFirewall", "ServicePolicy", "RateLimiter", "SecurityBinding", "NetworkPolicy", "APIDefinition"),
				read(KindAll),
			},
		},
		{
			Name:        RoleDeveloper,
			Description: "Self-service in bound namespaces: load balancers, origin pools, health checks; reads certificates and security objects.",
			Rules: []Rule{
				all("HTTPLoadBalancer", "TCPLoadBalancer", "OriginPool", "HealthCheck"),
				read("Certificate", "AppFirewall", "ServicePolicy", "RateLimiter", "SecurityBinding", "NetworkPolicy", "APIDefinition", "Namespace", KindSecurityEvent),
			},
		},
		{
			Name:        RoleViewer,
			Description: "Reads everything except secrets-bearing and access-management kinds.",
			Rules: []Rule{{
				Verbs:       ReadVerbs(),
				Kinds:       []string{KindAll},
				ExceptKinds: []string{"User", "APIToken", "Role", "RoleBinding", "SiteToken", "Certificate", KindAuditRecord},
			}},
		},
	}
}

// BuiltinRole returns the built-in role called name.
func BuiltinRole(name string) (Role, bool) {
	for _, r := range BuiltinRoles() {
		if r.Name == name {
			return r, true
		}
	}
	return Role{}, false
}

// BuiltinRolesMarkdown renders the built-in roles as a markdown table (one
// row per rule) for the README.
func BuiltinRolesMarkdown() string {
	var b strings.Builder
	b.WriteString("| role | verbs | kinds | description |\n|---|---|---|---|\n")
	for _, r := range BuiltinRoles() {
		for i, rule := range r.Rules {
			name, desc := "", ""
			if i == 0 {
				name, desc = "`"+r.Name+"`", r.Description
			}
			kinds := strings.Join(rule.Kinds, ", ")
			if kinds == KindAll {
				kinds = "all kinds"
			}
			if len(rule.ExceptKinds) > 0 {
				kinds += " except " + strings.Join(rule.ExceptKinds, ", ")
			}
			verbs := strings.Join(rule.Verbs, ", ")
			if verbs == v1.VerbAll {
				verbs = "all verbs"
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", name, verbs, kinds, desc)
		}
	}
	b.WriteString("\nTenant objects are managed only by admins of the `system` tenant; audit records are read-only " +
		"(get, list, watch) and readable by `admin` and `secops`. Security events (SecurityEvent, reported by sites) " +
		"are read-only too: `admin`, `secops` and `viewer` read them tenant-wide, `devops` and `developer` where they " +
		"are bound. A binding with namespaces grants the role only " +
		"in those namespaces (never the tenant-scoped kinds); a binding without namespaces is tenant-wide.\n")
	return b.String()
}
