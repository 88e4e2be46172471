package apiserver

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/internal/store"
	"golang.org/x/crypto/bcrypt"
)

// Test-side implementations of the dependency interfaces, used until the
// auth and audit packages are wired in by the console.

type testPasswords struct{}

func (testPasswords) HashPassword(p string) (string, error) {
	b, err := bcrypt.GenerateFromPassword([]byte(p), bcrypt.MinCost)
	return string(b), err
}

func (testPasswords) VerifyPassword(h, p string) bool {
	return bcrypt.CompareHashAndPassword([]byte(h), []byte(p)) == nil
}

type testTokens struct{}

func (testTokens) NewToken() (string, error) {
	b := make([]byte, 32)
	_, err := rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b), err
}

func (testTokens) HashToken(t string) string {
	h := sha256.Sum256([]byte(t))
	return hex.EncodeToString(h[:])
}

// testAuthorizer knows the built-in roles admin (everything) and viewer
// (get, list, watch) and custom Roles.
type testAuthorizer struct{}

func (testAuthorizer) Authorize(sk, sn, verb, kind, ns string, roles []v1.Role, bindings []v1.RoleBinding) (bool, string) {
	for _, b := range bindings {
		if !slices.Contains(b.Spec.Subjects, v1.Subject{Kind: sk, Name: sn}) {
			continue
		}
		if len(b.Spec.Namespaces) > 0 && !slices.Contains(b.Spec.Namespaces, ns) {
			continue
		}
		var rules []v1.RoleRule
		switch b.Spec.Role {
		case "admin":
			rules = []v1.RoleRule{{Verbs: []string{"*"}, Kinds: []string{"*"}, Namespaces: []string{"*"}}}
		case "viewer":
			rules = []v1.RoleRule{{Verbs: []string{"get", "list", "watch"}, Kinds: []string{"*"}, Namespaces: []string{"*"}}}
		default:
			for _, r := range roles {
				if r.Metadata.Name == b.Spec.Role {
					rules = r.Spec.Rules
				}
			}
		}
		for _, r := range rules {
			if (slices.Contains(r.Verbs, verb) || slices.Contains(r.Verbs, "*")) &&
				(slices.Contains(r.Kinds, kind) || slices.Contains(r.Kinds, "*")) &&
				(ns == "" || slices.Contains(r.Namespaces, ns) || slices.Contains(r.Namespaces, "*")) {
				return true, "allowed by RoleBinding " + b.Metadata.Name
			}
		}
	}
	return false, "no RoleBinding allows it"
}

// testAudit keeps a per-tenant chain of records under /a/<tenant>/<seq>
// with a head key compared in every transaction.
type testAudit struct{ st store.Store }

func newTestAudit(st store.Store) *testAudit { return &testAudit{st: st} }

type testRecord struct {
	Seq int64 `json:"seq"`
	AuditEvent
	Prev string `json:"prev"`
}

func (a *testAudit) Prepare(ctx context.Context, tenant string, ev AuditEvent) ([]store.Op, []store.Compare, error) {
	head := "/a/" + tenant + "/head"
	var seq int64
	var rev int64
	prev := ""
	kv, err := a.st.Get(ctx, head)
	if err == nil {
		var h testRecord
		if err := json.Unmarshal(kv.Value, &h); err != nil {
			return nil, nil, err
		}
		seq, rev = h.Seq, kv.ModRevision
		sum := sha256.Sum256(kv.Value)
		prev = hex.EncodeToString(sum[:])
	}
	rec := testRecord{Seq: seq + 1, AuditEvent: ev, Prev: prev}
	b, err := json.Marshal(rec)
	if err != nil {
		return nil, nil, err
	}
	return []store.Op{store.Put(head, b), store.Put(fmt.Sprintf("/a/%s/r/%020d", tenant, rec.Seq), b)},
		[]store.Compare{{Key: head, ModRevision: rev}}, nil
}

func (a *testAudit) Deny(ctx context.Context, tenant string, d Denial) error {
	b, _ := json.Marshal(d)
	_, err := a.st.Txn(ctx, store.Txn{Ops: []store.Op{store.Put("/a/"+tenant+"/deny/"+d.Time.Format("200601021504")+"/"+strings.ReplaceAll(d.Principal, "/", "_"), b)}})
	return err
}

func (a *testAudit) List(ctx context.Context, tenant string, f AuditFilter) ([]any, error) {
	res, err := a.st.List(ctx, "/a/"+tenant+"/r/", store.ListOptions{})
	if err != nil {
		return nil, err
	}
	var out []any
	for _, kv := range res.Items {
		var r testRecord
		if err := json.Unmarshal(kv.Value, &r); err != nil {
			return nil, err
		}
		if (f.Kind == "" || f.Kind == r.Kind) && (f.Verb == "" || f.Verb == r.Verb) {
			out = append(out, r)
		}
	}
	return out, nil
}

func (a *testAudit) Verify(ctx context.Context, tenant string) (any, error) {
	res, err := a.st.List(ctx, "/a/"+tenant+"/r/", store.ListOptions{})
	if err != nil {
		return nil, err
	}
	prev := ""
	for _, kv := range res.Items {
		var r testRecord
		if err := json.Unmarshal(kv.Value, &r); err != nil || r.Prev != prev {
			return map[string]any{"ok": false, "firstBad": map[string]any{"seq": r.Seq, "reason": "chain broken"}}, nil
		}
		sum := sha256.Sum256(kv.Value)
		prev = hex.EncodeToString(sum[:])
	}
	return map[string]any{"ok": true, "records": len(res.Items)}, nil
}
