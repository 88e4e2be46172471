package console_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/meridian-platform/meridian/internal/apiserver"
	"github.com/meridian-platform/meridian/internal/sites/sitestest"
)

// TestOpenAPIDescribesEveryRoute: the OpenAPI document a console serves
// describes every route its REST API answers (the subresources the
// console mounts included) and nothing else.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	e := sitestest.Start(t)
	req := httptest.NewRequest(http.MethodGet, "/api/v1/openapi.json", nil)
	req.Header.Set("Authorization", "Bearer "+e.Token)
	rec := httptest.NewRecorder()
	e.Console.Handler().ServeHTTP(rec, req)
	doc, _ := io.ReadAll(rec.Body)
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /api/v1/openapi.json: %d %s", rec.Code, doc)
	}
	routes := e.Console.Routes()
	missing, extra, err := apiserver.CompareRoutes(doc, routes)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range missing {
		t.Errorf("%s %s is served but not in the OpenAPI document", r.Method, r.Path)
	}
	for _, r := range extra {
		t.Errorf("the OpenAPI document describes %s %s, which the console does not serve", r.Method, r.Path)
	}
	// The console's own subresources are among the routes checked.
	for _, want := range []apiserver.Route{
		{Method: "GET", Path: "/api/v1/sites/{name}/telemetry"},
		{Method: "GET", Path: "/api/v1/namespaces/{namespace}/httploadbalancers/{name}/metrics"},
		{Method: "GET", Path: "/api/v1/namespaces/{namespace}/tcploadbalancers/{name}/metrics"},
	} {
		found := false
		for _, r := range routes {
			found = found || r == want
		}
		if !found {
			t.Errorf("the console does not route %s %s", want.Method, want.Path)
		}
	}
}
