package audit

import (
	"context"
	"fmt"
	"testing"

	"github.com/meridian-platform/meridian/internal/store"
	"github.com/meridian-platform/meridian/internal/store/backendtest"
)

// Batches of records chain exactly like records appended one by one: one
// head write per batch, checkpoints at every multiple of CheckpointEvery,
// and the chain verifies across single records and batches.
func TestPrepareBatch(t *testing.T) {
	ctx := context.Background()
	st := backendtest.Bolt(t)
	l := newLog(t, st, Options{CheckpointEvery: 4})
	if _, err := l.Append(ctx, "acme", Record{Principal: "User/u", Verb: "login"}); err != nil {
		t.Fatal(err)
	}
	var all []Record
	seq := uint64(1)
	for bi, n := range []int{3, 5, 1, 8, 2} {
		recs := make([]Record, n)
		objOps := make([]store.Op, n)
		objCmps := make([]store.Compare, n)
		for i := range recs {
			name := fmt.Sprintf("b%d-%d", bi, i)
			recs[i] = Record{Principal: "User/alice", Verb: "create", Kind: "OriginPool", Namespace: "retail", Name: name}
			key := "/objects/acme/" + name
			objOps[i] = store.Put(key, []byte(name))
			objCmps[i] = store.Compare{Key: key}
		}
		ops, cmps, out, err := l.PrepareBatch(ctx, "acme", recs)
		if err != nil {
			t.Fatal(err)
		}
		if len(cmps) != 1 || cmps[0].Key != l.HeadKey("acme") {
			t.Fatalf("batch %d: compares %+v, want one on the head", bi, cmps)
		}
		heads := 0
		for _, op := range ops {
			if op.Key == l.HeadKey("acme") {
				heads++
			}
		}
		if heads != 1 {
			t.Fatalf("batch %d: %d head writes", bi, heads)
		}
		for i, r := range out {
			seq++
			if r.Seq != seq || r.Name != recs[i].Name || r.Tenant != "acme" || r.Hash != r.ComputeHash() {
				t.Fatalf("batch %d record %d: %+v (want seq %d)", bi, i, r, seq)
			}
			if i > 0 && r.PrevHash != out[i-1].Hash {
				t.Fatalf("batch %d record %d: prevHash does not chain", bi, i)
			}
		}
		if _, err := st.Txn(ctx, store.Txn{Compares: append(objCmps, cmps...), Ops: append(objOps, ops...)}); err != nil {
			t.Fatalf("batch %d: %v", bi, err)
		}
		all = append(all, out...)
	}
	// A single record after the batches continues the chain.
	last, err := l.Append(ctx, "acme", Record{Principal: "User/u", Verb: "logout"})
	if err != nil {
		t.Fatal(err)
	}
	if last.Seq != seq+1 || last.PrevHash != all[len(all)-1].Hash {
		t.Fatalf("record after batches: %+v", last)
	}
	rep, err := l.Verify(ctx, "acme")
	if err != nil || !rep.OK || rep.Records != 21 || rep.Checkpoints != 5 {
		t.Fatalf("verify: %+v %v", rep, err)
	}
	res, err := l.List(ctx, "acme", Filter{Verb: "create"})
	if err != nil || len(res.Items) != len(all) {
		t.Fatalf("list: %d %v", len(res.Items), err)
	}
	for i, r := range res.Items {
		if r.Seq != all[i].Seq || r.Hash != all[i].Hash || r.PrevHash != all[i].PrevHash {
			t.Fatalf("stored record %d differs from the prepared one: %+v vs %+v", i, r, all[i])
		}
	}
	for _, s := range []uint64{4, 8, 12, 16, 20} {
		if _, err := st.Get(ctx, l.CheckpointKey("acme", s)); err != nil {
			t.Fatalf("checkpoint %d: %v", s, err)
		}
	}
}

// Two batches prepared from the same head: the second one loses on the head
// and, prepared again, extends the chain.
func TestPrepareBatchHeadConflict(t *testing.T) {
	ctx := context.Background()
	st := backendtest.Bolt(t)
	l := newLog(t, st, Options{})
	recs := []Record{{Principal: "User/a", Verb: "update"}, {Principal: "User/b", Verb: "update"}}
	ops1, cmps1, _, err := l.PrepareBatch(ctx, "acme", recs)
	if err != nil {
		t.Fatal(err)
	}
	ops2, cmps2, _, err := l.PrepareBatch(ctx, "acme", recs)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Txn(ctx, store.Txn{Compares: cmps1, Ops: ops1}); err != nil {
		t.Fatal(err)
	}
	_, err = st.Txn(ctx, store.Txn{Compares: cmps2, Ops: ops2})
	if !l.IsHeadConflict(err, "acme") {
		t.Fatalf("second batch from a stale head: %v", err)
	}
	ops2, cmps2, out, err := l.PrepareBatch(ctx, "acme", recs)
	if err != nil {
		t.Fatal(err)
	}
	if out[0].Seq != 3 || out[1].Seq != 4 {
		t.Fatalf("re-prepared seqs %d, %d", out[0].Seq, out[1].Seq)
	}
	if _, err := st.Txn(ctx, store.Txn{Compares: cmps2, Ops: ops2}); err != nil {
		t.Fatal(err)
	}
	rep, err := l.Verify(ctx, "acme")
	if err != nil || !rep.OK || rep.Records != 4 {
		t.Fatalf("verify: %+v %v", rep, err)
	}
	if _, _, _, err := l.PrepareBatch(ctx, "acme", nil); err == nil {
		t.Fatal("an empty batch was accepted")
	}
	if _, _, _, err := l.PrepareBatch(ctx, "a/b", recs); err == nil {
		t.Fatal("an invalid tenant was accepted")
	}
}
