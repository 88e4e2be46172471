package apiserver

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/meridian-platform/meridian/internal/auth"
	"github.com/meridian-platform/meridian/internal/store"
)

// Test-side implementations of the dependency interfaces, used until the
// auth and audit packages are wired in by the console.

// testPasswords is internal/auth's argon2id at a low cost, so that tests
// stay fast.
type testPasswords struct{}

func (testPasswords) HashPassword(p string) (string, error) {
	return auth.HashPasswordParams(p, auth.PasswordParams{Memory: 64, Time: 1, Threads: 1})
}

func (testPasswords) CheckPassword(h, p string) error { return auth.CheckPassword(h, p) }

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
