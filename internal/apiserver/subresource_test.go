package apiserver

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/meridian-platform/meridian/internal/store/backendtest"
)

// TestSubresource: a read-only subresource registered by another console
// part answers GET once RBAC allows "get" on the kind in the object's
// namespace and the object exists in the caller's tenant; other verbs,
// other kinds and unknown names are refused.
func TestSubresource(t *testing.T) {
	e := newEnv(t, backendtest.Bolt)
	e.srv.HandleSubresource("OriginPool", "echo", func(_ context.Context, r SubresourceRequest) (any, error) {
		if r.Query.Get("fail") != "" {
			return nil, errors.New("echo failed")
		}
		md := r.Object.GetMetadata()
		return map[string]string{"tenant": r.Tenant, "namespace": md.Namespace, "name": md.Name, "q": r.Query.Get("q")}, nil
	})
	acme := e.tenant("acme", "retail", "other")
	globex := e.tenant("globex", "retail")
	e.must(201, "POST", "/api/v1/namespaces/retail/originpools", acme, pool("retail", "shop"))
	e.must(201, "POST", "/api/v1/namespaces/retail/healthchecks", acme, obj("HealthCheck", "retail", "hc", map[string]any{"http": map[string]any{"path": "/"}}))

	path := "/api/v1/namespaces/retail/originpools/shop/echo"
	got := e.must(http.StatusOK, "GET", path+"?q=x", acme, nil).obj()
	if got["tenant"] != "acme" || got["namespace"] != "retail" || got["name"] != "shop" || got["q"] != "x" {
		t.Fatalf("subresource answer: %v", got)
	}
	for _, c := range []struct {
		method, path, token string
		code                int
	}{
		{"POST", path, acme, http.StatusMethodNotAllowed},
		{"PUT", path, acme, http.StatusMethodNotAllowed},
		{"PATCH", path, acme, http.StatusMethodNotAllowed},
		{"DELETE", path, acme, http.StatusMethodNotAllowed},
		{"GET", "/api/v1/namespaces/retail/originpools/shop/nope", acme, http.StatusNotFound},
		{"GET", "/api/v1/namespaces/retail/healthchecks/hc/echo", acme, http.StatusNotFound},
		{"GET", "/api/v1/namespaces/retail/originpools/missing/echo", acme, http.StatusNotFound},
		// Another tenant has no such object.
		{"GET", path, globex, http.StatusNotFound},
		// A developer bound to another namespace may not get the pool.
		{"GET", path, e.token(acme, "dev", "developer", "other"), http.StatusForbidden},
		{"GET", path + "?fail=1", acme, http.StatusInternalServerError},
		{"GET", path, "", http.StatusUnauthorized},
	} {
		if r := e.do(c.method, c.path, c.token, nil); r.code != c.code {
			t.Errorf("%s %s: %d, want %d: %s", c.method, c.path, r.code, c.code, r.body)
		}
	}
	// A developer of the namespace may.
	e.must(http.StatusOK, "GET", path, e.token(acme, "dev2", "developer", "retail"), nil)
}
