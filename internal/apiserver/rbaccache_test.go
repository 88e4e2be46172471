package apiserver

import (
	"testing"

	"github.com/meridian-platform/meridian/internal/store/backendtest"
)

// testRBACCacheRevoke: the tenant's evaluator is cached (no rebuild while
// nothing RBAC-related changes) and a revoke — a deleted binding, a role
// losing a verb, on this console or on another console sharing the store —
// stops working on the very next request.
func testRBACCacheRevoke(t *testing.T, open storeOpener) {
	e := newEnv(t, open)
	other := e.replica()
	tok := e.tenant("acme", "retail")
	viewer := e.token(tok, "viewer", "viewer")
	list := "/api/v1/namespaces/retail/originpools"

	e.must(200, "GET", list, viewer, nil)
	builds := e.srv.rbac.Builds()
	for i := 0; i < 5; i++ {
		e.must(200, "GET", list, viewer, nil)
	}
	if n := e.srv.rbac.Builds() - builds; n != 0 {
		t.Fatalf("%d evaluator builds for 5 requests with no RBAC change", n)
	}
	// Writes of other kinds leave the cache alone.
	e.must(201, "POST", list, tok, pool("retail", "p"))
	builds = e.srv.rbac.Builds()
	e.must(200, "GET", list, viewer, nil)
	if n := e.srv.rbac.Builds() - builds; n != 0 {
		t.Fatalf("%d evaluator builds after a pool write", n)
	}

	// Revoke on this console: the next request is denied.
	other.must(200, "GET", list, viewer, nil) // warm the other console's cache
	e.must(200, "DELETE", "/api/v1/rolebindings/viewer", tok, nil)
	e.must(403, "GET", list, viewer, nil)
	other.must(403, "GET", list, viewer, nil)
	// Granted again, on the other console.
	other.must(201, "POST", "/api/v1/rolebindings", tok, obj("RoleBinding", "", "viewer", map[string]any{
		"role": "viewer", "subjects": []any{map[string]any{"kind": "APIToken", "name": "viewer"}}}))
	e.must(200, "GET", list, viewer, nil)
	other.must(200, "GET", list, viewer, nil)

	// A custom role losing a verb, changed on the other console.
	e.must(201, "POST", "/api/v1/roles", tok, obj("Role", "", "pool-reader", map[string]any{
		"rules": []any{map[string]any{"verbs": []string{"get", "list"}, "kinds": []string{"OriginPool"}}}}))
	reader := e.token(tok, "reader", "pool-reader")
	e.must(200, "GET", list, reader, nil)
	other.must(200, "GET", list, reader, nil)
	other.must(200, "PATCH", "/api/v1/roles/pool-reader", tok,
		`{"spec":{"rules":[{"verbs":["get"],"kinds":["OriginPool"]}]}}`)
	e.must(403, "GET", list, reader, nil)
	other.must(403, "GET", list, reader, nil)
	e.must(200, "GET", list+"/p", reader, nil)

	// The binding's subject changed (PUT) on one console: the old subject
	// loses, the new gains, on both.
	cur := e.must(200, "GET", "/api/v1/rolebindings/reader", tok, nil).obj()
	cur["spec"].(map[string]any)["subjects"] = []any{map[string]any{"kind": "APIToken", "name": "viewer"}}
	e.must(200, "PUT", "/api/v1/rolebindings/reader", tok, cur)
	other.must(403, "GET", list+"/p", reader, nil)
	e.must(403, "GET", list+"/p", reader, nil)

	// whoami and access reviews answer from the same (fresh) evaluator.
	e.must(200, "DELETE", "/api/v1/rolebindings/viewer", tok, nil)
	if r := other.must(200, "GET", "/api/v1/whoami", viewer, nil).obj(); len(r["roles"].([]any)) != 1 {
		t.Fatalf("whoami after revoke: %v", r)
	}
}

func TestRBACCacheRevokeOnBolt(t *testing.T) { testRBACCacheRevoke(t, backendtest.Bolt) }
