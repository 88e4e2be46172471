package openapi

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/meridian-platform/meridian/api/v1"
)

var update = flag.Bool("update", false, "rewrite testdata/openapi.golden.json")

func generate(t *testing.T) (raw []byte, doc map[string]any) {
	t.Helper()
	raw, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("output is not JSON: %v", err)
	}
	return raw, doc
}

func TestGenerateCoversEveryKind(t *testing.T) {
	_, doc := generate(t)
	if doc["openapi"] != "3.1.0" {
		t.Fatalf("openapi = %v", doc["openapi"])
	}
	schemas := doc["components"].(map[string]any)["schemas"].(map[string]any)
	paths := doc["paths"].(map[string]any)
	for _, ki := range v1.Kinds() {
		s, ok := schemas[ki.Kind].(map[string]any)
		if !ok {
			t.Errorf("no schema for %s", ki.Kind)
			continue
		}
		props := s["properties"].(map[string]any)
		for _, p := range []string{"apiVersion", "kind", "metadata", "spec", "status"} {
			if _, ok := props[p]; !ok {
				t.Errorf("%s schema lacks %s", ki.Kind, p)
			}
		}
		if props["kind"].(map[string]any)["const"] != ki.Kind {
			t.Errorf("%s: kind const = %v", ki.Kind, props["kind"])
		}
		if _, ok := schemas[ki.Kind+"List"]; !ok {
			t.Errorf("no list schema for %s", ki.Kind)
		}
		coll := "/api/v1/" + ki.Plural
		if ki.Scope == v1.ScopeNamespaced {
			if _, ok := paths[coll].(map[string]any)["get"]; !ok {
				t.Errorf("%s: no all-namespaces list", ki.Kind)
			}
			coll = "/api/v1/namespaces/{namespace}/" + ki.Plural
		}
		want := map[string][]string{
			coll:                      {"get", "post"},
			coll + "/{name}":          {"get", "put", "patch", "delete"},
			coll + "/{name}/history":  {"get"},
			coll + "/{name}/rollback": {"post"},
		}
		for path, methods := range want {
			item, ok := paths[path].(map[string]any)
			if !ok {
				t.Errorf("%s: no path %s", ki.Kind, path)
				continue
			}
			for _, m := range methods {
				if _, ok := item[m]; !ok {
					t.Errorf("%s: no %s %s", ki.Kind, strings.ToUpper(m), path)
				}
			}
		}
	}
	for _, p := range []string{"/api/v1/login", "/api/v1/whoami", "/api/v1/accessreviews", "/api/v1/auditrecords", "/api/v1/audit/verify", "/api/v1/openapi.json", "/healthz"} {
		if _, ok := paths[p]; !ok {
			t.Errorf("no path %s", p)
		}
	}
}

func TestGenerateSchemaDetails(t *testing.T) {
	_, doc := generate(t)
	schemas := doc["components"].(map[string]any)["schemas"].(map[string]any)
	if s := schemas["Secret"].(map[string]any); s["writeOnly"] != true || s["type"] != "string" {
		t.Errorf("Secret schema = %v", s)
	}
	if s := schemas["Duration"].(map[string]any); s["type"] != "string" || s["pattern"] == nil {
		t.Errorf("Duration schema = %v", s)
	}
	user := schemas["UserSpec"].(map[string]any)["properties"].(map[string]any)
	if user["password"].(map[string]any)["$ref"] != "#/components/schemas/Secret" {
		t.Errorf("UserSpec.password = %v", user["password"])
	}
	sp := schemas["ServicePolicySpec"].(map[string]any)["properties"].(map[string]any)
	if enum, _ := sp["mode"].(map[string]any)["enum"].([]any); len(enum) != 2 || enum[0] != "enforce" {
		t.Errorf("ServicePolicySpec.mode = %v", sp["mode"])
	}
	rule := schemas["RoleRule"].(map[string]any)
	verbs := rule["properties"].(map[string]any)["verbs"].(map[string]any)
	if verbs["type"] != "array" || verbs["items"].(map[string]any)["enum"] == nil {
		t.Errorf("RoleRule.verbs = %v", verbs)
	}
	if req := rule["required"].([]any); len(req) != 2 || req[0] != "verbs" || req[1] != "kinds" {
		t.Errorf("RoleRule required = %v", req)
	}
	meta := schemas["ObjectMeta"].(map[string]any)["properties"].(map[string]any)
	if meta["uid"].(map[string]any)["readOnly"] != true || meta["creationTimestamp"].(map[string]any)["format"] != "date-time" {
		t.Errorf("ObjectMeta = %v", meta)
	}
	// Every $ref resolves.
	raw, _ := json.Marshal(doc)
	var walk func(v any)
	walk = func(v any) {
		switch n := v.(type) {
		case map[string]any:
			if r, ok := n["$ref"].(string); ok {
				parts := strings.Split(strings.TrimPrefix(r, "#/components/"), "/")
				comp := doc["components"].(map[string]any)[parts[0]].(map[string]any)
				if _, ok := comp[parts[1]]; !ok {
					t.Errorf("dangling $ref %s", r)
				}
			}
			for _, e := range n {
				walk(e)
			}
		case []any:
			for _, e := range n {
				walk(e)
			}
		}
	}
	walk(doc)
	if bytes.Contains(raw, []byte(`"parameters":null`)) {
		t.Error("null parameters in output")
	}
	// operationIds are unique.
	ids := map[string]string{}
	for path, item := range doc["paths"].(map[string]any) {
		for m, o := range item.(map[string]any) {
			op, ok := o.(map[string]any)
			if !ok || m == "parameters" {
				continue
			}
			id := op["operationId"].(string)
			if other, dup := ids[id]; dup {
				t.Errorf("operationId %s used by %s and %s %s", id, other, m, path)
			}
			ids[id] = m + " " + path
		}
	}
}

func TestGenerateGolden(t *testing.T) {
	raw, _ := generate(t)
	again, _ := generate(t)
	if !bytes.Equal(raw, again) {
		t.Fatal("output is not deterministic")
	}
	checkGolden(t, "openapi.golden.json", raw)
}

func TestEnumTableFieldsExist(t *testing.T) {
	_, doc := generate(t)
	schemas := doc["components"].(map[string]any)["schemas"].(map[string]any)
	for key, vals := range enumTable() {
		typ, field, _ := strings.Cut(key, ".")
		s, ok := schemas[typ].(map[string]any)
		if !ok {
			t.Errorf("enum table: no schema %s", typ)
			continue
		}
		p, ok := s["properties"].(map[string]any)[field].(map[string]any)
		if !ok {
			t.Errorf("enum table: %s has no field %s", typ, field)
			continue
		}
		if enum, _ := p["enum"].([]any); len(enum) != len(vals) {
			t.Errorf("%s: enum = %v, want %v", key, p["enum"], vals)
		}
	}
}

func TestGenerateDescriptions(t *testing.T) {
	_, doc := generate(t)
	schemas := doc["components"].(map[string]any)["schemas"].(map[string]any)
	desc := func(v any) string { s, _ := v.(map[string]any)["description"].(string); return s }
	if d := desc(schemas["ServicePolicy"]); !strings.HasPrefix(d, "ServicePolicy is an ordered list") || !strings.Contains(d, "Short names: sp.") {
		t.Errorf("ServicePolicy description = %q", d)
	}
	props := schemas["ServicePolicySpec"].(map[string]any)["properties"].(map[string]any)
	if d := desc(props["defaultAction"]); !strings.HasPrefix(d, "defaultAction applies when no rule matches") {
		t.Errorf("defaultAction description = %q", d)
	}
	// Promoted fields are described by the struct that declares them.
	if d := desc(schemas["SiteStatus"].(map[string]any)["properties"].(map[string]any)["rollout"]); !strings.Contains(d, "applied") {
		t.Errorf("SiteStatus.rollout description = %q", d)
	}
}

func TestReferenceGolden(t *testing.T) {
	raw, err := Reference()
	if err != nil {
		t.Fatal(err)
	}
	for _, ki := range v1.Kinds() {
		if !bytes.Contains(raw, []byte("\n## "+ki.Kind+"\n")) {
			t.Errorf("no section for %s", ki.Kind)
		}
	}
	for _, want := range []string{"| `spec.rules[].match.clientCIDRs` | list of string |", "| `spec.password` | secret (write-only) |",
		"| `spec.endpoints[].address` | string | yes |", "| `status.tokenHash` |"} {
		if !bytes.Contains(raw, []byte(want)) {
			t.Errorf("reference lacks %q", want)
		}
	}
	checkGolden(t, "kinds.golden.md", raw)
}

// checkGolden compares raw with testdata/name, or rewrites it with -update.
func checkGolden(t *testing.T, name string, raw []byte) {
	t.Helper()
	golden := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(golden, raw, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./api/v1/openapi -update)", err)
	}
	if !bytes.Equal(raw, want) {
		t.Errorf("output differs from %s; if the change is intended, run: go test ./api/v1/openapi -update", golden)
	}
}
