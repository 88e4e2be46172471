package apiserver

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/meridian-platform/meridian/internal/audit"
	"github.com/meridian-platform/meridian/internal/pki"
	"github.com/meridian-platform/meridian/internal/store"
)

// env is a console API over a real bbolt store.
type env struct {
	t     testing.TB
	st    store.Store
	srv   *Server
	hs    *httptest.Server
	admin string // system admin token
	// master is the master key, for a second console on the same store.
	master []byte
}

// replica returns a second console API on the same store and master key,
// as two consoles sharing etcd are.
func (e *env) replica() *env {
	e.t.Helper()
	srv := newServerWithKey(e.t, e.st, e.master)
	hs := httptest.NewServer(srv)
	e.t.Cleanup(hs.Close)
	return &env{t: e.t, st: e.st, srv: srv, hs: hs, admin: e.admin, master: e.master}
}

type envOpt func(*Options)

// storeOpener opens a fresh store for one test.
type storeOpener func(t testing.TB) store.Store

func newEnv(t testing.TB, open storeOpener, opts ...envOpt) *env {
	t.Helper()
	return newEnvOn(t, open(t), opts...)
}

func newEnvOn(t testing.TB, st store.Store, opts ...envOpt) *env {
	t.Helper()
	master := pki.NewMasterKey()
	srv := newServerWithKey(t, st, master, opts...)
	res, err := srv.Bootstrap(context.Background(), BootstrapOptions{AdminPassword: "correct horse battery"})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Created || res.AdminToken == "" {
		t.Fatalf("bootstrap: %+v", res)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	return &env{t: t, st: st, srv: srv, hs: hs, admin: res.AdminToken, master: master}
}

func newServer(t testing.TB, st store.Store, opts ...envOpt) *Server {
	return newServerWithKey(t, st, pki.NewMasterKey(), opts...)
}

func newServerWithKey(t testing.TB, st store.Store, master []byte, opts ...envOpt) *Server {
	t.Helper()
	ctx := context.Background()
	kr, err := pki.NewKeyring(ctx, st, master, pki.MasterKeyID(master))
	if err != nil {
		t.Fatal(err)
	}
	o := Options{
		Store:             st,
		Secrets:           kr,
		Passwords:         testPasswords{},
		Audit:             audit.New(st, kr, audit.Options{}),
		Denials:           audit.NewDenials(100, SystemTenant),
		LoginFailureDelay: 20 * time.Millisecond,
		DefaultRateLimit:  -1,
		BookmarkInterval:  time.Hour,
	}
	for _, f := range opts {
		f(&o)
	}
	srv, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return srv
}

// resp is one answer.
type resp struct {
	code int
	body []byte
	hdr  http.Header
}

func (r resp) status() Status {
	var s Status
	_ = json.Unmarshal(r.body, &s)
	return s
}

func (r resp) obj() map[string]any {
	var m map[string]any
	_ = json.Unmarshal(r.body, &m)
	return m
}

// do sends a request; body may be a string (sent as is), []byte or any
// value (JSON-encoded). hdr are key, value pairs.
func (e *env) do(method, path, token string, body any, hdr ...string) resp {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, e.hs.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if rd != nil {
		ct := "application/json"
		if method == http.MethodPatch {
			ct = "application/merge-patch+json"
		}
		req.Header.Set("Content-Type", ct)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := e.hs.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp{code: res.StatusCode, body: b, hdr: res.Header}
}

// must sends a request and fails the test unless the answer has code.
func (e *env) must(code int, method, path, token string, body any, hdr ...string) resp {
	e.t.Helper()
	r := e.do(method, path, token, body, hdr...)
	if r.code != code {
		e.t.Fatalf("%s %s: got %d, want %d: %s", method, path, r.code, code, r.body)
	}
	return r
}

// tenant creates a tenant with an admin API token and returns the token.
func (e *env) tenant(name string, namespaces ...string) string {
	e.t.Helper()
	e.must(201, "POST", "/api/v1/tenants", e.admin, obj("Tenant", "", name, nil))
	h := []string{"X-Meridian-Tenant", name}
	r := e.must(201, "POST", "/api/v1/apitokens", e.admin, obj("APIToken", "", "ops", nil), h...)
	tok := r.obj()["status"].(map[string]any)["token"].(string)
	e.must(201, "POST", "/api/v1/rolebindings", e.admin, obj("RoleBinding", "", "ops", map[string]any{
		"role": "admin", "subjects": []any{map[string]any{"kind": "APIToken", "name": "ops"}}}), h...)
	for _, ns := range namespaces {
		e.must(201, "POST", "/api/v1/namespaces", tok, obj("Namespace", "", ns, nil))
	}
	return tok
}

// token creates an API token bound to role in tenant (acting as the
// tenant admin tok) and returns it.
func (e *env) token(adminTok, name, role string, namespaces ...string) string {
	e.t.Helper()
	r := e.must(201, "POST", "/api/v1/apitokens", adminTok, obj("APIToken", "", name, nil))
	tok := r.obj()["status"].(map[string]any)["token"].(string)
	spec := map[string]any{"role": role, "subjects": []any{map[string]any{"kind": "APIToken", "name": name}}}
	if len(namespaces) > 0 {
		spec["namespaces"] = namespaces
	}
	e.must(201, "POST", "/api/v1/rolebindings", adminTok, obj("RoleBinding", "", name, spec))
	return tok
}

// obj builds a client object.
func obj(kind, ns, name string, spec any) map[string]any {
	md := map[string]any{"name": name}
	if ns != "" {
		md["namespace"] = ns
	}
	o := map[string]any{"apiVersion": "meridian/v1", "kind": kind, "metadata": md}
	if spec != nil {
		o["spec"] = spec
	}
	return o
}

func pool(ns, name string) map[string]any {
	return obj("OriginPool", ns, name, map[string]any{"endpoints": []any{map[string]any{"address": "127.0.0.1:9000"}}})
}

func lb(ns, name string, pools ...string) map[string]any {
	var routes []any
	for _, p := range pools {
		routes = append(routes, map[string]any{"match": map[string]any{"pathPrefix": "/" + p}, "pool": p})
	}
	return obj("HTTPLoadBalancer", ns, name, map[string]any{
		"domains": []any{"shop.example.com"}, "listeners": []any{map[string]any{"port": 8080}}, "routes": routes})
}

// get returns a nested field of a decoded JSON object ("metadata.name").
func get(m map[string]any, path string) any {
	var cur any = m
	for _, p := range strings.Split(path, ".") {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = mm[p]
	}
	return cur
}
