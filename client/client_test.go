package client

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/meridian-platform/meridian/api/v1"
)

// newTestClient starts a TLS fake console and a client that trusts its
// certificate through CAData, as a CLI context does.
func newTestClient(t *testing.T) (*Client, *fakeConsole) {
	t.Helper()
	fc := newFakeConsole(t, "tok")
	ts := httptest.NewTLSServer(fc)
	t.Cleanup(ts.Close)
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw})
	c, err := New(Config{Server: ts.URL, Token: "tok", CAData: ca})
	if err != nil {
		t.Fatal(err)
	}
	return c, fc
}

func pool(ns, name string, labels map[string]string) *v1.OriginPool {
	p := &v1.OriginPool{}
	p.APIVersion, p.Kind = v1.APIVersion, "OriginPool"
	p.Metadata.Name, p.Metadata.Namespace, p.Metadata.Labels = name, ns, labels
	p.Spec.Endpoints = []v1.OriginEndpoint{{Address: "127.0.0.1:9000", Weight: 1}}
	return p
}

func TestTLSTrustsOnlyTheGivenCA(t *testing.T) {
	ts := httptest.NewUnstartedServer(newFakeConsole(t, "tok"))
	ts.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake is expected
	ts.StartTLS()
	defer ts.Close()
	c, err := New(Config{Server: ts.URL, Token: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	err = c.WhoAmI2(t)
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("want a certificate error without the CA, got %v", err)
	}
	// The same CA from a file works.
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err = New(Config{Server: ts.URL, Token: "tok", CAFile: caFile})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.WhoAmI2(t); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{Server: ts.URL, CAData: []byte("not pem")}); err == nil {
		t.Fatal("want an error for CA data without a certificate")
	}
}

// WhoAmI2 is WhoAmI with a short deadline, for tests.
func (c *Client) WhoAmI2(t *testing.T) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := c.WhoAmI(ctx)
	return err
}

func TestNewRejectsBadServer(t *testing.T) {
	for _, s := range []string{"", "ftp://x", "127.0.0.1:7443", "://"} {
		if _, err := New(Config{Server: s}); err == nil {
			t.Errorf("New(%q): want an error", s)
		}
	}
}

func TestCRUDTypedAndRaw(t *testing.T) {
	c, fc := newTestClient(t)
	ctx := context.Background()

	p := pool("retail", "shop", map[string]string{"app": "shop"})
	if err := c.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	if p.Metadata.UID != "uid-shop" || p.Metadata.ResourceVersion == "" || p.Metadata.Generation != 1 {
		t.Fatalf("create did not fill metadata from the answer: %+v", p.Metadata)
	}
	if got := fc.lastHeaders.Get("Authorization"); got != "Bearer tok" {
		t.Fatalf("Authorization = %q", got)
	}
	if got := fc.lastHeaders.Get(TenantHeader); got != "" {
		t.Fatalf("tenant header sent without Tenant: %q", got)
	}

	err := c.Create(ctx, pool("retail", "shop", nil))
	if !IsAlreadyExists(err) {
		t.Fatalf("second create: want AlreadyExists, got %v", err)
	}

	got := &v1.OriginPool{}
	if err := c.Get(ctx, "op", "retail", "shop", got); err != nil {
		t.Fatal(err)
	}
	if got.Spec.Endpoints[0].Address != "127.0.0.1:9000" || got.Metadata.Labels["app"] != "shop" {
		t.Fatalf("get: %+v", got)
	}

	// Update with a stale resourceVersion conflicts.
	stale := *got
	got.Spec.LoadBalancing = "random"
	if err := c.Update(ctx, got); err != nil {
		t.Fatal(err)
	}
	if got.Metadata.Generation != 2 {
		t.Fatalf("generation after update = %d", got.Metadata.Generation)
	}
	stale.Spec.LoadBalancing = "maglev"
	if err := c.Update(ctx, &stale); !IsConflict(err) {
		t.Fatalf("stale update: want Conflict, got %v", err)
	}

	// Raw objects of a kind this build does not know.
	raw, err := ParseRaw([]byte(`{"apiVersion":"meridian/v1","kind":"Gadget","metadata":{"name":"g1","namespace":"retail"},"spec":{"size":3}}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Create(ctx, raw); err != nil {
		t.Fatal(err)
	}
	if _, ok := fc.objects["namespaces/retail/gadgets/g1"]; !ok {
		t.Fatalf("raw object stored under %v", keys(fc.objects))
	}
	if string(raw.Fields["spec"]) != `{"size":3}` || raw.Metadata.UID != "uid-g1" {
		t.Fatalf("raw after create: %s %+v", raw.Fields["spec"], raw.Metadata)
	}

	// Merge patch.
	patched := &Raw{}
	if err := c.Patch(ctx, "originpools", "retail", "shop", []byte(`{"metadata":{"labels":{"tier":"web"}},"spec":{"loadBalancing":null}}`), patched); err != nil {
		t.Fatal(err)
	}
	if patched.Metadata.Labels["tier"] != "web" || patched.Metadata.Labels["app"] != "shop" {
		t.Fatalf("patch labels: %v", patched.Metadata.Labels)
	}
	var spec map[string]any
	_ = json.Unmarshal(patched.Fields["spec"], &spec)
	if _, ok := spec["loadBalancing"]; ok {
		t.Fatalf("merge patch null did not remove the field: %v", spec)
	}
	if err := c.Patch(ctx, "op", "retail", "shop", []byte(`{`), nil); err == nil {
		t.Fatal("invalid patch JSON: want an error")
	}

	// Dry run stores nothing.
	if err := c.Create(ctx, pool("retail", "dry", nil), DryRun()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(fc.lastQuery, "dryRun=All") {
		t.Fatalf("dry run query = %q", fc.lastQuery)
	}
	if err := c.Get(ctx, "op", "retail", "dry", &Raw{}); !IsNotFound(err) {
		t.Fatalf("dry-run object: want NotFound, got %v", err)
	}

	// Delete, with cascade passed through.
	if err := c.Delete(ctx, "op", "retail", "shop", Cascade()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(fc.lastQuery, "cascade=true") {
		t.Fatalf("cascade query = %q", fc.lastQuery)
	}
	if err := c.Delete(ctx, "op", "retail", "shop"); !IsNotFound(err) {
		t.Fatalf("second delete: want NotFound, got %v", err)
	}
}

func keys(m map[string]map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestStatusErrorDecoding(t *testing.T) {
	c, _ := newTestClient(t)
	ctx := context.Background()
	bad := pool("retail", "x", nil)
	raw, _ := ToRaw(bad)
	raw.Fields["spec"] = json.RawMessage(`{"bad":1}`)
	err := c.Create(ctx, raw)
	var se *StatusError
	if !errors.As(err, &se) {
		t.Fatalf("want *StatusError, got %T %v", err, err)
	}
	if se.Code != 422 || se.Reason != v1.StatusReasonInvalid || !IsInvalid(err) || se.Kind != "OriginPool" || se.Name != "x" {
		t.Fatalf("status error: %+v", se)
	}
	if len(se.Causes) != 1 || se.Causes[0].Field != "spec.bad" {
		t.Fatalf("causes: %+v", se.Causes)
	}
	if want := "OriginPool \"x\" is invalid\nspec.bad: unknown field"; se.Error() != want {
		t.Fatalf("Error() = %q, want %q", se.Error(), want)
	}

	// Wrong token.
	c2, _ := New(Config{Server: c.Server(), Token: "nope", HTTPClient: c.http})
	if _, err := c2.WhoAmI(ctx); !IsUnauthorized(err) {
		t.Fatalf("want Unauthorized, got %v", err)
	}
}

func TestDecodeStatusErrorNonStatusBody(t *testing.T) {
	h := http.Header{}
	h.Set("Retry-After", "7")
	se := decodeStatusError(502, h, []byte("<html>bad gateway</html>"))
	if se.Code != 502 || se.Reason != v1.StatusReasonInternalError || !strings.Contains(se.Message, "bad gateway") || se.RetryAfter != 7*time.Second {
		t.Fatalf("%+v", se)
	}
	se = decodeStatusError(404, http.Header{}, nil)
	if !IsNotFound(se) {
		t.Fatalf("404 without body: %+v", se)
	}
	if IsNotFound(errors.New("plain")) || IsNotFound(nil) {
		t.Fatal("IsNotFound of a non-Status error")
	}
	wrapped := errors.Join(errors.New("ctx"), &StatusError{Code: 409, Reason: v1.StatusReasonConflict})
	if !IsConflict(wrapped) {
		t.Fatal("IsConflict through a wrapper")
	}
}

func TestListPagingAndSelector(t *testing.T) {
	c, _ := newTestClient(t)
	ctx := context.Background()
	for i, name := range []string{"a", "b", "c", "d", "e"} {
		tier := "web"
		if i%2 == 1 {
			tier = "api"
		}
		if err := c.Create(ctx, pool("retail", name, map[string]string{"tier": tier})); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Create(ctx, pool("other", "z", map[string]string{"tier": "web"})); err != nil {
		t.Fatal(err)
	}
	page, err := c.List(ctx, "originpools", "retail", ListOptions{Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != 2 || page.Metadata.Continue == "" {
		t.Fatalf("first page: %d items, continue %q", len(page.Items), page.Metadata.Continue)
	}
	all, err := c.List(ctx, "op", "retail", ListOptions{Limit: 2, AllPages: true})
	if err != nil {
		t.Fatal(err)
	}
	if n := names(all); n != "a,b,c,d,e" || all.Metadata.Continue != "" {
		t.Fatalf("all pages: %s (continue %q)", n, all.Metadata.Continue)
	}
	web, err := c.List(ctx, "op", "", ListOptions{LabelSelector: "tier=web", AllPages: true})
	if err != nil {
		t.Fatal(err)
	}
	if n := names(web); n != "z,a,c,e" { // the fake sorts by namespace, then name
		t.Fatalf("tier=web across namespaces: %s", n)
	}
	typed, err := ItemsAs[v1.OriginPool](web)
	if err != nil {
		t.Fatal(err)
	}
	if typed[0].Metadata.Namespace != "other" || typed[1].Spec.Endpoints[0].Address != "127.0.0.1:9000" {
		t.Fatalf("typed items: %+v", typed[3].Metadata)
	}
}

func names(l *List) string {
	var n []string
	for _, it := range l.Items {
		n = append(n, it.Metadata.Name)
	}
	return strings.Join(n, ",")
}

func TestWatchFromResourceVersion(t *testing.T) {
	c, _ := newTestClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.Create(ctx, pool("retail", "before", nil)); err != nil {
		t.Fatal(err)
	}
	l, err := c.List(ctx, "op", "retail", ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w, err := c.Watch(ctx, "op", "retail", WatchOptions{ResourceVersion: l.Metadata.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	p := pool("retail", "after", nil)
	if err := c.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	p.Spec.LoadBalancing = "random"
	if err := c.Update(ctx, p); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, "op", "retail", "after"); err != nil {
		t.Fatal(err)
	}
	var got []string
	for len(got) < 3 {
		select {
		case ev, ok := <-w.Events():
			if !ok {
				t.Fatalf("watch ended early: %v (got %v)", w.Err(), got)
			}
			got = append(got, ev.Type+" "+ev.Object.Metadata.Name)
		case <-ctx.Done():
			t.Fatalf("timed out; got %v", got)
		}
	}
	if want := "ADDED after,MODIFIED after,DELETED after"; strings.Join(got, ",") != want {
		t.Fatalf("events %v, want %s", got, want)
	}
	w.Stop()
	if err := w.Err(); err != nil {
		t.Fatalf("Err after Stop: %v", err)
	}
}

func TestWatchCancelByContext(t *testing.T) {
	c, _ := newTestClient(t)
	ctx, cancel := context.WithCancel(context.Background())
	w, err := c.Watch(ctx, "op", "retail", WatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case _, ok := <-w.Events():
		if ok {
			t.Fatal("unexpected event")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the event channel was not closed after cancel")
	}
}

func TestDecodeEvent(t *testing.T) {
	ev, err := decodeEvent([]byte(`{"type":"ERROR","object":{"kind":"Status","code":410,"reason":"Gone","message":"too old"}}`))
	if err != nil || ev.Status == nil || !IsGone(ev.Status) {
		t.Fatalf("%+v %v", ev, err)
	}
	for _, bad := range []string{`{`, `{"type":"WHAT","object":{}}`, `{"type":"ADDED","object":[1]}`} {
		if _, err := decodeEvent([]byte(bad)); err == nil {
			t.Errorf("decodeEvent(%s): want an error", bad)
		}
	}
}

func TestRetryAfter429(t *testing.T) {
	c, fc := newTestClient(t)
	fc.throttle = 2
	if _, err := c.WhoAmI(context.Background()); err != nil {
		t.Fatalf("want success after two 429s, got %v", err)
	}
	fc.throttle = 10
	c.maxRetries = 1
	if _, err := c.WhoAmI(context.Background()); !IsTooManyRequests(err) {
		t.Fatalf("want TooManyRequests once retries are exhausted, got %v", err)
	}
}

func TestAuthCallsAndTenantHeader(t *testing.T) {
	c, fc := newTestClient(t)
	ctx := context.Background()
	who, err := c.WhoAmI(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if who.Tenant != "acme" || who.Name != "alice" || strings.Join(who.Roles, ",") != "viewer,devops@retail" {
		t.Fatalf("whoami: %+v", who)
	}
	res, err := c.Login(ctx, LoginRequest{Tenant: "acme", Username: "alice", Password: "secret"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Token != "session-alice" || res.ExpiresAt.Year() != 2030 {
		t.Fatalf("login: %+v", res)
	}
	if _, err := c.Login(ctx, LoginRequest{Tenant: "acme", Username: "alice", Password: "wrong"}); !IsUnauthorized(err) {
		t.Fatalf("wrong password: %v", err)
	}
	ct, _ := New(Config{Server: c.Server(), Token: "tok", Tenant: "globex", HTTPClient: c.http})
	if _, err := ct.WhoAmI(ctx); err != nil {
		t.Fatal(err)
	}
	if got := fc.lastHeaders.Get(TenantHeader); got != "globex" {
		t.Fatalf("X-Meridian-Tenant = %q", got)
	}
}

func TestAuditFilterQuery(t *testing.T) {
	since := time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 3600))
	q := AuditFilter{Principal: "alice", Kind: "OriginPool", Since: since, Limit: 5}.query()
	if got := q.Encode(); got != "kind=OriginPool&limit=5&principal=alice&since=2026-01-02T02%3A04%3A05Z" {
		t.Fatalf("query %s", got)
	}
}

func TestResourcePaths(t *testing.T) {
	cases := []struct {
		kind, ns, name, sub, want string
	}{
		{"op", "retail", "", "", "/api/v1/namespaces/retail/originpools"},
		{"OriginPool", "retail", "shop", "history", "/api/v1/namespaces/retail/originpools/shop/history"},
		{"originpools", "", "", "", "/api/v1/originpools"},
		{"ns", "ignored", "retail", "", "/api/v1/namespaces/retail"},
		{"Tenant", "", "acme", "rollback", "/api/v1/tenants/acme/rollback"},
		{"Policy", "", "", "", "/api/v1/policies"},
		{"Gadget", "x", "g", "", "/api/v1/namespaces/x/gadgets/g"},
		{"Mesh", "", "", "", "/api/v1/meshes"},
	}
	for _, tc := range cases {
		r := ResourceFor(tc.kind, tc.ns)
		if got := r.Path(nsFor(r, tc.ns), tc.name, tc.sub); got != tc.want {
			t.Errorf("%s %s %s %s: %s, want %s", tc.kind, tc.ns, tc.name, tc.sub, got, tc.want)
		}
	}
}

func TestRawRoundTrip(t *testing.T) {
	in := `{"apiVersion":"meridian/v1","kind":"Gadget","metadata":{"name":"g","labels":{"a":"b"}},"spec":{"x":[1,2]},"status":{"ok":true},"extra":"kept"}`
	r, err := ParseRaw([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	out, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var a, b any
	_ = json.Unmarshal([]byte(in), &a)
	_ = json.Unmarshal(out, &b)
	if !jsonEqual(a, b) {
		t.Fatalf("round trip:\n%s\n%s", in, out)
	}
	for _, bad := range []string{`[]`, `null`, `{"metadata":"x"}`, `{"kind":1}`} {
		if _, err := ParseRaw([]byte(bad)); err == nil {
			t.Errorf("ParseRaw(%s): want an error", bad)
		}
	}
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}
