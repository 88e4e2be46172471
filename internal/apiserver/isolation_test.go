package apiserver

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/internal/testcert"
)

// sample returns a valid object of kind; references point to "p0" (an
// OriginPool in namespace "shared"), "sp0" (a ServicePolicy there), "u0"
// (a User) and "vs0" (a VirtualSite), which exist in both tenants.
func sample(t testing.TB, kind, ns, name string) map[string]any {
	switch kind {
	case "Namespace", "Site", "APIToken":
		return obj(kind, ns, name, nil)
	case "User":
		return obj(kind, ns, name, map[string]any{"password": "a-long-password"})
	case "Role":
		return obj(kind, ns, name, map[string]any{"rules": []any{map[string]any{"verbs": []string{"get"}, "kinds": []string{"OriginPool"}}}})
	case "RoleBinding":
		return obj(kind, ns, name, map[string]any{"role": "viewer", "subjects": []any{map[string]any{"kind": "User", "name": "u0"}}})
	case "SiteToken":
		return obj(kind, ns, name, map[string]any{"expires": "1h"})
	case "VirtualSite":
		return obj(kind, ns, name, map[string]any{"selector": map[string]any{"matchLabels": map[string]any{"region": "eu"}}})
	case "SiteShare":
		// Site bx-0 is created first (Kinds order: Site before SiteShare).
		return obj(kind, ns, name, map[string]any{"site": "bx-0", "tenant": "elsewhere"})
	case "Certificate":
		c, k := testCertOnce(t)
		return obj(kind, ns, name, map[string]any{"certificate": c, "privateKey": k})
	case "HealthCheck":
		return obj(kind, ns, name, map[string]any{"http": map[string]any{"path": "/healthz"}})
	case "OriginPool":
		return pool(ns, name)
	case "AppFirewall":
		return obj(kind, ns, name, map[string]any{"mode": "block"})
	case "ServicePolicy":
		return obj(kind, ns, name, map[string]any{"defaultAction": "allow"})
	case "RateLimiter":
		return obj(kind, ns, name, map[string]any{"rate": 10})
	case "NetworkPolicy":
		return obj(kind, ns, name, map[string]any{"defaultAction": "allow"})
	case "SecurityBinding":
		return obj(kind, ns, name, map[string]any{"servicePolicies": []string{"sp0"}})
	case "HTTPLoadBalancer":
		return lb(ns, name, "p0")
	case "TCPLoadBalancer":
		return obj(kind, ns, name, map[string]any{"listeners": []any{map[string]any{"port": 9000}}, "pool": "p0",
			"sites": map[string]any{"virtualSite": "vs0"}})
	}
	t.Fatalf("no sample for %s", kind)
	return nil
}

var testCert struct {
	once sync.Once
	c, k string
}

// testCertOnce returns one certificate for the whole test binary, so that
// samples compare equal.
func testCertOnce(t testing.TB) (string, string) {
	testCert.once.Do(func() { testCert.c, testCert.k = testcert.SelfSigned(t, "shop.example.com") })
	return testCert.c, testCert.k
}

var volatileRE = regexp.MustCompile(`"(uid|resourceVersion|creationTimestamp|token|expiresAt|continue)":"[^"]*"`)

// normalize removes volatile fields and replaces the given names by
// placeholders, so that two answers can be compared byte for byte.
func normalizeBody(b []byte, names map[string]string) string {
	s := volatileRE.ReplaceAllString(string(b), `"$1":"X"`)
	for from, to := range names {
		s = strings.ReplaceAll(s, from, to)
	}
	return s
}

// TestTenantIsolationMatrix checks that a principal of tenant A gets the
// same answer for tenant B's objects and namespaces as for ones that do not
// exist: every kind x verb, list, label selectors, watch, dry-run,
// conflicts and references.
func testTenantIsolationMatrix(t *testing.T, open storeOpener) {
	e := newEnv(t, open, func(o *Options) { o.BookmarkInterval = 30 * time.Millisecond })
	a := e.tenant("acme", "shared")
	b := e.tenant("globex", "shared", "bsecret")
	// Objects both tenants have (reference targets).
	for _, tk := range []string{a, b} {
		e.must(201, "POST", "/api/v1/namespaces/shared/originpools", tk, pool("shared", "p0"))
		e.must(201, "POST", "/api/v1/namespaces/shared/servicepolicies", tk, sample(t, "ServicePolicy", "shared", "sp0"))
		if tk == b {
			e.must(201, "POST", "/api/v1/namespaces/bsecret/originpools", tk, pool("bsecret", "p0"))
			e.must(201, "POST", "/api/v1/namespaces/bsecret/servicepolicies", tk, sample(t, "ServicePolicy", "bsecret", "sp0"))
		}
		e.must(201, "POST", "/api/v1/users", tk, sample(t, "User", "", "u0"))
		e.must(201, "POST", "/api/v1/virtualsites", tk, sample(t, "VirtualSite", "", "vs0"))
	}
	// Tenant B's objects: one of every kind named "bx-0", labelled, in
	// both namespaces for namespaced kinds.
	var kinds []v1.KindInfo
	for _, ki := range v1.Kinds() {
		if ki.Scope == v1.ScopeSystem {
			continue
		}
		kinds = append(kinds, ki)
		nss := []string{""}
		if ki.Scope == v1.ScopeNamespaced {
			nss = []string{"shared", "bsecret"}
		}
		for _, ns := range nss {
			o := sample(t, ki.Kind, ns, "bx-0")
			o["metadata"].(map[string]any)["labels"] = map[string]any{"team": "b"}
			path := "/api/v1/" + ki.Plural
			if ns != "" {
				path = "/api/v1/namespaces/" + ns + "/" + ki.Plural
			}
			e.must(201, "POST", path, b, o)
		}
	}
	// B's object's resourceVersion, used in conflict attempts by A.
	brv := get(e.must(200, "GET", "/api/v1/namespaces/shared/originpools/bx-0", b, nil).obj(), "metadata.resourceVersion").(string)

	// Every request is made twice by A: once naming B's things (bx-0,
	// namespace bsecret) and once naming things that exist nowhere (mx-0,
	// namespace mnone). The two answers must be identical once the names
	// are replaced by placeholders.
	type pair struct{ name, ns string }
	existing := pair{"bx-0", "bsecret"}
	missing := pair{"mx-0", "mnone"}
	names := map[string]string{"bx-0": "NAME", "mx-0": "NAME", "bsecret": "NS", "mnone": "NS"}
	type req struct {
		label  string
		method string
		path   func(p pair) string
		body   func(p pair) any
		hdr    []string
	}
	var reqs []req
	for _, ki := range kinds {
		ki := ki
		coll := func(p pair, ns string) string {
			if ki.Scope == v1.ScopeNamespaced {
				return "/api/v1/namespaces/" + ns + "/" + ki.Plural
			}
			return "/api/v1/" + ki.Plural
		}
		// Object in a namespace both tenants have (or tenant scope), and,
		// for namespaced kinds, anything in B's namespace.
		variants := []struct {
			tag string
			ns  func(p pair) string
		}{{"shared-ns", func(pair) string { return "shared" }}}
		if ki.Scope == v1.ScopeNamespaced {
			variants = append(variants, struct {
				tag string
				ns  func(p pair) string
			}{"b-ns", func(p pair) string { return p.ns }})
		}
		for _, v := range variants {
			v := v
			one := func(p pair) string { return coll(p, v.ns(p)) + "/" + p.name }
			body := func(p pair) any {
				ns := ""
				if ki.Scope == v1.ScopeNamespaced {
					ns = v.ns(p)
				}
				return sample(t, ki.Kind, ns, p.name)
			}
			withRV := func(p pair) any {
				o := body(p).(map[string]any)
				o["metadata"].(map[string]any)["resourceVersion"] = brv
				return o
			}
			l := ki.Kind + " " + v.tag + " "
			reqs = append(reqs,
				req{l + "get", "GET", one, nil, nil},
				req{l + "history", "GET", func(p pair) string { return one(p) + "/history" }, nil, nil},
				req{l + "rollback", "POST", func(p pair) string { return one(p) + "/rollback" }, func(pair) any { return `{"generation":1}` }, nil},
				req{l + "list", "GET", func(p pair) string { return coll(p, v.ns(p)) }, nil, nil},
				req{l + "list selector", "GET", func(p pair) string { return coll(p, v.ns(p)) + "?labelSelector=team%3Db&limit=1" }, nil, nil},
				req{l + "update", "PUT", one, body, nil},
				req{l + "update rv", "PUT", one, withRV, nil},
				req{l + "patch", "PATCH", one, func(pair) any { return `{"metadata":{"labels":{"x":"y"}}}` }, nil},
				req{l + "patch rv", "PATCH", one, func(pair) any { return `{"metadata":{"resourceVersion":"` + brv + `"}}` }, nil},
				req{l + "delete", "DELETE", one, nil, nil},
				req{l + "delete dry-run", "DELETE", func(p pair) string { return one(p) + "?dryRun=All" }, nil, nil},
				req{l + "create dry-run", "POST", func(p pair) string { return coll(p, v.ns(p)) + "?dryRun=All" }, body, nil},
			)
			if ki.Kind == "Namespace" {
				reqs = append(reqs, req{l + "delete cascade", "DELETE", func(p pair) string { return one(p) + "?cascade=true" }, nil, nil})
			}
		}
	}
	// References to B's objects dangle exactly like references to nothing.
	reqs = append(reqs,
		req{"ref to pool", "POST", func(pair) string { return "/api/v1/namespaces/shared/httploadbalancers?dryRun=All" },
			func(p pair) any { return lb("shared", "lb1", p.name) }, nil},
		req{"ref to user", "POST", func(pair) string { return "/api/v1/rolebindings?dryRun=All" },
			func(p pair) any {
				return obj("RoleBinding", "", "rb1", map[string]any{"role": p.name, "subjects": []any{map[string]any{"kind": "User", "name": p.name}}})
			}, nil},
		req{"access review", "POST", func(pair) string { return "/api/v1/accessreviews" },
			func(p pair) any { return AccessReview{Verb: "get", Kind: "OriginPool", Namespace: p.ns} }, nil},
		req{"audit records", "GET", func(p pair) string { return "/api/v1/auditrecords?name=" + p.name + "&namespace=" + p.ns }, nil, nil},
		req{"login", "POST", func(pair) string { return "/api/v1/login" },
			func(p pair) any { return LoginRequest{Tenant: "acme", Username: p.name, Password: "a-long-password"} }, nil},
		req{"login other tenant", "POST", func(pair) string { return "/api/v1/login" },
			func(p pair) any {
				tn := "globex"
				if p.name == missing.name {
					tn = "nopex"
				}
				return LoginRequest{Tenant: tn, Username: "u0", Password: "wrong-password"}
			}, nil},
		req{"act in other tenant", "GET", func(pair) string { return "/api/v1/namespaces" }, nil, nil},
	)
	before, _ := e.st.Revision(context.Background())
	for _, rq := range reqs {
		var answers [2]string
		var codes [2]int
		for i, p := range []pair{existing, missing} {
			var body any
			if rq.body != nil {
				body = rq.body(p)
			}
			hdr := rq.hdr
			if rq.label == "act in other tenant" {
				hdr = []string{"X-Meridian-Tenant", map[string]string{"bx-0": "globex", "mx-0": "nopex"}[p.name]}
			}
			r := e.do(rq.method, rq.path(p), a, body, hdr...)
			codes[i] = r.code
			answers[i] = normalizeBody(r.body, names)
			// Answers that mention a tenant must not mention B's.
			if strings.Contains(string(r.body), "globex") {
				t.Errorf("%s: answer names tenant B: %s", rq.label, r.body)
			}
		}
		if codes[0] != codes[1] || answers[0] != answers[1] {
			t.Errorf("%s: answers differ:\n B's: %d %s\n none: %d %s", rq.label, codes[0], answers[0], codes[1], answers[1])
		}
		if codes[0] >= 500 {
			t.Errorf("%s: %d %s", rq.label, codes[0], answers[0])
		}
	}
	// Real creates (then the same again: a conflict) answer the same for a
	// name B uses as for a fresh one.
	for _, ki := range kinds {
		for round := 0; round < 2; round++ {
			var answers [2]string
			var codes [2]int
			for i, p := range []pair{existing, missing} {
				ns, path := "", "/api/v1/"+ki.Plural
				if ki.Scope == v1.ScopeNamespaced {
					ns, path = "shared", "/api/v1/namespaces/shared/"+ki.Plural
				}
				r := e.do("POST", path, a, sample(t, ki.Kind, ns, p.name))
				codes[i], answers[i] = r.code, normalizeBody(r.body, names)
			}
			want := []int{201, 409}[round]
			if codes[0] != want || codes[0] != codes[1] || answers[0] != answers[1] {
				t.Errorf("%s create round %d: answers differ:\n B's: %d %s\n none: %d %s", ki.Kind, round, codes[0], answers[0], codes[1], answers[1])
			}
		}
	}

	// Nothing A did changed B's objects.
	for _, ki := range kinds {
		path := "/api/v1/" + ki.Plural + "/bx-0"
		if ki.Scope == v1.ScopeNamespaced {
			path = "/api/v1/namespaces/bsecret/" + ki.Plural + "/bx-0"
		}
		e.must(200, "GET", path, b, nil)
	}
	_ = before

	// Watch: A watching B's namespace sees what it sees for a missing one
	// (nothing but bookmarks), even while B writes there.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	watchLines := func(ns string) []string {
		req, _ := http.NewRequestWithContext(ctx, "GET", e.hs.URL+"/api/v1/namespaces/"+ns+"/originpools?watch=true&labelSelector=team%3Db", nil)
		req.Header.Set("Authorization", "Bearer "+a)
		res, err := e.hs.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		e.must(200, "PATCH", "/api/v1/namespaces/bsecret/originpools/bx-0", b, `{"metadata":{"labels":{"n":"`+ns+`"}}}`)
		sc := bufio.NewScanner(res.Body)
		var out []string
		for len(out) < 3 && sc.Scan() {
			var l watchLine
			_ = json.Unmarshal(sc.Bytes(), &l)
			out = append(out, l.Type+" "+normalizeBody(sc.Bytes(), names))
		}
		return out
	}
	w1, w2 := watchLines("bsecret"), watchLines("mnone")
	for i := range w1 {
		if !strings.HasPrefix(w1[i], "BOOKMARK ") {
			t.Fatalf("watch of B's namespace saw %s", w1[i])
		}
	}
	if strings.Join(w1, "\n") != strings.Join(w2, "\n") {
		t.Fatalf("watch answers differ:\n%v\n%v", w1, w2)
	}
}
