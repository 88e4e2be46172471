package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/internal/store"
	"github.com/meridian-platform/meridian/internal/testcert"
)

func testCRUDMetadataDefaultsGeneration(t *testing.T, open storeOpener) {
	e := newEnv(t, open)
	tok := e.tenant("acme", "retail")
	base := "/api/v1/namespaces/retail/originpools"

	p := pool("retail", "shop")
	p["status"] = map[string]any{"rollout": "client says hi"}
	p["metadata"].(map[string]any)["uid"] = "client-uid"
	p["metadata"].(map[string]any)["tenant"] = "other"
	r := e.must(201, "POST", base, tok, p)
	o := r.obj()
	if get(o, "metadata.uid") == "client-uid" || get(o, "metadata.uid") == "" {
		t.Fatalf("uid not set by console: %v", get(o, "metadata.uid"))
	}
	if get(o, "metadata.tenant") != "acme" || get(o, "metadata.generation") != 1.0 || get(o, "metadata.creationTimestamp") == nil {
		t.Fatalf("metadata: %s", r.body)
	}
	if get(o, "status.rollout") != nil {
		t.Fatalf("client status accepted: %s", r.body)
	}
	if get(o, "spec.loadBalancing") != "roundRobin" {
		t.Fatalf("defaults not applied: %s", r.body)
	}
	rv := get(o, "metadata.resourceVersion").(string)

	g := e.must(200, "GET", base+"/shop", tok, nil).obj()
	if get(g, "metadata.resourceVersion") != rv || get(g, "spec.loadBalancing") != "roundRobin" {
		t.Fatalf("get: %v", g)
	}

	// Label-only patch: no generation bump.
	r = e.must(200, "PATCH", base+"/shop", tok, `{"metadata":{"labels":{"app":"shop"}}}`)
	if get(r.obj(), "metadata.generation") != 1.0 || get(r.obj(), "metadata.labels.app") != "shop" {
		t.Fatalf("label patch: %s", r.body)
	}
	// Spec patch: bump.
	r = e.must(200, "PATCH", base+"/shop", tok, `{"spec":{"loadBalancing":"random"}}`)
	if get(r.obj(), "metadata.generation") != 2.0 || get(r.obj(), "metadata.uid") != get(o, "metadata.uid") {
		t.Fatalf("spec patch: %s", r.body)
	}
	// Update without resourceVersion: unconditional.
	u := pool("retail", "shop")
	r = e.must(200, "PUT", base+"/shop", tok, u)
	if get(r.obj(), "metadata.generation") != 3.0 || get(r.obj(), "metadata.labels") != nil {
		t.Fatalf("put: %s", r.body)
	}
	// Stale resourceVersion: 409.
	u["metadata"].(map[string]any)["resourceVersion"] = rv
	r = e.must(409, "PUT", base+"/shop", tok, u)
	if r.status().Reason != v1.StatusReasonConflict {
		t.Fatalf("stale update: %s", r.body)
	}
	// Current resourceVersion: accepted.
	u["metadata"].(map[string]any)["resourceVersion"] = get(e.must(200, "GET", base+"/shop", tok, nil).obj(), "metadata.resourceVersion")
	e.must(200, "PUT", base+"/shop", tok, u)
	// Duplicate create.
	r = e.must(409, "POST", base, tok, pool("retail", "shop"))
	if r.status().Reason != v1.StatusReasonAlreadyExists {
		t.Fatalf("dup: %s", r.body)
	}
	// Delete, then 404.
	e.must(200, "DELETE", base+"/shop", tok, nil)
	r = e.must(404, "GET", base+"/shop", tok, nil)
	if st := r.status(); st.Reason != v1.StatusReasonNotFound || st.Kind != "Status" || st.APIVersion != "meridian/v1" || st.Message != `OriginPool "shop" not found` {
		t.Fatalf("404 body: %s", r.body)
	}
}

func testReferences(t *testing.T, open storeOpener) {
	e := newEnv(t, open)
	tok := e.tenant("acme", "retail")
	ns := "/api/v1/namespaces/retail/"
	e.must(201, "POST", ns+"originpools", tok, pool("retail", "shop-api"))
	e.must(201, "POST", ns+"originpools", tok, pool("retail", "shop"))
	r := e.must(422, "POST", ns+"httploadbalancers", tok, lb("retail", "shop", "shop", "shop-api", "shop-ap"))
	st := r.status()
	want := `spec.routes[2].pool: OriginPool "shop-ap" not found in namespace "retail"`
	if st.Reason != v1.StatusReasonInvalid || !strings.Contains(st.Message, want) || len(st.Details.Causes) != 1 ||
		st.Details.Causes[0].Field != "spec.routes[2].pool" || st.Details.Causes[0].Error() != want {
		t.Fatalf("dangling ref: %s", r.body)
	}
	e.must(201, "POST", ns+"httploadbalancers", tok, lb("retail", "shop", "shop", "shop-api"))
	r = e.must(409, "DELETE", ns+"originpools/shop-api", tok, nil)
	if !strings.Contains(r.status().Message, `HTTPLoadBalancer "shop" in namespace "retail" (spec.routes[1].pool)`) {
		t.Fatalf("delete referenced: %s", r.body)
	}
	// Dropping the reference frees the pool.
	e.must(200, "PUT", ns+"httploadbalancers/shop", tok, lb("retail", "shop", "shop"))
	e.must(200, "DELETE", ns+"originpools/shop-api", tok, nil)
	// Deleting the referrer frees the rest.
	e.must(200, "DELETE", ns+"httploadbalancers/shop", tok, nil)
	e.must(200, "DELETE", ns+"originpools/shop", tok, nil)
	// Nothing of the indexes is left.
	for _, p := range []string{"/r/acme/originpools/", "/g/acme/originpools/", "/h/acme/originpools/", "/h/acme/httploadbalancers/"} {
		res, err := e.st.List(context.Background(), p, store.ListOptions{})
		if err != nil || len(res.Items) != 0 {
			t.Fatalf("index %s left: %v %v", p, res.Items, err)
		}
	}
}

func testNamespaceRulesAndCascade(t *testing.T, open storeOpener) {
	e := newEnv(t, open)
	tok := e.tenant("acme", "retail", "other")
	r := e.must(404, "POST", "/api/v1/namespaces/missing/originpools", tok, pool("missing", "x"))
	if r.status().Message != `Namespace "missing" not found` {
		t.Fatalf("missing ns: %s", r.body)
	}
	ns := "/api/v1/namespaces/retail/"
	e.must(201, "POST", ns+"originpools", tok, pool("retail", "a"))
	e.must(201, "POST", ns+"originpools", tok, pool("retail", "b"))
	e.must(201, "POST", ns+"httploadbalancers", tok, lb("retail", "shop", "a", "b"))
	r = e.must(409, "DELETE", "/api/v1/namespaces/retail", tok, nil)
	if !strings.Contains(r.status().Message, "is not empty") {
		t.Fatalf("non-empty ns: %s", r.body)
	}
	e.must(200, "DELETE", "/api/v1/namespaces/retail?cascade=true&dryRun=All", tok, nil)
	e.must(200, "GET", ns+"originpools/a", tok, nil)
	e.must(200, "DELETE", "/api/v1/namespaces/retail?cascade=true", tok, nil)
	e.must(404, "GET", "/api/v1/namespaces/retail", tok, nil)
	for _, p := range []string{"/o/acme/originpools/retail/", "/o/acme/httploadbalancers/retail/", "/r/acme/originpools/", "/h/acme/originpools/"} {
		res, _ := e.st.List(context.Background(), p, store.ListOptions{})
		if len(res.Items) != 0 {
			t.Fatalf("cascade left %s: %v", p, res.Items)
		}
	}
	e.must(200, "GET", "/api/v1/namespaces/other", tok, nil)
}

func testDryRun(t *testing.T, open storeOpener) {
	e := newEnv(t, open)
	tok := e.tenant("acme", "retail")
	ns := "/api/v1/namespaces/retail/"
	before, _ := e.st.Revision(context.Background())
	r := e.must(201, "POST", ns+"originpools?dryRun=All", tok, pool("retail", "shop"))
	if get(r.obj(), "spec.loadBalancing") != "roundRobin" {
		t.Fatalf("dry-run answer: %s", r.body)
	}
	e.must(422, "POST", ns+"httploadbalancers?dryRun=true", tok, lb("retail", "x", "shop"))
	after, _ := e.st.Revision(context.Background())
	if before != after {
		t.Fatalf("dry run wrote: revision %d -> %d", before, after)
	}
	e.must(404, "GET", ns+"originpools/shop", tok, nil)
}

func testHistoryAndRollback(t *testing.T, open storeOpener) {
	e := newEnv(t, open, func(o *Options) { o.HistoryLimit = 3 })
	tok := e.tenant("acme", "retail")
	base := "/api/v1/namespaces/retail/originpools/"
	e.must(201, "POST", base[:len(base)-1], tok, pool("retail", "shop"))
	for _, lbm := range []string{"random", "leastRequest", "maglev", "ringHash"} {
		e.must(200, "PATCH", base+"shop", tok, fmt.Sprintf(`{"spec":{"loadBalancing":%q}}`, lbm))
	}
	r := e.must(200, "GET", base+"shop/history", tok, nil)
	var l struct {
		Kind  string
		Items []map[string]any
	}
	_ = json.Unmarshal(r.body, &l)
	if l.Kind != "OriginPoolList" || len(l.Items) != 3 || get(l.Items[0], "metadata.generation") != 3.0 || get(l.Items[2], "spec.loadBalancing") != "ringHash" {
		t.Fatalf("history: %s", r.body)
	}
	e.must(404, "POST", base+"shop/rollback", tok, `{"generation":1}`)
	r = e.must(200, "POST", base+"shop/rollback", tok, `{"generation":3}`)
	if get(r.obj(), "spec.loadBalancing") != "leastRequest" || get(r.obj(), "metadata.generation") != 6.0 {
		t.Fatalf("rollback: %s", r.body)
	}
}

func testSecrets(t *testing.T, open storeOpener) {
	e := newEnv(t, open)
	tok := e.tenant("acme", "retail")
	certPEM, keyPEM := testcert.SelfSigned(t, "shop.example.com")
	base := "/api/v1/namespaces/retail/certificates"
	c := obj("Certificate", "retail", "shop", map[string]any{"certificate": certPEM, "privateKey": keyPEM})
	r := e.must(201, "POST", base, tok, c)
	if get(r.obj(), "spec.privateKey") != "(set)" || strings.Contains(string(r.body), "PRIVATE KEY") {
		t.Fatalf("secret returned: %s", r.body)
	}
	kv, err := e.st.Get(context.Background(), "/o/acme/certificates/retail/shop")
	if err != nil || strings.Contains(string(kv.Value), "PRIVATE KEY") || !strings.Contains(string(kv.Value), `"privateKey":"v1:`) {
		t.Fatalf("stored secret not encrypted: %s %v", kv.Value, err)
	}
	stored := func() string {
		kv, _ := e.st.Get(context.Background(), "/o/acme/certificates/retail/shop")
		var m map[string]any
		_ = json.Unmarshal(kv.Value, &m)
		return get(m, "spec.privateKey").(string)
	}
	ct := stored()
	// Writing the redacted value back keeps the ciphertext.
	g := e.must(200, "GET", base+"/shop", tok, nil).obj()
	g["metadata"].(map[string]any)["labels"] = map[string]any{"a": "b"}
	e.must(200, "PUT", base+"/shop", tok, g)
	if stored() != ct {
		t.Fatal("redacted write changed the stored secret")
	}
	// History is redacted too.
	r = e.must(200, "GET", base+"/shop/history", tok, nil)
	if strings.Contains(string(r.body), "v1:") || strings.Contains(string(r.body), "PRIVATE") {
		t.Fatalf("history leaks: %s", r.body)
	}
	// Redacted value on create is refused.
	c2 := obj("Certificate", "retail", "other", map[string]any{"certificate": certPEM, "privateKey": "(set)"})
	e.must(422, "POST", base, tok, c2)

	// Passwords: stored as a slow hash, never returned, login works.
	u := obj("User", "", "alice", map[string]any{"password": "s3cret-password"})
	r = e.must(201, "POST", "/api/v1/users", tok, u)
	if get(r.obj(), "spec.password") != "(set)" {
		t.Fatalf("password shown: %s", r.body)
	}
	kv, _ = e.st.Get(context.Background(), "/o/acme/users/_/alice")
	if strings.Contains(string(kv.Value), "s3cret") || !strings.Contains(string(kv.Value), `"password":"$argon2id$`) {
		t.Fatalf("password not hashed: %s", kv.Value)
	}
	e.must(200, "POST", "/api/v1/login", "", LoginRequest{Tenant: "acme", Username: "alice", Password: "s3cret-password"})
}

func testListPagingSelectorsAndGone(t *testing.T, open storeOpener) {
	e := newEnv(t, open)
	tok := e.tenant("acme", "a", "b")
	for i := 0; i < 7; i++ {
		for _, ns := range []string{"a", "b"} {
			p := pool(ns, fmt.Sprintf("p%d", i))
			p["metadata"].(map[string]any)["labels"] = map[string]any{"tier": []string{"web", "db"}[i%2]}
			e.must(201, "POST", "/api/v1/namespaces/"+ns+"/originpools", tok, p)
		}
	}
	type list struct {
		Kind     string
		Metadata ListMeta
		Items    []map[string]any
	}
	var all []string
	cont := ""
	pages := 0
	var rev string
	for {
		path := "/api/v1/originpools?limit=4"
		if cont != "" {
			path += "&continue=" + cont
		}
		var l list
		_ = json.Unmarshal(e.must(200, "GET", path, tok, nil).body, &l)
		if rev == "" {
			rev = l.Metadata.ResourceVersion
		} else if rev != l.Metadata.ResourceVersion {
			t.Fatalf("pages read at different revisions: %s vs %s", rev, l.Metadata.ResourceVersion)
		}
		pages++
		for _, it := range l.Items {
			all = append(all, get(it, "metadata.namespace").(string)+"/"+get(it, "metadata.name").(string))
		}
		if pages == 1 {
			// A write between pages is not seen by later pages.
			e.must(201, "POST", "/api/v1/namespaces/b/originpools", tok, pool("b", "zzz"))
		}
		if l.Metadata.Continue == "" {
			break
		}
		cont = l.Metadata.Continue
	}
	if len(all) != 14 || pages != 4 {
		t.Fatalf("paged list: %d items in %d pages: %v", len(all), pages, all)
	}
	var l list
	_ = json.Unmarshal(e.must(200, "GET", "/api/v1/namespaces/a/originpools?labelSelector=tier%3Dweb&limit=2", tok, nil).body, &l)
	if len(l.Items) != 2 || l.Metadata.Continue == "" || l.Kind != "OriginPoolList" {
		t.Fatalf("selector page: %+v", l)
	}
	c2 := l.Metadata.Continue
	l = list{}
	_ = json.Unmarshal(e.must(200, "GET", "/api/v1/namespaces/a/originpools?labelSelector=tier+in+(web)&limit=2&continue="+c2, tok, nil).body, &l)
	if len(l.Items) != 2 || l.Metadata.Continue != "" {
		t.Fatalf("selector page 2: %+v", l)
	}
	r := e.must(400, "GET", "/api/v1/originpools?labelSelector=tier%3D%3D%3D", tok, nil)
	if r.status().Reason != v1.StatusReasonBadRequest {
		t.Fatalf("bad selector: %s", r.body)
	}
	e.must(400, "GET", "/api/v1/originpools?continue=garbage", tok, nil)
	// Compacted revision: 410.
	_ = json.Unmarshal(e.must(200, "GET", "/api/v1/originpools?limit=1", tok, nil).body, &l)
	e.must(201, "POST", "/api/v1/namespaces/a/originpools", tok, pool("a", "later"))
	now, _ := e.st.Revision(context.Background())
	if err := e.st.Compact(context.Background(), now); err != nil {
		t.Fatal(err)
	}
	r = e.must(410, "GET", "/api/v1/originpools?limit=1&continue="+l.Metadata.Continue, tok, nil)
	if r.status().Reason != v1.StatusReasonGone {
		t.Fatalf("gone: %s", r.body)
	}
}

func testBadInput(t *testing.T, open storeOpener) {
	e := newEnv(t, open, func(o *Options) { o.MaxBodyBytes = 4096 })
	tok := e.tenant("acme", "retail")
	base := "/api/v1/namespaces/retail/originpools"
	before, _ := e.st.Revision(context.Background())
	cases := []struct {
		name   string
		method string
		path   string
		body   string
		ct     string
		code   int
		reason string
		field  string
	}{
		{"malformed json", "POST", base, `{"apiVersion":`, "", 400, v1.StatusReasonBadRequest, ""},
		{"unknown field", "POST", base, `{"apiVersion":"meridian/v1","kind":"OriginPool","metadata":{"name":"x"},"spec":{"endpoints":[{"address":"127.0.0.1:1"}],"bogus":1}}`, "", 422, v1.StatusReasonInvalid, "spec.bogus"},
		{"wrong type", "POST", base, `{"apiVersion":"meridian/v1","kind":"OriginPool","metadata":{"name":"x"},"spec":{"endpoints":"no"}}`, "", 422, v1.StatusReasonInvalid, "spec.endpoints"},
		{"invalid name", "POST", base, `{"apiVersion":"meridian/v1","kind":"OriginPool","metadata":{"name":"Not_Valid"},"spec":{"endpoints":[{"address":"127.0.0.1:1"}]}}`, "", 422, v1.StatusReasonInvalid, "metadata.name"},
		{"wrong kind", "POST", base, `{"apiVersion":"meridian/v1","kind":"HealthCheck","metadata":{"name":"x"},"spec":{}}`, "", 400, v1.StatusReasonBadRequest, ""},
		{"namespace mismatch", "POST", base, `{"apiVersion":"meridian/v1","kind":"OriginPool","metadata":{"name":"x","namespace":"other"},"spec":{"endpoints":[{"address":"127.0.0.1:1"}]}}`, "", 400, v1.StatusReasonBadRequest, ""},
		{"too large", "POST", base, `{"apiVersion":"meridian/v1","kind":"OriginPool","metadata":{"name":"x","annotations":{"a":"` + strings.Repeat("x", 5000) + `"}}}`, "", 413, v1.StatusReasonRequestEntityTooLarge, ""},
		{"content type", "POST", base, `{}`, "text/plain", 415, v1.StatusReasonUnsupportedMediaType, ""},
		{"empty body", "POST", base, ``, "", 400, v1.StatusReasonBadRequest, ""},
		{"two objects", "POST", base, `[{"apiVersion":"meridian/v1","kind":"OriginPool","metadata":{"name":"x"}},{"apiVersion":"meridian/v1","kind":"OriginPool","metadata":{"name":"y"}}]`, "", 400, v1.StatusReasonBadRequest, ""},
		{"patch not object", "PATCH", base + "/x", `[1]`, "", 400, v1.StatusReasonBadRequest, ""},
		{"bad url name", "GET", base + "/UPPER", ``, "", 400, v1.StatusReasonBadRequest, ""},
		{"unknown resource", "GET", "/api/v1/widgets", ``, "", 404, v1.StatusReasonNotFound, ""},
		{"method", "PUT", base, `{}`, "", 405, v1.StatusReasonMethodNotAllowed, ""},
		{"get rollback", "GET", base + "/x/rollback", ``, "", 405, v1.StatusReasonMethodNotAllowed, ""},
		{"post history", "POST", base + "/x/history", `{}`, "", 405, v1.StatusReasonMethodNotAllowed, ""},
		{"post with name", "POST", base + "/x", `{}`, "", 405, v1.StatusReasonMethodNotAllowed, ""},
		{"bad limit", "GET", base + "?limit=-1", ``, "", 400, v1.StatusReasonBadRequest, ""},
		{"bad dryRun", "POST", base + "?dryRun=maybe", `{}`, "", 400, v1.StatusReasonBadRequest, ""},
		{"yaml unknown field", "POST", base, "apiVersion: meridian/v1\nkind: OriginPool\nmetadata: {name: yy}\nspec:\n  endpoints: [{address: '127.0.0.1:1'}]\n  bogus: 1\n", "application/yaml", 422, v1.StatusReasonInvalid, "spec.bogus"},
		{"yaml syntax", "POST", base, "apiVersion: meridian/v1\nkind: [\n", "application/yaml", 400, v1.StatusReasonBadRequest, ""},
		{"yaml ok but invalid", "POST", base, "apiVersion: meridian/v1\nkind: OriginPool\nmetadata: {name: y}\nspec: {endpoints: []}\n", "application/yaml", 422, v1.StatusReasonInvalid, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var h []string
			if c.ct != "" {
				h = []string{"Content-Type", c.ct}
			}
			var body any
			if c.body != "" || c.method == "POST" {
				body = c.body
			}
			r := e.do(c.method, c.path, tok, body, h...)
			st := r.status()
			if r.code != c.code || st.Reason != c.reason || st.Code != c.code || st.Message == "" {
				t.Fatalf("got %d %s", r.code, r.body)
			}
			if c.field != "" && (st.Details == nil || len(st.Details.Causes) == 0 || st.Details.Causes[0].Field != c.field) {
				t.Fatalf("causes: %s", r.body)
			}
		})
	}
	after, _ := e.st.Revision(context.Background())
	if before != after {
		t.Fatalf("bad input changed the store: %d -> %d", before, after)
	}
}

func testUpdateStatus(t *testing.T, open storeOpener) {
	e := newEnv(t, open)
	tok := e.tenant("acme", "retail")
	e.must(201, "POST", "/api/v1/namespaces/retail/originpools", tok, pool("retail", "shop"))
	err := e.srv.UpdateStatus(context.Background(), "acme", "OriginPool", "retail", "shop", func(o v1.Object) error {
		o.(*v1.OriginPool).Status.Rollout = "applied 3/3 sites"
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	g := e.must(200, "GET", "/api/v1/namespaces/retail/originpools/shop", tok, nil).obj()
	if get(g, "status.rollout") != "applied 3/3 sites" || get(g, "metadata.generation") != 1.0 {
		t.Fatalf("status: %v", g)
	}
	// A client update keeps the console's status.
	e.must(200, "PATCH", "/api/v1/namespaces/retail/originpools/shop", tok, `{"status":{"rollout":"forged"},"spec":{"loadBalancing":"random"}}`)
	g = e.must(200, "GET", "/api/v1/namespaces/retail/originpools/shop", tok, nil).obj()
	if get(g, "status.rollout") != "applied 3/3 sites" {
		t.Fatalf("client changed status: %v", g)
	}
	err = e.srv.UpdateStatus(context.Background(), "globex", "OriginPool", "retail", "shop", func(v1.Object) error { return nil })
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("other tenant: %v", err)
	}
	if k := ObjectKey("acme", "originpools", "retail", "shop"); k != "/o/acme/originpools/retail/shop" {
		t.Fatal(k)
	}
}

func testSiteTokenFor(t *testing.T, open storeOpener) {
	e := newEnv(t, open)
	tok := e.tenant("acme")
	r := e.must(201, "POST", "/api/v1/sitetokens", tok, obj("SiteToken", "", "eu", map[string]any{"expires": "1h", "maxUses": 5}))
	plain := get(r.obj(), "status.token").(string)
	if get(r.obj(), "status.tokenHash") != "(set)" || get(e.must(200, "GET", "/api/v1/sitetokens/eu", tok, nil).obj(), "status.token") != nil {
		t.Fatalf("site token shown: %s", r.body)
	}
	tenant, st, _, err := e.srv.SiteTokenFor(context.Background(), plain)
	if err != nil || tenant != "acme" || st.Metadata.Name != "eu" || st.Spec.MaxUses != 5 {
		t.Fatalf("lookup: %v %v %+v", tenant, err, st)
	}
	// An API token is not a site token, and a site token is not a bearer token.
	if _, _, _, err := e.srv.SiteTokenFor(context.Background(), tok); !errors.Is(err, ErrInvalidSiteToken) {
		t.Fatalf("api token accepted: %v", err)
	}
	e.must(401, "GET", "/api/v1/whoami", plain, nil)
	e.srv.now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	if _, _, _, err := e.srv.SiteTokenFor(context.Background(), plain); !errors.Is(err, ErrInvalidSiteToken) {
		t.Fatalf("expired site token accepted: %v", err)
	}
	e.srv.now = time.Now
	e.must(200, "DELETE", "/api/v1/sitetokens/eu", tok, nil)
	if _, _, _, err := e.srv.SiteTokenFor(context.Background(), plain); !errors.Is(err, ErrInvalidSiteToken) {
		t.Fatalf("deleted site token accepted: %v", err)
	}
}
