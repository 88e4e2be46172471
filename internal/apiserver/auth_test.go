package apiserver

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/internal/audit"
	"github.com/meridian-platform/meridian/internal/store"
)

func testAuthentication(t *testing.T, open storeOpener) {
	e := newEnv(t, open, func(o *Options) { o.LoginFailureDelay = 150 * time.Millisecond })
	tok := e.tenant("acme", "retail")
	e.must(200, "GET", "/healthz", "", nil)
	for _, c := range []struct{ name, tok, auth string }{
		{"missing", "", ""},
		{"unknown api token", "mrt_nope", ""},
		{"unknown session", "mrs_nope", ""},
		{"garbage", "garbage", ""},
		{"wrong scheme", "", "Basic YWRtaW46YWRtaW4="},
	} {
		var h []string
		if c.auth != "" {
			h = []string{"Authorization", c.auth}
		}
		r := e.do("GET", "/api/v1/namespaces", c.tok, nil, h...)
		if r.code != 401 || r.status().Reason != v1.StatusReasonUnauthorized || r.status().Message == "" {
			t.Fatalf("%s: %d %s", c.name, r.code, r.body)
		}
	}
	// whoami
	var who WhoAmI
	_ = json.Unmarshal(e.must(200, "GET", "/api/v1/whoami", tok, nil).body, &who)
	if who.Tenant != "acme" || who.Kind != "APIToken" || who.Name != "ops" || len(who.Roles) != 1 || who.Roles[0] != "admin" {
		t.Fatalf("whoami: %+v", who)
	}
	// Login: same answer, at least the delay, for unknown user and wrong password.
	e.must(201, "POST", "/api/v1/users", tok, obj("User", "", "alice", map[string]any{"password": "alice-password"}))
	var bodies []string
	for _, lr := range []LoginRequest{
		{Tenant: "acme", Username: "alice", Password: "wrong-password"},
		{Tenant: "acme", Username: "bob", Password: "wrong-password"},
		{Tenant: "nope", Username: "alice", Password: "wrong-password"},
	} {
		start := time.Now()
		r := e.must(401, "POST", "/api/v1/login", "", lr)
		if d := time.Since(start); d < 150*time.Millisecond {
			t.Fatalf("failed login took only %v", d)
		}
		bodies = append(bodies, string(r.body))
	}
	if bodies[0] != bodies[1] || bodies[1] != bodies[2] {
		t.Fatalf("login failures differ: %q", bodies)
	}
	var lr LoginResponse
	_ = json.Unmarshal(e.must(200, "POST", "/api/v1/login", "", LoginRequest{Tenant: "acme", Username: "alice", Password: "alice-password"}).body, &lr)
	if !strings.HasPrefix(lr.Token, "mrs_") || lr.ExpiresAt.Before(time.Now()) {
		t.Fatalf("login: %+v", lr)
	}
	_ = json.Unmarshal(e.must(200, "GET", "/api/v1/whoami", lr.Token, nil).body, &who)
	if who.Kind != "User" || who.Name != "alice" || len(who.Roles) != 0 {
		t.Fatalf("whoami session: %+v", who)
	}
	// No role: 403.
	r := e.must(403, "GET", "/api/v1/namespaces", lr.Token, nil)
	if r.status().Reason != v1.StatusReasonForbidden {
		t.Fatalf("403: %s", r.body)
	}
	// Disabled user: session stops working.
	e.must(200, "PATCH", "/api/v1/users/alice", tok, `{"spec":{"disabled":true}}`)
	e.must(401, "GET", "/api/v1/whoami", lr.Token, nil)
	// Expired session.
	e.must(200, "PATCH", "/api/v1/users/alice", tok, `{"spec":{"disabled":false}}`)
	_ = json.Unmarshal(e.must(200, "POST", "/api/v1/login", "", LoginRequest{Tenant: "acme", Username: "alice", Password: "alice-password"}).body, &lr)
	e.srv.now = func() time.Time { return time.Now().Add(13 * time.Hour) }
	r = e.must(401, "GET", "/api/v1/whoami", lr.Token, nil)
	if !strings.Contains(r.status().Message, "expired") {
		t.Fatalf("expired session: %s", r.body)
	}
	e.srv.now = time.Now

	// API token: shown once, stored as hash, expiry enforced, delete revokes.
	r = e.must(201, "POST", "/api/v1/apitokens", tok, obj("APIToken", "", "ci", map[string]any{"expires": "1h"}))
	ci := get(r.obj(), "status.token").(string)
	if get(r.obj(), "status.tokenHash") != "(set)" {
		t.Fatalf("token create: %s", r.body)
	}
	g := e.must(200, "GET", "/api/v1/apitokens/ci", tok, nil)
	if strings.Contains(string(g.body), ci) || get(g.obj(), "status.token") != nil {
		t.Fatalf("token shown again: %s", g.body)
	}
	res, _ := e.st.List(context.Background(), "/", store.ListOptions{})
	for _, kv := range res.Items {
		if strings.Contains(string(kv.Value), ci) || strings.Contains(kv.Key, ci) {
			t.Fatalf("plaintext token stored at %s", kv.Key)
		}
	}
	e.must(200, "GET", "/api/v1/whoami", ci, nil)
	if lu := get(e.must(200, "GET", "/api/v1/apitokens/ci", tok, nil).obj(), "status.lastUsed"); lu == nil {
		t.Fatal("lastUsed not recorded")
	}
	e.srv.now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	r = e.must(401, "GET", "/api/v1/whoami", ci, nil)
	if !strings.Contains(r.status().Message, "expired") {
		t.Fatalf("expired token: %s", r.body)
	}
	e.srv.now = time.Now
	e.must(200, "DELETE", "/api/v1/apitokens/ci", tok, nil)
	e.must(401, "GET", "/api/v1/whoami", ci, nil)
}

func testRBAC(t *testing.T, open storeOpener) {
	e := newEnv(t, open)
	tok := e.tenant("acme", "retail", "dev")
	viewer := e.token(tok, "viewer", "viewer")
	e.must(201, "POST", "/api/v1/roles", tok, obj("Role", "", "pool-editor", map[string]any{
		"rules": []any{map[string]any{"verbs": []string{"get", "create"}, "kinds": []string{"op"}, "namespaces": []string{"dev"}}}}))
	editor := e.token(tok, "editor", "pool-editor")

	e.must(200, "GET", "/api/v1/namespaces/retail/originpools", viewer, nil)
	r := e.must(403, "POST", "/api/v1/namespaces/retail/originpools", viewer, pool("retail", "x"))
	if r.status().Message != `APIToken "viewer" may not create OriginPool in namespace "retail"` {
		t.Fatalf("403 message: %s", r.body)
	}
	e.must(201, "POST", "/api/v1/namespaces/dev/originpools", editor, pool("dev", "x"))
	e.must(403, "POST", "/api/v1/namespaces/retail/originpools", editor, pool("retail", "x"))
	e.must(403, "DELETE", "/api/v1/namespaces/dev/originpools/x", editor, nil)
	e.must(403, "GET", "/api/v1/tenants", tok, nil)

	review := func(tk string, ar AccessReview) AccessReview {
		var out AccessReview
		_ = json.Unmarshal(e.must(200, "POST", "/api/v1/accessreviews", tk, ar).body, &out)
		return out
	}
	if !review(editor, AccessReview{Verb: "create", Kind: "originpools", Namespace: "dev"}).Allowed ||
		review(editor, AccessReview{Verb: "create", Kind: "OriginPool", Namespace: "retail"}).Allowed ||
		review(viewer, AccessReview{Verb: "delete", Kind: "OriginPool", Namespace: "dev"}).Allowed {
		t.Fatal("access reviews wrong")
	}
	e.must(422, "POST", "/api/v1/accessreviews", viewer, AccessReview{Verb: "fly", Kind: "Nope"})

	// A binding limited to a namespace: lists across namespaces show only
	// that namespace; the namespace itself is readable.
	e.must(201, "POST", "/api/v1/namespaces/retail/originpools", tok, pool("retail", "r"))
	dev := e.token(tok, "dev", "developer", "dev")
	var l struct{ Items []map[string]any }
	_ = json.Unmarshal(e.must(200, "GET", "/api/v1/originpools", dev, nil).body, &l)
	if len(l.Items) != 1 || get(l.Items[0], "metadata.namespace") != "dev" {
		t.Fatalf("filtered list: %+v", l.Items)
	}
	e.must(200, "GET", "/api/v1/namespaces/dev", dev, nil)
	e.must(403, "GET", "/api/v1/namespaces/retail", dev, nil)
	e.must(403, "GET", "/api/v1/namespaces/retail/originpools", dev, nil)

	// System admin acts in a tenant with X-Meridian-Tenant; others may not.
	e.must(200, "GET", "/api/v1/namespaces/dev/originpools/x", e.admin, nil, "X-Meridian-Tenant", "acme")
	e.must(404, "GET", "/api/v1/namespaces", e.admin, nil, "X-Meridian-Tenant", "nope")
	e.must(403, "GET", "/api/v1/namespaces", tok, nil, "X-Meridian-Tenant", "system")
}

func testAuditRecords(t *testing.T, open storeOpener) {
	e := newEnv(t, open)
	tok := e.tenant("acme", "retail")
	e.must(201, "POST", "/api/v1/namespaces/retail/originpools", tok, pool("retail", "a"))
	e.must(200, "PATCH", "/api/v1/namespaces/retail/originpools/a", tok, `{"spec":{"loadBalancing":"random"}}`)
	e.must(201, "POST", "/api/v1/users", tok, obj("User", "", "alice", map[string]any{"password": "alice-password"}))
	e.must(200, "POST", "/api/v1/login", "", LoginRequest{Tenant: "acme", Username: "alice", Password: "alice-password"})
	var l struct {
		Kind  string
		Items []audit.Record
	}
	_ = json.Unmarshal(e.must(200, "GET", "/api/v1/auditrecords", tok, nil).body, &l)
	verbs := map[string]int{}
	for _, it := range l.Items {
		verbs[it.Verb+" "+it.Kind]++
		if it.Tenant != "acme" || it.Hash == "" || it.Outcome != audit.OutcomeAllowed {
			t.Fatalf("record: %+v", it)
		}
	}
	if l.Kind != "AuditRecordList" || verbs["create OriginPool"] != 1 || verbs["patch OriginPool"] != 1 || verbs["login User"] != 1 ||
		verbs["create APIToken"] != 1 || verbs["create Namespace"] != 1 {
		t.Fatalf("audit records: %v", verbs)
	}
	// Filters.
	_ = json.Unmarshal(e.must(200, "GET", "/api/v1/auditrecords?kind=OriginPool&verb=patch", tok, nil).body, &l)
	if len(l.Items) != 1 || l.Items[0].Name != "a" || l.Items[0].Namespace != "retail" || l.Items[0].Principal != "acme/APIToken/ops" ||
		l.Items[0].BeforeDigest == "" || l.Items[0].AfterDigest == "" || l.Items[0].BeforeDigest == l.Items[0].AfterDigest {
		t.Fatalf("filtered: %+v", l.Items)
	}
	var rep audit.Report
	_ = json.Unmarshal(e.must(200, "POST", "/api/v1/audit/verify", tok, nil).body, &rep)
	if !rep.OK || rep.Records < 5 {
		t.Fatalf("verify: %+v", rep)
	}
	// Denials: a flood of bad tokens is one aggregated record.
	for i := 0; i < 5; i++ {
		e.must(401, "GET", "/api/v1/namespaces", "mrd_bogus", nil)
	}
	e.must(403, "GET", "/api/v1/tenants", tok, nil)
	den := e.srv.opts.Denials.(*audit.Denials)
	if _, err := den.Flush(context.Background(), e.srv.opts.Audit.(*audit.Log), time.Now(), true); err != nil {
		t.Fatal(err)
	}
	_ = json.Unmarshal(e.must(200, "GET", "/api/v1/auditrecords?principal=anonymous", e.admin, nil).body, &l)
	if len(l.Items) != 1 || l.Items[0].Count != 5 || l.Items[0].Outcome != audit.OutcomeDenied {
		t.Fatalf("aggregated denials: %+v", l.Items)
	}
	_ = json.Unmarshal(e.must(200, "GET", "/api/v1/auditrecords?outcome=denied", tok, nil).body, &l)
	if len(l.Items) != 1 || l.Items[0].Principal != "acme/APIToken/ops" || l.Items[0].Kind != "Tenant" {
		t.Fatalf("tenant denials: %+v", l.Items)
	}
	// Tampering with a stored record is found.
	res, err := e.st.List(context.Background(), "", store.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range res.Items {
		if strings.Contains(kv.Key, "/acme/r/") && strings.Contains(string(kv.Value), `"verb":"patch"`) {
			bad := strings.Replace(string(kv.Value), `"verb":"patch"`, `"verb":"get"`, 1)
			if _, err := e.st.Txn(context.Background(), store.Txn{Ops: []store.Op{store.Put(kv.Key, []byte(bad))}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	rep = audit.Report{}
	_ = json.Unmarshal(e.must(200, "POST", "/api/v1/audit/verify", tok, nil).body, &rep)
	if rep.OK || rep.FirstBad == nil {
		t.Fatalf("tampering not found: %+v", rep)
	}
}

func testRateLimit(t *testing.T, open storeOpener) {
	e := newEnv(t, open, func(o *Options) { o.DefaultRateLimit = 1; o.DefaultRateBurst = 3 })
	e.must(201, "POST", "/api/v1/tenants", e.admin, obj("Tenant", "", "slow", map[string]any{"limits": map[string]any{"requestsPerSecond": 1, "burst": 2}}))
	var got429 resp
	for i := 0; i < 10; i++ {
		r := e.do("GET", "/api/v1/namespaces", e.admin, nil, "X-Meridian-Tenant", "slow")
		if r.code == 429 {
			got429 = r
			break
		}
	}
	if got429.code != 429 || got429.hdr.Get("Retry-After") == "" || got429.status().Reason != v1.StatusReasonTooManyRequests {
		t.Fatalf("no 429: %+v", got429)
	}
}

func testOpenAPI(t *testing.T, open storeOpener) {
	e := newEnv(t, open)
	e.must(401, "GET", "/api/v1/openapi.json", "", nil)
	r := e.must(200, "GET", "/api/v1/openapi.json", e.admin, nil)
	var doc map[string]any
	if err := json.Unmarshal(r.body, &doc); err != nil || !strings.HasPrefix(fmt.Sprint(doc["openapi"]), "3.1") {
		t.Fatalf("openapi: %v %.200s", err, r.body)
	}
}
