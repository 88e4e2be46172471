package apiserver

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/meridian-platform/meridian/internal/store"
	"github.com/meridian-platform/meridian/internal/store/backendtest"
)

// FuzzCreate sends arbitrary bodies through the create handler: the answer
// is never a 5xx, and a refused body leaves the store unchanged.
func FuzzCreate(f *testing.F) {
	st := backendtest.Bolt(f)
	srv := newServer(f, st)
	res, err := srv.Bootstrap(context.Background(), BootstrapOptions{})
	if err != nil {
		f.Fatal(err)
	}
	ctx := context.Background()
	snapshot := func() []store.KV {
		r, err := st.List(ctx, "/o/", store.ListOptions{})
		if err != nil {
			f.Fatal(err)
		}
		// The admin token's status.lastUsed is written as it is used.
		var out []store.KV
		for _, kv := range r.Items {
			if !strings.Contains(kv.Key, "/apitokens/") {
				out = append(out, kv)
			}
		}
		return out
	}
	seeds := []string{
		`{"apiVersion":"meridian/v1","kind":"Namespace","metadata":{"name":"retail"}}`,
		`{"apiVersion":"meridian/v1","kind":"OriginPool","metadata":{"name":"p","namespace":"default"},"spec":{"endpoints":[{"address":"127.0.0.1:1"}]}}`,
		`{"apiVersion":"meridian/v1","kind":"OriginPool","metadata":{"name":"p"},"spec":{"endpoints":[{"address":"x"}],"healthCheckRef":"nope"}}`,
		`{"apiVersion":"meridian/v1","kind":"HTTPLoadBalancer","metadata":{"name":"l"},"spec":{"domains":["*"],"listeners":[{"port":1}],"defaultPool":"p"}}`,
		`{"apiVersion":"meridian/v1","kind":"Certificate","metadata":{"name":"c"},"spec":{"certificate":"x","privateKey":"(set)"}}`,
		"apiVersion: meridian/v1\nkind: OriginPool\nmetadata: {name: y}\n",
		`[]`, `null`, `{"kind":1}`, `{"apiVersion":"meridian/v1","kind":"OriginPool","metadata":{"name":"a","uid":"x","resourceVersion":"-1"},"status":{"x":1}}`,
	}
	paths := []string{"/api/v1/namespaces/default/originpools", "/api/v1/namespaces", "/api/v1/namespaces/default/httploadbalancers", "/api/v1/namespaces/default/certificates"}
	for _, s := range seeds {
		for i := range paths {
			f.Add([]byte(s), uint8(i))
		}
	}
	f.Fuzz(func(t *testing.T, body []byte, which uint8) {
		before := snapshot()
		req := httptest.NewRequest("POST", paths[int(which)%len(paths)], bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+res.AdminToken)
		req.Header.Set("X-Meridian-Tenant", "default")
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, req)
		if w.Code >= 500 {
			t.Fatalf("%d for %q: %s", w.Code, body, w.Body.Bytes())
		}
		after := snapshot()
		if w.Code == http.StatusCreated {
			return
		}
		if len(before) != len(after) {
			t.Fatalf("refused body (%d) changed the store: %q", w.Code, body)
		}
		for i := range before {
			if before[i].Key != after[i].Key || before[i].ModRevision != after[i].ModRevision {
				t.Fatalf("refused body (%d) changed %s", w.Code, before[i].Key)
			}
		}
	})
}

// FuzzListQuery sends arbitrary query strings (selectors, continue tokens,
// limits, resourceVersions) to list and watch: never a 5xx.
func FuzzListQuery(f *testing.F) {
	st := backendtest.Bolt(f)
	srv := newServer(f, st)
	res, err := srv.Bootstrap(context.Background(), BootstrapOptions{})
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{
		"limit=1", "labelSelector=a%3Db,c+in+(d)", "continue=eyJyIjoxLCJhIjoieCJ9", "continue=%00", "limit=-5",
		"labelSelector=!a", "watch=true&resourceVersion=999999999999", "watch=true&resourceVersion=x", "dryRun=All",
	} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, query string, all bool) {
		path := "/api/v1/namespaces/default/originpools"
		if all {
			path = "/api/v1/originpools"
		}
		req := httptest.NewRequest("GET", path, nil)
		req.URL.RawQuery = query
		if vs := req.URL.Query()["watch"]; len(vs) > 0 && isTrue(vs[0]) {
			return // watches stream until the client leaves
		}
		req.Header.Set("Authorization", "Bearer "+res.AdminToken)
		req.Header.Set("X-Meridian-Tenant", "default")
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, req)
		if w.Code >= 500 {
			t.Fatalf("%d for %q: %s", w.Code, query, w.Body.Bytes())
		}
	})
}
