package v1

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

const multiDoc = `---
# a leading separator and comments are fine
apiVersion: meridian/v1
kind: Namespace
metadata: {name: retail}
---
---
apiVersion: meridian/v1
kind: OriginPool
metadata:
  name: shop
  namespace: retail
  labels: {app: shop}
spec:
  endpoints:
    - address: 127.0.0.1:9000
      weight: 2
  healthCheck: {http: {path: /healthz, expectedStatus: [200]}, interval: 5s, timeout: 1s}
--- # third
apiVersion: meridian/v1
kind: AppFirewall
metadata: {name: shop-waf, namespace: retail}
spec:
  mode: monitor
  customRules: |
    SecRule ARGS "@contains attack" "id:1001,phase:2,deny"
    ---
  exclusions: [{ruleIds: [942100], path: /search}]
`

func TestDecodeAllYAML(t *testing.T) {
	objs, err := DecodeAll([]byte(multiDoc))
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 3 {
		t.Fatalf("got %d objects, want 3", len(objs))
	}
	ns, ok := objs[0].(*Namespace)
	if !ok || ns.Metadata.Name != "retail" {
		t.Fatalf("first object = %#v", objs[0])
	}
	op, ok := objs[1].(*OriginPool)
	if !ok || op.Spec.Endpoints[0].Weight != 2 || op.Spec.HealthCheck.Interval.Seconds() != 5 || op.Metadata.Labels["app"] != "shop" {
		t.Fatalf("second object = %#v", objs[1])
	}
	afw, ok := objs[2].(*AppFirewall)
	if !ok || afw.Spec.Mode != "monitor" || afw.Spec.Exclusions[0].RuleIDs[0] != 942100 || !strings.Contains(afw.Spec.CustomRules, "    ---") && !strings.Contains(afw.Spec.CustomRules, "---") {
		t.Fatalf("third object = %#v", objs[2])
	}
	for _, o := range objs {
		DefaultObject(o)
		if errs := ValidateObject(o); errs != nil {
			t.Errorf("%s: %v", o.GetTypeMeta().Kind, errs)
		}
	}
}

func TestDecodeAllJSON(t *testing.T) {
	tests := []struct {
		name  string
		input string
		kinds []string
	}{
		{"object", `{"apiVersion":"meridian/v1","kind":"Namespace","metadata":{"name":"a"}}`, []string{"Namespace"}},
		{"array", `[{"apiVersion":"meridian/v1","kind":"Namespace","metadata":{"name":"a"}},
			{"apiVersion":"meridian/v1","kind":"User","metadata":{"name":"alice"},"spec":{"disabled":true}}]`, []string{"Namespace", "User"}},
		{"list", `{"apiVersion":"meridian/v1","kind":"NamespaceList","metadata":{"resourceVersion":"7"},"items":[
			{"apiVersion":"meridian/v1","kind":"Namespace","metadata":{"name":"a"}},
			{"apiVersion":"meridian/v1","kind":"Namespace","metadata":{"name":"b"}}]}`, []string{"Namespace", "Namespace"}},
		{"stream", `{"apiVersion":"meridian/v1","kind":"Namespace","metadata":{"name":"a"}}
			{"apiVersion":"meridian/v1","kind":"Tenant","metadata":{"name":"acme"}}`, []string{"Namespace", "Tenant"}},
		{"yaml list", "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: meridian/v1, kind: Role, metadata: {name: r}, spec: {rules: []}}\n", []string{"Role"}},
		{"yaml flow", "{apiVersion: meridian/v1, kind: Namespace, metadata: {name: a}}", []string{"Namespace"}},
		{"empty", "  \n# nothing\n", nil},
		{"empty list", `{"kind":"List","items":[]}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs, err := DecodeAll([]byte(tt.input))
			if err != nil {
				t.Fatal(err)
			}
			var kinds []string
			for _, o := range objs {
				kinds = append(kinds, o.GetTypeMeta().Kind)
			}
			if strings.Join(kinds, ",") != strings.Join(tt.kinds, ",") {
				t.Fatalf("kinds = %v, want %v", kinds, tt.kinds)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	const ns = "apiVersion: meridian/v1\nkind: Namespace\nmetadata: {name: a}\n"
	tests := []struct {
		name  string
		input string
		doc   int
		item  int
		field string
		want  string
	}{
		{"unknown field", "apiVersion: meridian/v1\nkind: HTTPLoadBalancer\nmetadata: {name: a, namespace: b}\nspec:\n  routes:\n  - {pool: a}\n  - {pool: b}\n  - {pool: c, timeoutt: 5s}\n",
			1, 0, "spec.routes[2].timeoutt", "unknown field"},
		{"wrong type", "apiVersion: meridian/v1\nkind: OriginPool\nmetadata: {name: a, namespace: b}\nspec:\n  endpoints:\n  - {address: 'a:1', weight: heavy}\n",
			1, 0, "spec.endpoints[0].weight", "expected integer, got string"},
		{"float for int", `{"apiVersion":"meridian/v1","kind":"RateLimiter","metadata":{"name":"a","namespace":"b"},"spec":{"rate":1.5}}`,
			1, 0, "spec.rate", "expected integer, got number 1.5"},
		{"int out of range", `{"apiVersion":"meridian/v1","kind":"RateLimiter","metadata":{"name":"a","namespace":"b"},"spec":{"rate":99999999999999999999}}`,
			1, 0, "spec.rate", "out of range"},
		{"bad duration", "apiVersion: meridian/v1\nkind: SiteToken\nmetadata: {name: a}\nspec: {expires: soon}\n",
			1, 0, "spec.expires", "invalid duration"},
		{"duration number", "apiVersion: meridian/v1\nkind: SiteToken\nmetadata: {name: a}\nspec: {expires: 5}\n",
			1, 0, "spec.expires", "must be a string"},
		{"bad time", `{"apiVersion":"meridian/v1","kind":"APIToken","metadata":{"name":"a"},"spec":{"expiresAt":"tomorrow"}}`,
			1, 0, "spec.expiresAt", "parsing time"},
		{"case typo", "apiVersion: meridian/v1\nkind: Namespace\nmetadata: {Name: a}\n",
			1, 0, "metadata.Name", `did you mean "name"`},
		{"labels not a map", "apiVersion: meridian/v1\nkind: Namespace\nmetadata: {name: a, labels: [x]}\n",
			1, 0, "metadata.labels", "expected object, got array"},
		{"label value type", "apiVersion: meridian/v1\nkind: Namespace\nmetadata: {name: a, labels: {x: [1]}}\n",
			1, 0, "metadata.labels[x]", "expected string, got array"},
		{"secret type", "apiVersion: meridian/v1\nkind: User\nmetadata: {name: a}\nspec: {password: {x: 1}}\n",
			1, 0, "spec.password", "expected string, got object"},
		{"third document", ns + "---\n" + ns + "---\n" + "apiVersion: meridian/v1\nkind: Namespace\nmetadata: {name: a}\nspec: {color: red}\n",
			3, 0, "spec.color", "unknown field"},
		{"missing apiVersion", "kind: Namespace\nmetadata: {name: a}\n", 1, 0, "apiVersion", "required"},
		{"missing kind", "apiVersion: meridian/v1\nmetadata: {name: a}\n", 1, 0, "kind", "required"},
		{"wrong apiVersion", "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n", 1, 0, "apiVersion", "unsupported value"},
		{"unknown kind", "apiVersion: meridian/v1\nkind: Pod\nmetadata: {name: a}\n", 1, 0, "kind", `unknown kind "Pod"`},
		{"kind alias", "apiVersion: meridian/v1\nkind: originpool\nmetadata: {name: a}\n", 1, 0, "kind", `did you mean "OriginPool"`},
		{"kind not string", "apiVersion: meridian/v1\nkind: 5\n", 1, 0, "kind", "expected string, got integer"},
		{"array item", `[{"apiVersion":"meridian/v1","kind":"Namespace","metadata":{"name":"a"}},{"apiVersion":"meridian/v1","kind":"Namespace","metadata":{"name":"b","x":1}}]`,
			1, 2, "metadata.x", "unknown field"},
		{"not an object", "- 1\n- 2\n", 1, 1, "", "expected an object, got integer"},
		{"scalar document", "hello\n", 1, 0, "", "expected an object, got string"},
		{"bad yaml", ns + "---\nkind: [\n", 2, 0, "", "invalid YAML"},
		{"duplicate key", "apiVersion: meridian/v1\nkind: Namespace\nkind: Namespace\n", 1, 0, "", "invalid YAML"},
		{"duplicate json key", `{"apiVersion":"meridian/v1","kind":"Namespace","metadata":{"name":"a","name":"b"}}`, 1, 0, "metadata.name", "duplicate field"},
		{"bad json", `{"apiVersion": "meridian/v1",, }`, 1, 0, "", "invalid JSON at line 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeAll([]byte(tt.input))
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("error = %v, want *DecodeError", err)
			}
			if de.Document != tt.doc || de.Item != tt.item {
				t.Errorf("document %d item %d, want %d item %d (%v)", de.Document, de.Item, tt.doc, tt.item, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
			if tt.field != "" {
				found := false
				for _, fe := range de.FieldErrors() {
					if fe.Field == tt.field {
						found = true
					}
				}
				if !found {
					t.Errorf("no error for field %s in %v", tt.field, err)
				}
				if !strings.Contains(err.Error(), tt.field+": ") {
					t.Errorf("error %q does not name %s", err, tt.field)
				}
			}
		})
	}
}

func TestDecodeErrorLine(t *testing.T) {
	in := "apiVersion: meridian/v1\nkind: Namespace\nmetadata: {name: a}\n---\n\napiVersion: meridian/v1\nkind: Namespace\nmetadata: {name: b, bad: 1}\n"
	_, err := DecodeAll([]byte(in))
	var de *DecodeError
	if !errors.As(err, &de) || de.Line != 6 || de.Kind != "Namespace" || de.Name != "b" {
		t.Fatalf("err = %v (%+v)", err, de)
	}
	if want := `document 2 (line 6) (Namespace "b"): metadata.bad: unknown field`; err.Error() != want {
		t.Errorf("err = %q, want %q", err, want)
	}
}

func TestDecodeSingle(t *testing.T) {
	obj, err := Decode([]byte(`{"apiVersion":"meridian/v1","kind":"Tenant","metadata":{"name":"acme"},"spec":{"limits":{"requestsPerSecond":5}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if tn := obj.(*Tenant); tn.Spec.Limits.RequestsPerSecond != 5 {
		t.Fatalf("tenant = %+v", tn)
	}
	if _, err := Decode([]byte("")); err == nil {
		t.Error("empty input decoded")
	}
	two := "apiVersion: meridian/v1\nkind: Namespace\nmetadata: {name: a}\n---\napiVersion: meridian/v1\nkind: Namespace\nmetadata: {name: b}\n"
	if _, err := Decode([]byte(two)); err == nil || !strings.Contains(err.Error(), "exactly one") {
		t.Errorf("two objects: err = %v", err)
	}
}

func TestDecodeSizeLimits(t *testing.T) {
	big := make([]byte, MaxDecodeBytes+1)
	if _, err := DecodeAll(big); err == nil || !strings.Contains(err.Error(), "limit") {
		t.Errorf("oversize input: err = %v", err)
	}
	obj := map[string]any{"apiVersion": APIVersion, "kind": "AppFirewall",
		"metadata": map[string]any{"name": "a", "namespace": "b"},
		"spec":     map[string]any{"customRules": strings.Repeat("x", MaxObjectBytes)}}
	raw, _ := json.Marshal(obj)
	if _, err := DecodeAll(raw); err == nil || !strings.Contains(err.Error(), "more than the limit") {
		t.Errorf("oversize object: err = %v", err)
	}
}

func TestDecodeStatusAndSecrets(t *testing.T) {
	obj, err := Decode([]byte(`{"apiVersion":"meridian/v1","kind":"APIToken","metadata":{"name":"ci"},
		"spec":{"expires":"1h"},"status":{"token":"abc","tokenHash":"h","conditions":[{"type":"Ready","status":"True"}]}}`))
	if err != nil {
		t.Fatal(err)
	}
	tok := obj.(*APIToken)
	if tok.Status.Token != "abc" || len(tok.Status.Conditions) != 1 {
		t.Fatalf("status not decoded: %+v", tok.Status)
	}
	ResetStatus(tok)
	if tok.Status.Token != "" || tok.Status.TokenHash != "" || tok.Status.Conditions != nil {
		t.Fatalf("status not reset: %+v", tok.Status)
	}
	if tok.Spec.Expires.Hours() != 1 {
		t.Fatalf("spec lost: %+v", tok.Spec)
	}
}

func TestDecodeYAMLErrorLine(t *testing.T) {
	in := "apiVersion: meridian/v1\nkind: Namespace\nmetadata: {name: a}\n---\napiVersion: meridian/v1\nkind: Namespace\nmetadata: [\n"
	_, err := DecodeAll([]byte(in))
	var de *DecodeError
	if !errors.As(err, &de) || de.Document != 2 || de.Line != 5 {
		t.Fatalf("err = %v (%+v)", err, de)
	}
	if !strings.Contains(err.Error(), "line 8") && !strings.Contains(err.Error(), "line 7") {
		t.Errorf("error %q does not give the line in the whole input", err)
	}
}

func TestEveryKindZeroValue(t *testing.T) {
	for _, ki := range Kinds() {
		obj, _ := New(ki.Kind)
		obj.GetMetadata().Name = "x"
		if ki.Scope == ScopeNamespaced {
			obj.GetMetadata().Namespace = "ns"
		}
		DefaultObject(obj)
		_ = ValidateObject(obj) // must not panic
		if r, ok := obj.(Referrer); ok {
			_ = r.References()
		}
		raw, err := json.Marshal(obj)
		if err != nil {
			t.Fatalf("%s: %v", ki.Kind, err)
		}
		back, err := Decode(raw)
		if err != nil {
			t.Fatalf("%s: zero object does not decode: %v\n%s", ki.Kind, err, raw)
		}
		if back.GetTypeMeta().Kind != ki.Kind {
			t.Fatalf("%s decoded as %s", ki.Kind, back.GetTypeMeta().Kind)
		}
	}
}

func BenchmarkDecodeJSON(b *testing.B) {
	raw := []byte(`{"apiVersion":"meridian/v1","kind":"ServicePolicy","metadata":{"name":"p","namespace":"retail","labels":{"app":"shop"}},
		"spec":{"rules":[{"name":"a","action":"deny","match":{"clientCIDRs":["10.0.0.0/8"],"pathPrefix":"/admin","headers":[{"name":"x","exact":"1"}]}}]}}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(raw); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeYAML(b *testing.B) {
	raw := []byte(multiDoc)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeAll(raw); err != nil {
			b.Fatal(err)
		}
	}
}
