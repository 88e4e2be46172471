package v1

import (
	"strings"
	"testing"
	"time"
)

// validationCase mutates a valid object and expects an error on field.
type validationCase struct {
	name   string
	mutate func(Object)
	field  string
	reason string
}

// checkValidation checks that base (after defaults) is valid, and that each
// case makes it invalid with an error naming the field.
func checkValidation(t *testing.T, base func() Object, cases []validationCase) {
	t.Helper()
	obj := base()
	DefaultObject(obj)
	if errs := ValidateObject(obj); errs != nil {
		t.Fatalf("valid %T rejected: %v", obj, errs)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			obj := base()
			DefaultObject(obj)
			tc.mutate(obj)
			errs := ValidateObject(obj)
			for _, e := range errs {
				if e.Field == tc.field && (tc.reason == "" || e.Reason == tc.reason) {
					return
				}
			}
			t.Errorf("want error on %s (%s), got %v", tc.field, tc.reason, errs)
		})
	}
}

func env(kind, ns, name string) Envelope {
	return Envelope{TypeMeta: TypeMeta{APIVersion: APIVersion, Kind: kind}, Metadata: ObjectMeta{Name: name, Namespace: ns}}
}

func TestMetadataValidation(t *testing.T) {
	base := func() Object { return &Namespace{Envelope: env("Namespace", "", "retail")} }
	nsd := func() Object {
		return &RateLimiter{Envelope: env("RateLimiter", "retail", "rl"), Spec: RateLimiterSpec{Rate: 1}}
	}
	checkValidation(t, base, []validationCase{
		{"no name", func(o Object) { o.GetMetadata().Name = "" }, "metadata.name", ReasonRequired},
		{"upper-case name", func(o Object) { o.GetMetadata().Name = "Retail" }, "metadata.name", ReasonInvalid},
		{"long name", func(o Object) { o.GetMetadata().Name = strings.Repeat("a", 64) }, "metadata.name", ReasonInvalid},
		{"trailing dash", func(o Object) { o.GetMetadata().Name = "a-" }, "metadata.name", ReasonInvalid},
		{"namespace on tenant kind", func(o Object) { o.GetMetadata().Namespace = "x" }, "metadata.namespace", ReasonForbidden},
		{"bad label key", func(o Object) { o.GetMetadata().Labels = map[string]string{"a b": "x"} }, "metadata.labels[a b]", ReasonInvalid},
		{"bad label value", func(o Object) { o.GetMetadata().Labels = map[string]string{"app": "-x"} }, "metadata.labels[app]", ReasonInvalid},
		{"bad annotation key", func(o Object) { o.GetMetadata().Annotations = map[string]string{"/x": ""} }, "metadata.annotations[/x]", ReasonInvalid},
		{"big annotations", func(o Object) {
			o.GetMetadata().Annotations = map[string]string{"a": strings.Repeat("x", MaxAnnotationsBytes)}
		}, "metadata.annotations", ReasonTooLong},
		{"wrong apiVersion", func(o Object) { o.GetTypeMeta().APIVersion = "v1" }, "apiVersion", ReasonNotSupported},
		{"wrong kind", func(o Object) { o.GetTypeMeta().Kind = "User" }, "kind", ReasonInvalid},
	})
	checkValidation(t, nsd, []validationCase{
		{"namespace required", func(o Object) { o.GetMetadata().Namespace = "" }, "metadata.namespace", ReasonRequired},
		{"bad namespace", func(o Object) { o.GetMetadata().Namespace = "a_b" }, "metadata.namespace", ReasonInvalid},
	})
}

func TestTenantValidation(t *testing.T) {
	base := func() Object { return &Tenant{Envelope: env("Tenant", "", "acme")} }
	obj := base().(*Tenant)
	DefaultObject(obj)
	if obj.Spec.Limits.RequestsPerSecond != DefaultTenantRequestsPerSecond || obj.Spec.Limits.Burst != 2*DefaultTenantRequestsPerSecond {
		t.Fatalf("defaults: %+v", obj.Spec.Limits)
	}
	checkValidation(t, base, []validationCase{
		{"negative rate", func(o Object) { o.(*Tenant).Spec.Limits.RequestsPerSecond = -1 }, "spec.limits.requestsPerSecond", ReasonInvalid},
		{"huge burst", func(o Object) { o.(*Tenant).Spec.Limits.Burst = 1 << 40 }, "spec.limits.burst", ReasonInvalid},
		{"long display name", func(o Object) { o.(*Tenant).Spec.DisplayName = strings.Repeat("x", 2000) }, "spec.displayName", ReasonTooLong},
	})
}

func TestUserValidation(t *testing.T) {
	base := func() Object {
		return &User{Envelope: env("User", "", "alice"), Spec: UserSpec{Password: "correct horse"}}
	}
	checkValidation(t, base, []validationCase{
		{"short password", func(o Object) { o.(*User).Spec.Password = "short" }, "spec.password", ReasonInvalid},
		{"long password", func(o Object) { o.(*User).Spec.Password = Secret(strings.Repeat("p", 300)) }, "spec.password", ReasonTooLong},
		{"namespaced", func(o Object) { o.GetMetadata().Namespace = "x" }, "metadata.namespace", ReasonForbidden},
	})
	u := base().(*User)
	u.Spec.Password = SecretRedacted
	if errs := ValidateObject(u); errs != nil {
		t.Errorf("redacted password rejected: %v", errs)
	}
	if sf := u.SecretFields(); len(sf) != 1 || sf[0].Field != "spec.password" || sf[0].Value != &u.Spec.Password {
		t.Errorf("SecretFields = %+v", sf)
	}
}

func TestRoleValidation(t *testing.T) {
	base := func() Object {
		return &Role{Envelope: env("Role", "", "pool-editor"), Spec: RoleSpec{Rules: []RoleRule{
			{Verbs: []string{"get", "list"}, Kinds: []string{"*"}},
			{Verbs: []string{"CREATE", "update"}, Kinds: []string{"op", "healthchecks", "auditrecords"}, Namespaces: []string{"retail"}},
		}}}
	}
	r := base().(*Role)
	DefaultObject(r)
	if got := r.Spec.Rules[1].Kinds; got[0] != "OriginPool" || got[1] != "HealthCheck" || got[2] != "AuditRecord" {
		t.Errorf("kinds not canonicalised: %v", got)
	}
	if got := r.Spec.Rules[0].Namespaces; len(got) != 1 || got[0] != "*" {
		t.Errorf("namespaces default = %v", got)
	}
	if r.Spec.Rules[1].Verbs[0] != "create" {
		t.Errorf("verbs not lower-cased: %v", r.Spec.Rules[1].Verbs)
	}
	checkValidation(t, base, []validationCase{
		{"no rules", func(o Object) { o.(*Role).Spec.Rules = nil }, "spec.rules", ReasonRequired},
		{"built-in name", func(o Object) { o.GetMetadata().Name = "admin" }, "metadata.name", ReasonForbidden},
		{"bad verb", func(o Object) { o.(*Role).Spec.Rules[1].Verbs[1] = "steal" }, "spec.rules[1].verbs[1]", ReasonNotSupported},
		{"no verbs", func(o Object) { o.(*Role).Spec.Rules[0].Verbs = nil }, "spec.rules[0].verbs", ReasonRequired},
		{"unknown kind", func(o Object) { o.(*Role).Spec.Rules[1].Kinds[0] = "Pod" }, "spec.rules[1].kinds[0]", ReasonNotSupported},
		{"no kinds", func(o Object) { o.(*Role).Spec.Rules[1].Kinds = nil }, "spec.rules[1].kinds", ReasonRequired},
		{"bad namespace", func(o Object) { o.(*Role).Spec.Rules[1].Namespaces[0] = "Retail" }, "spec.rules[1].namespaces[0]", ReasonInvalid},
	})
}

func TestRoleBindingValidation(t *testing.T) {
	base := func() Object {
		return &RoleBinding{Envelope: env("RoleBinding", "", "ops"), Spec: RoleBindingSpec{
			Role:       "pool-editor",
			Subjects:   []Subject{{Kind: "User", Name: "alice"}, {Kind: "APIToken", Name: "ci"}},
			Namespaces: []string{"retail"},
		}}
	}
	checkValidation(t, base, []validationCase{
		{"no role", func(o Object) { o.(*RoleBinding).Spec.Role = "" }, "spec.role", ReasonRequired},
		{"bad role", func(o Object) { o.(*RoleBinding).Spec.Role = "Admin!" }, "spec.role", ReasonInvalid},
		{"no subjects", func(o Object) { o.(*RoleBinding).Spec.Subjects = nil }, "spec.subjects", ReasonRequired},
		{"bad subject kind", func(o Object) { o.(*RoleBinding).Spec.Subjects[0].Kind = "Group" }, "spec.subjects[0].kind", ReasonNotSupported},
		{"no subject name", func(o Object) { o.(*RoleBinding).Spec.Subjects[1].Name = "" }, "spec.subjects[1].name", ReasonRequired},
		{"duplicate subject", func(o Object) {
			b := o.(*RoleBinding)
			b.Spec.Subjects = append(b.Spec.Subjects, b.Spec.Subjects[0])
		}, "spec.subjects[2]", ReasonDuplicate},
		{"bad namespace", func(o Object) { o.(*RoleBinding).Spec.Namespaces[0] = "*" }, "spec.namespaces[0]", ReasonInvalid},
	})
	b := base().(*RoleBinding)
	refs := b.References()
	if len(refs) != 3 || refs[0] != (Reference{Field: "spec.role", Kind: "Role", Name: "pool-editor"}) ||
		refs[1] != (Reference{Field: "spec.subjects[0].name", Kind: "User", Name: "alice"}) ||
		refs[2] != (Reference{Field: "spec.subjects[1].name", Kind: "APIToken", Name: "ci"}) {
		t.Errorf("References = %+v", refs)
	}
	b.Spec.Role = "viewer"
	if refs := b.References(); len(refs) != 2 {
		t.Errorf("built-in role referenced: %+v", refs)
	}
}

func TestAPITokenValidation(t *testing.T) {
	base := func() Object { return &APIToken{Envelope: env("APIToken", "", "ci")} }
	tok := base().(*APIToken)
	DefaultObject(tok)
	if tok.Spec.Expires == nil || tok.Spec.Expires.Duration != DefaultAPITokenLifetime {
		t.Fatalf("default expiry = %v", tok.Spec.Expires)
	}
	at := time.Now().Add(time.Hour)
	checkValidation(t, base, []validationCase{
		{"both expiries", func(o Object) { o.(*APIToken).Spec.ExpiresAt = &at }, "spec.expiresAt", ReasonForbidden},
		{"zero lifetime", func(o Object) { o.(*APIToken).Spec.Expires = &Duration{} }, "spec.expires", ReasonInvalid},
		{"too long", func(o Object) { o.(*APIToken).Spec.Expires = &Duration{MaxTokenLifetime + 1} }, "spec.expires", ReasonInvalid},
	})
	if sf := tok.SecretFields(); len(sf) != 1 || sf[0].Field != "status.tokenHash" {
		t.Errorf("SecretFields = %+v", sf)
	}
}

func TestAppFirewallValidation(t *testing.T) {
	base := func() Object {
		return &AppFirewall{Envelope: env("AppFirewall", "retail", "shop-waf"), Spec: AppFirewallSpec{
			Exclusions:  []WAFExclusion{{RuleIDs: []int{942100}, Path: "/search"}, {Tags: []string{"attack-sqli"}, Host: "*.example.com", ArgName: "q"}},
			CustomRules: `SecRule ARGS "@contains x" "id:1,deny"`,
		}}
	}
	a := base().(*AppFirewall)
	DefaultObject(a)
	if a.Spec.Mode != "block" || a.Spec.ParanoiaLevel != 1 || a.Spec.AnomalyThreshold != (AnomalyThreshold{5, 4}) ||
		a.Spec.DetectionParanoiaLevel != 1 || a.Spec.RequestBody.Limit != DefaultWAFBodyLimit || len(a.Spec.RequestBody.Processors) != 4 ||
		a.Spec.BlockResponse.Status != 403 || a.Spec.ResponseInspection.Enabled {
		t.Fatalf("defaults: %+v", a.Spec)
	}
	checkValidation(t, base, []validationCase{
		{"bad mode", func(o Object) { o.(*AppFirewall).Spec.Mode = "learn" }, "spec.mode", ReasonNotSupported},
		{"paranoia 5", func(o Object) { o.(*AppFirewall).Spec.ParanoiaLevel = 5 }, "spec.paranoiaLevel", ReasonInvalid},
		{"inbound 0", func(o Object) { o.(*AppFirewall).Spec.AnomalyThreshold.Inbound = -1 }, "spec.anomalyThreshold.inbound", ReasonInvalid},
		{"outbound huge", func(o Object) { o.(*AppFirewall).Spec.AnomalyThreshold.Outbound = 1 << 20 }, "spec.anomalyThreshold.outbound", ReasonInvalid},
		{"empty exclusion", func(o Object) { o.(*AppFirewall).Spec.Exclusions[1] = WAFExclusion{Path: "/x"} }, "spec.exclusions[1]", ReasonRequired},
		{"bad rule id", func(o Object) { o.(*AppFirewall).Spec.Exclusions[0].RuleIDs = []int{1, 0} }, "spec.exclusions[0].ruleIds[1]", ReasonInvalid},
		{"bad path", func(o Object) { o.(*AppFirewall).Spec.Exclusions[0].Path = "search" }, "spec.exclusions[0].path", ReasonInvalid},
		{"bad host", func(o Object) { o.(*AppFirewall).Spec.Exclusions[1].Host = "a b" }, "spec.exclusions[1].host", ReasonInvalid},
		{"bad tag", func(o Object) { o.(*AppFirewall).Spec.Exclusions[1].Tags = []string{"a b"} }, "spec.exclusions[1].tags[0]", ReasonInvalid},
		{"bad arg", func(o Object) { o.(*AppFirewall).Spec.Exclusions[1].ArgName = "a\"b" }, "spec.exclusions[1].argName", ReasonInvalid},
		{"huge rules", func(o Object) { o.(*AppFirewall).Spec.CustomRules = strings.Repeat("x", MaxCustomRulesBytes+1) }, "spec.customRules", ReasonTooLong},
		{"detection below blocking", func(o Object) {
			o.(*AppFirewall).Spec.ParanoiaLevel, o.(*AppFirewall).Spec.DetectionParanoiaLevel = 3, 2
		}, "spec.detectionParanoiaLevel", ReasonInvalid},
		{"body limit", func(o Object) { o.(*AppFirewall).Spec.RequestBody.Limit = MaxWAFBodyLimit + 1 }, "spec.requestBody.limit", ReasonInvalid},
		{"on limit", func(o Object) { o.(*AppFirewall).Spec.RequestBody.OnLimit = "truncate" }, "spec.requestBody.onLimit", ReasonNotSupported},
		{"processor", func(o Object) { o.(*AppFirewall).Spec.RequestBody.Processors = []string{"json", "yaml"} }, "spec.requestBody.processors[1]", ReasonNotSupported},
		{"duplicate processor", func(o Object) { o.(*AppFirewall).Spec.RequestBody.Processors = []string{"xml", "xml"} }, "spec.requestBody.processors[1]", ReasonDuplicate},
		{"mime type", func(o Object) {
			o.(*AppFirewall).Spec.ResponseInspection = WAFResponseInspection{Enabled: true, MimeTypes: []string{"html"}}
		}, "spec.responseInspection.mimeTypes[0]", ReasonInvalid},
		{"block status", func(o Object) { o.(*AppFirewall).Spec.BlockResponse.Status = 200 }, "spec.blockResponse.status", ReasonInvalid},
		{"block body", func(o Object) { o.(*AppFirewall).Spec.BlockResponse.Body = strings.Repeat("x", MaxWAFBlockBody+1) }, "spec.blockResponse.body", ReasonTooLong},
	})
}

func TestServicePolicyValidation(t *testing.T) {
	yes := true
	base := func() Object {
		return &ServicePolicy{Envelope: env("ServicePolicy", "retail", "block-bad-ips"), Spec: ServicePolicySpec{Rules: []ServicePolicyRule{
			{Name: "deny-scanners", Action: "deny", Match: ServicePolicyMatch{ClientCIDRs: []string{"203.0.113.0/24", "2001:db8::/32", "198.51.100.7"}}},
			{Name: "admin-only-vpn", Action: "deny", Match: ServicePolicyMatch{PathPrefix: "/admin", NotClientCIDRs: []string{"10.0.0.0/8"}}},
			{Name: "old", Action: "redirect", RedirectURL: "https://new.example.com/", Match: ServicePolicyMatch{
				Hosts: []string{"old.example.com", "*.old.example.com"}, PathRegex: `^/v1/.*$`, Methods: []string{"get"},
				Headers:     []ValueMatcher{{Name: "x-env", Exact: "prod"}, {Name: "x-debug", Present: &yes}},
				QueryParams: []ValueMatcher{{Name: "id", Regex: `^[0-9]+$`}},
			}},
			{Name: "rest", Action: "allow"},
		}}}
	}
	p := base().(*ServicePolicy)
	DefaultObject(p)
	if p.Spec.Mode != "enforce" || p.Spec.DefaultAction != "next" || p.Spec.Algorithm != "firstMatch" ||
		p.Spec.Rules[0].Status != 403 || p.Spec.Rules[2].Status != 302 || p.Spec.Rules[2].Match.Methods[0] != "GET" {
		t.Fatalf("defaults: %+v", p.Spec)
	}
	sp := func(o Object) *ServicePolicySpec { return &o.(*ServicePolicy).Spec }
	checkValidation(t, base, []validationCase{
		{"bad mode", func(o Object) { sp(o).Mode = "audit" }, "spec.mode", ReasonNotSupported},
		{"bad default", func(o Object) { sp(o).DefaultAction = "drop" }, "spec.defaultAction", ReasonNotSupported},
		{"bad algorithm", func(o Object) { sp(o).Algorithm = "random" }, "spec.algorithm", ReasonNotSupported},
		{"no rule name", func(o Object) { sp(o).Rules[1].Name = "" }, "spec.rules[1].name", ReasonRequired},
		{"duplicate rule name", func(o Object) { sp(o).Rules[3].Name = "old" }, "spec.rules[3].name", ReasonDuplicate},
		{"bad action", func(o Object) { sp(o).Rules[0].Action = "drop" }, "spec.rules[0].action", ReasonNotSupported},
		{"bad deny status", func(o Object) { sp(o).Rules[0].Status = 200 }, "spec.rules[0].status", ReasonInvalid},
		{"allow status", func(o Object) { sp(o).Rules[3].Status = 200 }, "spec.rules[3].status", ReasonForbidden},
		{"bad redirect status", func(o Object) { sp(o).Rules[2].Status = 305 }, "spec.rules[2].status", ReasonNotSupported},
		{"missing redirect URL", func(o Object) { sp(o).Rules[2].RedirectURL = "" }, "spec.rules[2].redirectURL", ReasonRequired},
		{"bad redirect URL", func(o Object) { sp(o).Rules[2].RedirectURL = "ftp://x" }, "spec.rules[2].redirectURL", ReasonInvalid},
		{"protocol-relative redirect", func(o Object) { sp(o).Rules[2].RedirectURL = "//evil.example" }, "spec.rules[2].redirectURL", ReasonInvalid},
		{"redirect URL on deny", func(o Object) { sp(o).Rules[0].RedirectURL = "/x" }, "spec.rules[0].redirectURL", ReasonForbidden},
		{"bad CIDR", func(o Object) { sp(o).Rules[0].Match.ClientCIDRs[1] = "10.0.0.0/33" }, "spec.rules[0].match.clientCIDRs[1]", ReasonInvalid},
		{"host bits", func(o Object) { sp(o).Rules[0].Match.ClientCIDRs[0] = "10.0.0.1/8" }, "spec.rules[0].match.clientCIDRs[0]", ReasonInvalid},
		{"bad not CIDR", func(o Object) { sp(o).Rules[1].Match.NotClientCIDRs[0] = "vpn" }, "spec.rules[1].match.notClientCIDRs[0]", ReasonInvalid},
		{"bad regex", func(o Object) { sp(o).Rules[2].Match.PathRegex = "([" }, "spec.rules[2].match.pathRegex", ReasonInvalid},
		{"two paths", func(o Object) { sp(o).Rules[2].Match.PathExact = "/v1" }, "spec.rules[2].match", ReasonForbidden},
		{"bad path", func(o Object) { sp(o).Rules[1].Match.PathPrefix = "admin" }, "spec.rules[1].match.pathPrefix", ReasonInvalid},
		{"bad host", func(o Object) { sp(o).Rules[2].Match.Hosts[1] = "a..b" }, "spec.rules[2].match.hosts[1]", ReasonInvalid},
		{"bad method", func(o Object) { sp(o).Rules[2].Match.Methods[0] = "GE T" }, "spec.rules[2].match.methods[0]", ReasonInvalid},
		{"header without name", func(o Object) { sp(o).Rules[2].Match.Headers[0].Name = "" }, "spec.rules[2].match.headers[0].name", ReasonRequired},
		{"bad header name", func(o Object) { sp(o).Rules[2].Match.Headers[0].Name = "x env" }, "spec.rules[2].match.headers[0].name", ReasonInvalid},
		{"header two matchers", func(o Object) { sp(o).Rules[2].Match.Headers[1].Exact = "1" }, "spec.rules[2].match.headers[1]", ReasonForbidden},
		{"bad query regex", func(o Object) { sp(o).Rules[2].Match.QueryParams[0].Regex = "a{2,1}" }, "spec.rules[2].match.queryParams[0].regex", ReasonInvalid},
		{"claim without name", func(o Object) { sp(o).Rules[2].Match.Claims = []ValueMatcher{{Exact: "x"}} }, "spec.rules[2].match.claims[0].name", ReasonRequired},
		{"bad claim regex", func(o Object) { sp(o).Rules[2].Match.Claims = []ValueMatcher{{Name: "sub", Regex: "("}} }, "spec.rules[2].match.claims[0].regex", ReasonInvalid},
		{"bad sni", func(o Object) { sp(o).Rules[2].Match.SNI = []string{"a b"} }, "spec.rules[2].match.sni[0]", ReasonInvalid},
	})
}

func TestRateLimiterValidation(t *testing.T) {
	base := func() Object {
		return &RateLimiter{Envelope: env("RateLimiter", "retail", "per-client"), Spec: RateLimiterSpec{Rate: 10}}
	}
	r := base().(*RateLimiter)
	DefaultObject(r)
	if r.Spec.Burst != 10 || r.Spec.Per != "second" || r.Spec.Key.Type != "clientIP" {
		t.Fatalf("defaults: %+v", r.Spec)
	}
	rs := func(o Object) *RateLimiterSpec { return &o.(*RateLimiter).Spec }
	checkValidation(t, base, []validationCase{
		{"zero rate", func(o Object) { rs(o).Rate = 0 }, "spec.rate", ReasonInvalid},
		{"negative burst", func(o Object) { rs(o).Burst = -1 }, "spec.burst", ReasonInvalid},
		{"bad per", func(o Object) { rs(o).Per = "day" }, "spec.per", ReasonNotSupported},
		{"bad key", func(o Object) { rs(o).Key.Type = "cookie" }, "spec.key.type", ReasonNotSupported},
		{"header without name", func(o Object) { rs(o).Key.Type = "header" }, "spec.key.name", ReasonRequired},
		{"bad header name", func(o Object) { rs(o).Key = RateLimitKey{Type: "header", Name: "x y"} }, "spec.key.name", ReasonInvalid},
		{"claim without name", func(o Object) { rs(o).Key.Type = "jwtClaim" }, "spec.key.name", ReasonRequired},
		{"name on clientIP", func(o Object) { rs(o).Key.Name = "x" }, "spec.key.name", ReasonForbidden},
	})
}

func TestVirtualSiteValidation(t *testing.T) {
	base := func() Object {
		return &VirtualSite{Envelope: env("VirtualSite", "", "stations-eu"), Spec: VirtualSiteSpec{Selector: LabelSelector{
			MatchLabels: map[string]string{"region": "eu"},
			MatchExpressions: []LabelSelectorRequirement{
				{Key: "tier", Operator: "In", Values: []string{"edge", "store"}},
				{Key: "example.com/retired", Operator: "DoesNotExist"},
			},
		}}}
	}
	me := func(o Object) []LabelSelectorRequirement { return o.(*VirtualSite).Spec.Selector.MatchExpressions }
	checkValidation(t, base, []validationCase{
		{"bad match label", func(o Object) { o.(*VirtualSite).Spec.Selector.MatchLabels["bad key"] = "x" }, "spec.selector.matchLabels[bad key]", ReasonInvalid},
		{"bad key", func(o Object) { me(o)[0].Key = "" }, "spec.selector.matchExpressions[0].key", ReasonInvalid},
		{"bad operator", func(o Object) { me(o)[0].Operator = "in" }, "spec.selector.matchExpressions[0].operator", ReasonNotSupported},
		{"In without values", func(o Object) { me(o)[0].Values = nil }, "spec.selector.matchExpressions[0].values", ReasonRequired},
		{"Exists with values", func(o Object) { me(o)[1].Values = []string{"x"} }, "spec.selector.matchExpressions[1].values", ReasonForbidden},
		{"bad value", func(o Object) { me(o)[0].Values[1] = "a b" }, "spec.selector.matchExpressions[0].values[1]", ReasonInvalid},
	})
	vs := base().(*VirtualSite)
	sel, err := vs.Spec.Selector.AsSelector()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := sel.String(), "!example.com/retired,region=eu,tier in (edge,store)"; got != want {
		t.Errorf("selector = %q, want %q", got, want)
	}
	if !sel.Matches(map[string]string{"region": "eu", "tier": "edge"}) || sel.Matches(map[string]string{"region": "eu", "tier": "edge", "example.com/retired": ""}) {
		t.Error("selector matches wrongly")
	}
}

func TestSiteTokenAndSiteValidation(t *testing.T) {
	base := func() Object {
		return &SiteToken{Envelope: env("SiteToken", "", "stations"), Spec: SiteTokenSpec{
			Expires: Duration{72 * time.Hour}, MaxUses: 25000, Labels: map[string]string{"region": "eu"}, AutoApprove: true}}
	}
	st := &SiteToken{Envelope: env("SiteToken", "", "x")}
	DefaultObject(st)
	if st.Spec.Expires.Duration != DefaultSiteTokenLifetime || st.Spec.MaxUses != 1 {
		t.Fatalf("defaults: %+v", st.Spec)
	}
	checkValidation(t, base, []validationCase{
		{"negative uses", func(o Object) { o.(*SiteToken).Spec.MaxUses = -1 }, "spec.maxUses", ReasonInvalid},
		{"too many uses", func(o Object) { o.(*SiteToken).Spec.MaxUses = MaxSiteTokenUses + 1 }, "spec.maxUses", ReasonInvalid},
		{"too long", func(o Object) { o.(*SiteToken).Spec.Expires.Duration = MaxTokenLifetime * 2 }, "spec.expires", ReasonInvalid},
		{"bad label", func(o Object) { o.(*SiteToken).Spec.Labels["region"] = "eu west" }, "spec.labels[region]", ReasonInvalid},
	})
	if sf := st.SecretFields(); len(sf) != 1 || sf[0].Field != "status.tokenHash" {
		t.Errorf("SecretFields = %+v", sf)
	}
	site := func() Object { return &Site{Envelope: env("Site", "", "station-1"), Spec: SiteSpec{Approved: true}} }
	checkValidation(t, site, []validationCase{
		{"long description", func(o Object) { o.(*Site).Spec.Description = strings.Repeat("d", 5000) }, "spec.description", ReasonTooLong},
	})
	s := site().(*Site)
	for _, c := range []struct {
		spec SiteSpec
		want string
	}{{SiteSpec{}, "pending"}, {SiteSpec{Approved: true}, "approved"}, {SiteSpec{Approved: true, Decommissioned: true}, "decommissioned"}} {
		s.Spec = c.spec
		if got := s.Spec.StateOf(); got != c.want {
			t.Errorf("StateOf(%+v) = %s, want %s", c.spec, got, c.want)
		}
	}
}
