package v1

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestKindsTable(t *testing.T) {
	wantScope := map[string]Scope{
		"OriginPool": ScopeNamespaced, "HealthCheck": ScopeNamespaced, "HTTPLoadBalancer": ScopeNamespaced,
		"TCPLoadBalancer": ScopeNamespaced, "AppFirewall": ScopeNamespaced, "ServicePolicy": ScopeNamespaced,
		"RateLimiter": ScopeNamespaced, "Certificate": ScopeNamespaced, "SecurityBinding": ScopeNamespaced, "NetworkPolicy": ScopeNamespaced,
		"Namespace": ScopeTenant, "User": ScopeTenant, "Role": ScopeTenant, "RoleBinding": ScopeTenant,
		"APIToken": ScopeTenant, "VirtualSite": ScopeTenant, "SiteToken": ScopeTenant, "Site": ScopeTenant, "SiteShare": ScopeTenant,
		"Tenant": ScopeSystem,
	}
	kinds := Kinds()
	if len(kinds) != len(wantScope) {
		t.Fatalf("%d kinds, want %d", len(kinds), len(wantScope))
	}
	names := map[string]string{}
	for _, k := range kinds {
		if wantScope[k.Kind] != k.Scope {
			t.Errorf("%s: scope %d, want %d", k.Kind, k.Scope, wantScope[k.Kind])
		}
		if k.Singular != strings.ToLower(k.Kind) || !strings.HasPrefix(k.Plural, k.Singular[:len(k.Singular)-1]) {
			t.Errorf("%s: singular %q plural %q", k.Kind, k.Singular, k.Plural)
		}
		for _, n := range append([]string{strings.ToLower(k.Kind), k.Plural, k.Singular}, k.ShortNames...) {
			if other, dup := names[n]; dup && other != k.Kind {
				t.Errorf("name %q used by %s and %s", n, other, k.Kind)
			}
			names[n] = k.Kind
		}
		obj := k.New()
		if got := reflect.TypeOf(obj).Elem().Name(); got != k.Kind {
			t.Errorf("%s: New returns %s", k.Kind, got)
		}
		if ki, ok := KindOf(obj); !ok || ki.Kind != k.Kind {
			t.Errorf("KindOf(%s) = %v, %v", k.Kind, ki.Kind, ok)
		}
		st, ok := reflect.TypeOf(obj).Elem().FieldByName("Status")
		if !ok || st.Tag.Get("json") != "status,omitempty" {
			t.Errorf("%s: no status field", k.Kind)
		}
	}
	// Fresh table: changing one copy does not change the next.
	kinds[0].ShortNames[0] = "zzz"
	if Kinds()[0].ShortNames[0] == "zzz" {
		t.Error("Kinds returns shared state")
	}
}

func TestLookupKind(t *testing.T) {
	tests := map[string]string{
		"OriginPool": "OriginPool", "originpools": "OriginPool", "ORIGINPOOL": "OriginPool", "op": "OriginPool",
		"hlb": "HTTPLoadBalancer", "tlb": "TCPLoadBalancer", "hc": "HealthCheck", "afw": "AppFirewall",
		"sp": "ServicePolicy", "rl": "RateLimiter", "cert": "Certificate", "vs": "VirtualSite", "st": "SiteToken",
		"ns": "Namespace", "rb": "RoleBinding", "tok": "APIToken", "apitokens": "APIToken", "sites": "Site",
		"tenants": "Tenant", "Users": "User", "roles": "Role", "servicepolicies": "ServicePolicy",
	}
	for name, want := range tests {
		k, ok := LookupKind(name)
		if !ok || k.Kind != want {
			t.Errorf("LookupKind(%q) = %q, %v; want %q", name, k.Kind, ok, want)
		}
	}
	for _, name := range []string{"", "pods", "o", "origin"} {
		if _, ok := LookupKind(name); ok {
			t.Errorf("LookupKind(%q) found a kind", name)
		}
	}
	obj, ok := New("op")
	if !ok || obj.GetTypeMeta().Kind != "OriginPool" || obj.GetTypeMeta().APIVersion != APIVersion {
		t.Errorf("New(op) = %+v", obj)
	}
}

func TestDeepCopyAndReset(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	yes := true
	orig := &ServicePolicy{Envelope: env("ServicePolicy", "retail", "p"), Spec: ServicePolicySpec{Rules: []ServicePolicyRule{
		{Name: "a", Action: "deny", Match: ServicePolicyMatch{ClientCIDRs: []string{"10.0.0.0/8"}, Headers: []ValueMatcher{{Name: "x", Present: &yes}}}},
	}}, Status: Status{Errors: []string{"e"}, Conditions: []Condition{{Type: "Ready", LastTransitionTime: now}}}}
	orig.Metadata.Labels = map[string]string{"a": "b"}
	orig.Metadata.CreationTimestamp = &now
	cp := DeepCopy(orig).(*ServicePolicy)
	if !reflect.DeepEqual(cp, orig) {
		t.Fatalf("copy differs:\n%+v\n%+v", cp, orig)
	}
	cp.Spec.Rules[0].Match.ClientCIDRs[0] = "x"
	*cp.Spec.Rules[0].Match.Headers[0].Present = false
	cp.Metadata.Labels["a"] = "c"
	*cp.Metadata.CreationTimestamp = now.Add(time.Hour)
	cp.Status.Errors[0] = "f"
	if orig.Spec.Rules[0].Match.ClientCIDRs[0] != "10.0.0.0/8" || !*orig.Spec.Rules[0].Match.Headers[0].Present ||
		orig.Metadata.Labels["a"] != "b" || !orig.Metadata.CreationTimestamp.Equal(now) || orig.Status.Errors[0] != "e" {
		t.Fatal("copy shares memory with the original")
	}
	ResetStatus(orig)
	if !reflect.DeepEqual(orig.Status, Status{}) || len(orig.Spec.Rules) != 1 {
		t.Fatalf("ResetStatus: %+v", orig)
	}
	site := &Site{Status: SiteStatus{State: "approved", Online: true}}
	ResetStatus(site)
	if !reflect.DeepEqual(site.Status, SiteStatus{}) {
		t.Fatalf("ResetStatus(site): %+v", site.Status)
	}
	if DeepCopy(nil) != nil {
		t.Fatal("DeepCopy(nil) != nil")
	}
}

func TestDefaultObjectSetsTypeMeta(t *testing.T) {
	ns := &Namespace{}
	ns.Metadata.Name = "a"
	DefaultObject(ns)
	if ns.APIVersion != APIVersion || ns.Kind != "Namespace" {
		t.Fatalf("type meta = %+v", ns.TypeMeta)
	}
	if errs := ValidateObject(ns); errs != nil {
		t.Fatal(errs)
	}
}

// FuzzDecodeAll: decoding, defaulting and validating never panic, and an
// accepted object re-encodes to JSON that decodes to the same object.
func FuzzDecodeAll(f *testing.F) {
	f.Add([]byte(multiDoc))
	f.Add([]byte(`[{"apiVersion":"meridian/v1","kind":"Namespace","metadata":{"name":"a","labels":{"x":"y"}}}]`))
	f.Add([]byte(`{"kind":"List","items":[{"apiVersion":"meridian/v1","kind":"RateLimiter","metadata":{"name":"a","namespace":"b"},"spec":{"rate":5,"key":{"type":"header","name":"x"}}}]}`))
	f.Add([]byte("apiVersion: meridian/v1\nkind: ServicePolicy\nmetadata: {name: p, namespace: n}\nspec:\n  rules:\n  - {name: a, action: deny, match: {clientCIDRs: [10.0.0.0/8], pathRegex: '^/x', headers: [{name: a, present: true}]}}\n"))
	f.Add([]byte("apiVersion: meridian/v1\nkind: VirtualSite\nmetadata: {name: v}\nspec: {selector: {matchExpressions: [{key: a, operator: In, values: [b]}]}}\n"))
	f.Add([]byte("apiVersion: meridian/v1\nkind: APIToken\nmetadata: {name: t, creationTimestamp: '2026-01-01T00:00:00+01:00'}\nspec: {expiresAt: '2027-01-01T00:00:00Z'}\n"))
	f.Add([]byte("apiVersion: meridian/v1\nkind: HTTPLoadBalancer\nmetadata: {name: a, namespace: b}\nspec:\n  domains: [a.example.com]\n  routes:\n  - {pool: p, timeout: 15s, retries: {attempts: 2, on: [connect-failure, 503]}}\n"))
	f.Add([]byte("apiVersion: meridian/v1\nkind: SiteToken\nmetadata: {name: s}\nspec: {expires: 72h, maxUses: 3, labels: {region: eu}}\n"))
	f.Add([]byte("apiVersion: meridian/v1\nkind: Role\nmetadata: {name: r}\nspec: {rules: [{verbs: ['*'], kinds: [op]}]}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		objs, err := DecodeAll(data)
		if err != nil {
			return
		}
		for _, obj := range objs {
			DefaultObject(obj)
			if errs := ValidateObject(obj); errs != nil {
				continue
			}
			raw, err := json.Marshal(obj)
			if err != nil {
				t.Fatalf("re-encoding accepted %T: %v", obj, err)
			}
			again, err := Decode(raw)
			if err != nil {
				t.Fatalf("re-encoded %T does not decode: %v\n%s", obj, err, raw)
			}
			raw2, err := json.Marshal(again)
			if err != nil {
				t.Fatal(err)
			}
			if string(raw) != string(raw2) {
				t.Fatalf("round trip changed the object:\n%s\n%s", raw, raw2)
			}
			if errs := ValidateObject(again); errs != nil {
				t.Fatalf("re-decoded object no longer valid: %v\n%s", errs, raw)
			}
			if cp := DeepCopy(obj); !reflect.DeepEqual(cp, obj) {
				t.Fatalf("DeepCopy differs for %s", raw)
			}
		}
	})
}
