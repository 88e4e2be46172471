package apiserver

import (
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/api/v1/openapi"
	"github.com/meridian-platform/meridian/internal/store/backendtest"
)

// routeNotFound is the message of the 404 of a path the server does not
// route (other 404s name a missing object or feature).
const routeNotFound = "could not find the requested resource"

// TestRoutesAreServed sends every method to every path Routes lists: the
// listed methods are routed (whatever the handler then answers), the
// others are refused with 405. So Routes is the server's real route table.
func TestRoutesAreServed(t *testing.T) {
	e := newEnv(t, backendtest.Bolt)
	e.srv.HandleSubresource("OriginPool", "probe", func(_ context.Context, r SubresourceRequest) (any, error) {
		return map[string]string{"name": r.Object.GetMetadata().Name}, nil
	})
	routes := e.srv.Routes()
	byPath := map[string][]string{}
	for _, r := range routes {
		byPath[r.Path] = append(byPath[r.Path], r.Method)
	}
	for _, want := range []Route{
		{"GET", "/api/v1/namespaces/{namespace}/originpools/{name}/probe"},
		{"GET", "/api/v1/namespaces/{namespace}/securityevents"},
		{"GET", "/api/v1/securityevents"},
		{"POST", "/api/v1/login"},
		{"HEAD", "/healthz"},
	} {
		if !slices.Contains(routes, want) {
			t.Errorf("Routes lacks %s %s", want.Method, want.Path)
		}
	}
	fill := strings.NewReplacer("{namespace}", "retail", "{name}", "nope")
	for path, methods := range byPath {
		url := fill.Replace(path)
		for _, m := range []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"} {
			var body any
			if m == "POST" || m == "PUT" || m == "PATCH" {
				body = "{}"
			}
			r := e.do(m, url, e.admin, body)
			listed := slices.Contains(methods, m)
			switch {
			case listed && (r.code == http.StatusMethodNotAllowed || r.code == http.StatusNotFound && strings.Contains(r.status().Message, routeNotFound)):
				t.Errorf("%s %s (listed by Routes) is not routed: %d %s", m, url, r.code, r.body)
			case !listed && r.code != http.StatusMethodNotAllowed:
				t.Errorf("%s %s (not listed by Routes for %s) answered %d, want 405: %s", m, url, path, r.code, r.body)
			}
		}
	}
}

// TestRoutesDocumented fails when a route of the server is missing from the
// OpenAPI document it serves, or the document describes an operation the
// server does not route (other than the console's subresources, which this
// server does not mount; internal/console checks those).
func TestRoutesDocumented(t *testing.T) {
	srv := newServer(t, backendtest.Bolt(t))
	doc, err := openapi.Generate()
	if err != nil {
		t.Fatal(err)
	}
	missing, extra, err := CompareRoutes(doc, srv.Routes())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range missing {
		t.Errorf("%s %s is served but not in the OpenAPI document", r.Method, r.Path)
	}
	for _, r := range extra {
		segs := strings.Split(r.Path, "/")
		if r.Method == "GET" && len(segs) > 2 && segs[len(segs)-2] == "{name}" {
			continue // a subresource the console mounts
		}
		t.Errorf("the OpenAPI document describes %s %s, which is not served", r.Method, r.Path)
	}
	// The type filter of security events takes the values the server
	// accepts.
	var d struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(doc, &d); err != nil {
		t.Fatal(err)
	}
	type getOp struct {
		Parameters []struct {
			Name   string `json:"name"`
			Schema struct {
				Enum []string `json:"enum"`
			} `json:"schema"`
		} `json:"parameters"`
	}
	for _, path := range []string{"/api/v1/securityevents", "/api/v1/namespaces/{namespace}/securityevents"} {
		var get getOp
		if err := json.Unmarshal(d.Paths[path]["get"], &get); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		found := false
		for _, p := range get.Parameters {
			if p.Name == "type" {
				found = true
				if !slices.Equal(p.Schema.Enum, eventTypes) {
					t.Errorf("%s: type enum %v, the server accepts %v", path, p.Schema.Enum, eventTypes)
				}
			}
		}
		if !found {
			t.Errorf("%s: no type parameter", path)
		}
	}
}

func TestCompareRoutes(t *testing.T) {
	doc := []byte(`{"paths":{"/a":{"parameters":[],"get":{},"post":{}},"/b/{name}":{"delete":{}}}}`)
	missing, extra, err := CompareRoutes(doc, []Route{{"GET", "/a"}, {"PUT", "/a"}, {"GET", "/c"}})
	if err != nil {
		t.Fatal(err)
	}
	if want := []Route{{"PUT", "/a"}, {"GET", "/c"}}; !slices.Equal(missing, want) {
		t.Errorf("missing = %v, want %v", missing, want)
	}
	if want := []Route{{"POST", "/a"}, {"DELETE", "/b/{name}"}}; !slices.Equal(extra, want) {
		t.Errorf("extra = %v, want %v", extra, want)
	}
	if _, _, err := CompareRoutes([]byte("not json"), nil); err == nil {
		t.Error("no error for a document that is not JSON")
	}
}

// TestOpenAPIAnswerSchemas: the schemas the OpenAPI document writes by
// hand for this package's request and answer types have exactly their JSON
// fields.
func TestOpenAPIAnswerSchemas(t *testing.T) {
	doc, err := openapi.Generate()
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Components struct {
			Schemas map[string]struct {
				Properties map[string]json.RawMessage `json:"properties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(doc, &d); err != nil {
		t.Fatal(err)
	}
	for name, typ := range map[string]reflect.Type{
		"LoginRequest":      reflect.TypeFor[LoginRequest](),
		"LoginResponse":     reflect.TypeFor[LoginResponse](),
		"WhoAmI":            reflect.TypeFor[WhoAmI](),
		"AccessReview":      reflect.TypeFor[AccessReview](),
		"RotateKeyResponse": reflect.TypeFor[RotateKeyResponse](),
		"ListMeta":          reflect.TypeFor[ListMeta](),
		"APIStatus":         reflect.TypeFor[Status](),
	} {
		var want, got []string
		for _, f := range v1.JSONFields(typ) {
			want = append(want, f.Name)
		}
		for p := range d.Components.Schemas[name].Properties {
			got = append(got, p)
		}
		slices.Sort(want)
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("schema %s has properties %v; %s encodes %v", name, got, typ, want)
		}
	}
}
