package auth

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

func user(tenant, name string, groups ...string) Principal {
	return Principal{Tenant: tenant, Name: name, Kind: KindUser, Groups: groups}
}

// TestBuiltinRoles walks each built-in role over a table of requests,
// bound tenant-wide in tenant acme.
func TestBuiltinRoles(t *testing.T) {
	type req struct {
		verb, kind, ns string
		want           bool
	}
	cases := map[string][]req{
		RoleAdmin: {
			{"create", "OriginPool", "retail", true}, {"delete", "User", "", true}, {"create", "RoleBinding", "", true},
			{"list", "AuditRecord", "", true}, {"delete", "AuditRecord", "", false}, {"create", "Tenant", "", false},
			{"get", "APIToken", "", true}, {"create", "SecurityBinding", "retail", true},
		},
		RoleNetOps: {
			{"create", "Site", "", true}, {"delete", "SiteToken", "", true}, {"update", "VirtualSite", "", true},
			{"create", "NetworkPolicy", "retail", true}, {"get", "TCPLoadBalancer", "retail", true},
			{"update", "TCPLoadBalancer", "retail", false}, {"create", "HTTPLoadBalancer", "retail", false},
			{"list", "AuditRecord", "", false}, {"create", "User", "", false},
			{"create", "SecurityBinding", "retail", false},
		},
		RoleDevOps: {
			{"create", "HTTPLoadBalancer", "retail", true}, {"patch", "TCPLoadBalancer", "retail", true},
			{"delete", "OriginPool", "retail", true}, {"create", "HealthCheck", "retail", true},
			{"create", "Certificate", "retail", true}, {"get", "AppFirewall", "retail", true},
			{"update", "AppFirewall", "retail", false}, {"create", "SiteToken", "", false}, {"list", "AuditRecord", "", false},
			{"get", "VirtualSite", "", true},
			{"get", "SecurityBinding", "retail", true}, {"update", "SecurityBinding", "retail", false},
			{"delete", "SecurityBinding", "retail", false},
		},
		RoleSecOps: {
			{"create", "AppFirewall", "retail", true}, {"update", "ServicePolicy", "retail", true},
			{"delete", "RateLimiter", "retail", true}, {"get", "HTTPLoadBalancer", "retail", true},
			{"update", "HTTPLoadBalancer", "retail", false}, {"list", "AuditRecord", "", true},
			{"watch", "User", "", true}, {"create", "User", "", false},
			{"create", "SecurityBinding", "retail", true}, {"delete", "SecurityBinding", "retail", true},
		},
		RoleDeveloper: {
			{"create", "HTTPLoadBalancer", "retail", true}, {"create", "OriginPool", "retail", true},
			{"get", "Certificate", "retail", true}, {"create", "Certificate", "retail", false},
			{"update", "Certificate", "retail", false}, {"update", "AppFirewall", "retail", false},
			{"list", "AuditRecord", "", false},
			{"get", "SecurityBinding", "retail", true}, {"patch", "SecurityBinding", "retail", false},
		},
		RoleViewer: {
			{"get", "HTTPLoadBalancer", "retail", true}, {"list", "Site", "", true}, {"watch", "OriginPool", "retail", true},
			{"create", "OriginPool", "retail", false}, {"get", "User", "", false}, {"list", "APIToken", "", false},
			{"get", "Certificate", "retail", false}, {"list", "SiteToken", "", false}, {"list", "AuditRecord", "", false},
			{"get", "Role", "", false}, {"get", "RoleBinding", "", false},
		},
	}
	for _, role := range BuiltinRoles() {
		reqs, ok := cases[role.Name]
		if !ok {
			t.Fatalf("no cases for built-in role %q", role.Name)
		}
		e := NewEvaluator("acme", nil, []Binding{{Name: "b", Role: role.Name, Subjects: []Subject{{SubjectUser, "u"}}}})
		for _, r := range reqs {
			t.Run(fmt.Sprintf("%s/%s/%s/%s", role.Name, r.verb, r.kind, r.ns), func(t *testing.T) {
				d := e.Authorize(user("acme", "u"), r.verb, r.kind, r.ns)
				if d.Allowed != r.want || d.Reason == "" {
					t.Fatalf("Authorize = %+v, want allowed=%v", d, r.want)
				}
			})
		}
	}
}

func TestEvaluatorScopes(t *testing.T) {
	roles := []Role{
		{Name: "pool-editor", Rules: []Rule{{Verbs: []string{"get", "update"}, Kinds: []string{"OriginPool"}}}},
		{Name: "dev-only", Rules: []Rule{{Verbs: []string{"*"}, Kinds: []string{"*"}, Namespaces: []string{"dev"}}}},
		{Name: RoleAdmin, Rules: []Rule{{Verbs: []string{"get"}, Kinds: []string{"Site"}}}}, // shadowed by built-in
	}
	bindings := []Binding{
		{Name: "alice-dev", Role: RoleDeveloper, Subjects: []Subject{{SubjectUser, "alice"}}, Namespaces: []string{"retail", "shop"}},
		{Name: "ci", Role: "pool-editor", Subjects: []Subject{{SubjectAPIToken, "ci"}}},
		{Name: "sre", Role: RoleSecOps, Subjects: []Subject{{SubjectGroup, "sre"}}},
		{Name: "sandbox", Role: "dev-only", Subjects: []Subject{{SubjectUser, "bob"}}, Namespaces: []string{"dev", "prod"}},
		{Name: "ghost", Role: "no-such-role", Subjects: []Subject{{SubjectUser, "carol"}}},
		{Name: "root", Role: RoleAdmin, Subjects: []Subject{{SubjectUser, "root"}}},
	}
	e := NewEvaluator("acme", roles, bindings)
	alice := user("acme", "alice")
	ci := Principal{Tenant: "acme", Name: "ci", Kind: KindAPIToken}
	tests := []struct {
		name           string
		p              Principal
		verb, kind, ns string
		want           bool
	}{
		{"bound namespace", alice, "create", "OriginPool", "retail", true},
		{"other bound namespace", alice, "create", "OriginPool", "shop", true},
		{"unbound namespace", alice, "create", "OriginPool", "prod", false},
		{"namespace binding never grants across namespaces", alice, "list", "OriginPool", "", false},
		{"own namespace object", alice, "get", "Namespace", "retail", true},
		{"api token custom role", ci, "update", "OriginPool", "any", true},
		{"api token custom role tenant-wide list", ci, "get", "OriginPool", "", true},
		{"api token verb not granted", ci, "delete", "OriginPool", "any", false},
		{"token name is not a user name", Principal{Tenant: "acme", Name: "ci", Kind: KindUser}, "get", "OriginPool", "x", false},
		{"group", user("acme", "dave", "sre"), "list", "AuditRecord", "", true},
		{"rule and binding namespaces intersect", user("acme", "bob"), "delete", "OriginPool", "dev", true},
		{"rule namespace outside binding", user("acme", "bob"), "delete", "OriginPool", "prod", false},
		{"rule namespaces never grant tenant kinds", user("acme", "bob"), "get", "Site", "", false},
		{"unknown role grants nothing", user("acme", "carol"), "get", "Site", "", false},
		{"custom role cannot shadow admin", user("acme", "root"), "delete", "User", "", true},
		{"other tenant", user("globex", "root"), "get", "Site", "", false},
		{"empty tenant", Principal{Name: "root", Kind: KindUser}, "get", "Site", "", false},
		{"tenant kind outside system", user("acme", "root"), "get", "Tenant", "", false},
		{"unknown verb", user("acme", "root"), "destroy", "Site", "", false},
		{"star verb in request", user("acme", "root"), "*", "Site", "", false},
		{"system principal", Principal{Tenant: "acme", Name: "console", Kind: KindSystem}, "update", "Site", "", true},
		{"system principal audit write", Principal{Tenant: "acme", Name: "console", Kind: KindSystem}, "delete", "AuditRecord", "", false},
		{"unknown principal kind", Principal{Tenant: "acme", Name: "root", Kind: "Robot"}, "get", "Site", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := e.Authorize(tt.p, tt.verb, tt.kind, tt.ns)
			if d.Allowed != tt.want {
				t.Fatalf("Authorize(%v, %s %s %q) = %+v, want %v", tt.p, tt.verb, tt.kind, tt.ns, d, tt.want)
			}
		})
	}
	if u := e.UnknownRoles(); len(u) != 1 || !strings.Contains(u[0], "no-such-role") {
		t.Fatalf("UnknownRoles = %v", u)
	}
	if r := e.RolesOf(user("acme", "dave", "sre")); !slices.Equal(r, []string{RoleSecOps}) {
		t.Fatalf("RolesOf = %v", r)
	}

	all, ns := e.AllowedNamespaces(alice, "create", "OriginPool")
	if all || !slices.Equal(ns, []string{"retail", "shop"}) {
		t.Fatalf("AllowedNamespaces(alice) = %v %v", all, ns)
	}
	all, ns = e.AllowedNamespaces(user("acme", "bob"), "get", "OriginPool")
	if all || !slices.Equal(ns, []string{"dev"}) {
		t.Fatalf("AllowedNamespaces(bob) = %v %v", all, ns)
	}
	if all, _ := e.AllowedNamespaces(ci, "get", "OriginPool"); !all {
		t.Fatal("AllowedNamespaces(ci) not all")
	}
	if all, ns := e.AllowedNamespaces(user("globex", "alice"), "get", "OriginPool"); all || len(ns) != 0 {
		t.Fatal("other tenant got namespaces")
	}
}

func TestSystemTenantManagesTenants(t *testing.T) {
	b := []Binding{{Name: "root", Role: RoleAdmin, Subjects: []Subject{{SubjectUser, "root"}}},
		{Name: "v", Role: RoleViewer, Subjects: []Subject{{SubjectUser, "v"}}}}
	e := NewEvaluator(SystemTenant, nil, b)
	if ok, why := e.Allowed(user(SystemTenant, "root"), "create", KindTenant, ""); !ok {
		t.Fatalf("system admin cannot create tenants: %s", why)
	}
	if ok, _ := e.Allowed(user(SystemTenant, "v"), "get", KindTenant, ""); !ok {
		t.Fatal("system viewer cannot read tenants")
	}
	if ok, _ := e.Allowed(user(SystemTenant, "v"), "create", KindTenant, ""); ok {
		t.Fatal("system viewer can create tenants")
	}
	if ok, _ := Allowed(user("acme", "root"), "create", KindTenant, "", nil, []Binding{b[0]}); ok {
		t.Fatal("tenant admin can create tenants")
	}
}

func TestValidateRoleAndBinding(t *testing.T) {
	good := Role{Name: "r", Rules: []Rule{{Verbs: []string{"get"}, Kinds: []string{"Site"}}}}
	if err := ValidateRole(good); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []Role{
		{Name: RoleViewer},
		{Name: "r", Rules: []Rule{{Kinds: []string{"Site"}}}},
		{Name: "r", Rules: []Rule{{Verbs: []string{"nuke"}, Kinds: []string{"Site"}}}},
		{Name: "r", Rules: []Rule{{Verbs: []string{"get"}}}},
		{Name: "r", Rules: []Rule{{Verbs: []string{"get"}, Kinds: []string{"*"}, ExceptKinds: []string{"*"}}}},
		{Name: "r", Rules: []Rule{{Verbs: []string{"get"}, Kinds: []string{"Site"}, Namespaces: []string{""}}}},
	} {
		if err := ValidateRole(bad); err == nil {
			t.Errorf("ValidateRole(%+v) = nil", bad)
		}
	}
	if err := ValidateBinding(Binding{Role: "r", Subjects: []Subject{{SubjectGroup, "g"}}}); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []Binding{
		{Subjects: []Subject{{SubjectUser, "u"}}},
		{Role: "r"},
		{Role: "r", Subjects: []Subject{{"Robot", "u"}}},
		{Role: "r", Subjects: []Subject{{SubjectUser, ""}}},
	} {
		if err := ValidateBinding(bad); err == nil {
			t.Errorf("ValidateBinding(%+v) = nil", bad)
		}
	}
	for _, r := range BuiltinRoles() {
		for i, rule := range r.Rules {
			if err := ValidateRule(rule); err != nil {
				t.Errorf("built-in %s rule %d: %v", r.Name, i, err)
			}
		}
	}
}

func TestBuiltinRolesMarkdown(t *testing.T) {
	md := BuiltinRolesMarkdown()
	for _, r := range BuiltinRoles() {
		if !strings.Contains(md, "| `"+r.Name+"` |") {
			t.Errorf("markdown lacks role %s", r.Name)
		}
	}
	if !strings.Contains(md, "except User, APIToken") {
		t.Errorf("markdown lacks viewer exclusions:\n%s", md)
	}
}

func BenchmarkAuthorize(b *testing.B) {
	var bindings []Binding
	for i := 0; i < 5000; i++ {
		bindings = append(bindings, Binding{Name: fmt.Sprint("b", i), Role: RoleDeveloper,
			Subjects: []Subject{{SubjectUser, fmt.Sprint("user", i)}}, Namespaces: []string{fmt.Sprint("ns", i%50)}})
	}
	e := NewEvaluator("acme", nil, bindings)
	p := user("acme", "user4321")
	b.ReportAllocs()
	for b.Loop() {
		if !e.Authorize(p, "create", "OriginPool", "ns21").Allowed {
			b.Fatal("denied")
		}
	}
}
