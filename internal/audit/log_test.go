package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meridian-platform/meridian/internal/pki"
	"github.com/meridian-platform/meridian/internal/store"
	"github.com/meridian-platform/meridian/internal/store/backendtest"
)

// The record goes in the same transaction as the change it describes: a
// change that fails on its own compare leaves no record, concurrent writers
// of one tenant retry on the head and build one unbroken chain.
func TestPrepareInCallersTxn(t *testing.T) {
	backendtest.Each(t, func(t *testing.T, st store.Store) {
		ctx := context.Background()
		l := newLog(t, st, Options{CheckpointEvery: 8})
		objKey := "/objects/acme/OriginPool/retail/shop"

		write := func(value string, objRev int64) (int64, error) {
			for {
				ops, cmps, err := l.Prepare(ctx, "acme", Record{Principal: "User/alice", Verb: "update", Kind: "OriginPool", Namespace: "retail", Name: "shop"})
				if err != nil {
					return 0, err
				}
				rev, err := st.Txn(ctx, store.Txn{
					Compares: append([]store.Compare{{Key: objKey, ModRevision: objRev}}, cmps...),
					Ops:      append([]store.Op{store.Put(objKey, []byte(value))}, ops...),
				})
				if l.IsHeadConflict(err, "acme") {
					continue
				}
				return rev, err
			}
		}
		if _, err := write("v1", 0); err != nil {
			t.Fatal(err)
		}
		// A stale resourceVersion: the change fails and so does its record.
		_, err := write("v2", 12345)
		var ce *store.ConflictError
		if !errors.As(err, &ce) || ce.Key != objKey || l.IsHeadConflict(err, "acme") {
			t.Fatalf("stale write: %v", err)
		}
		res, err := l.List(ctx, "acme", Filter{})
		if err != nil || len(res.Items) != 1 {
			t.Fatalf("records after a failed change: %d %v", len(res.Items), err)
		}

		// Concurrent writers on their own objects, one tenant, one chain.
		var wg sync.WaitGroup
		for w := 0; w < 4; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 10; i++ {
					key := fmt.Sprintf("/objects/acme/HealthCheck/retail/w%d-%d", w, i)
					for {
						ops, cmps, err := l.Prepare(ctx, "acme", Record{Principal: fmt.Sprint("User/w", w), Verb: "create", Kind: "HealthCheck", Name: key})
						if err != nil {
							t.Error(err)
							return
						}
						_, err = st.Txn(ctx, store.Txn{
							Compares: append([]store.Compare{{Key: key, ModRevision: 0}}, cmps...),
							Ops:      append([]store.Op{store.Put(key, []byte("x"))}, ops...),
						})
						if err == nil {
							break
						}
						if !l.IsHeadConflict(err, "acme") {
							t.Error(err)
							return
						}
					}
				}
			}()
		}
		wg.Wait()
		rep, err := l.Verify(ctx, "acme")
		if err != nil || !rep.OK || rep.Records != 41 || rep.Checkpoints != 5 {
			t.Fatalf("after concurrent writers: %+v %v", rep, err)
		}
	})
}

func TestAppendConcurrent(t *testing.T) {
	ctx := context.Background()
	st := backendtest.Bolt(t)
	l := newLog(t, st, Options{})
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 10; i++ {
				tenant := []string{"acme", "globex"}[w%2]
				if _, err := l.Append(ctx, tenant, Record{Principal: "User/u", Verb: "login"}); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	for _, tn := range []string{"acme", "globex"} {
		rep, err := l.Verify(ctx, tn)
		if err != nil || !rep.OK || rep.Records != 40 {
			t.Fatalf("%s: %+v %v", tn, rep, err)
		}
	}
}

// Two consoles sharing a store and master key sign with the same key and
// verify each other's records.
func TestTwoConsolesOneChain(t *testing.T) {
	ctx := context.Background()
	st := backendtest.Bolt(t)
	master := pki.NewMasterKey()
	a := New(st, newKeyring(t, st, master), Options{CheckpointEvery: 4})
	b := New(st, newKeyring(t, st, master), Options{CheckpointEvery: 4})
	for i := 0; i < 10; i++ {
		l := a
		if i%2 == 1 {
			l = b
		}
		if _, err := l.Append(ctx, "acme", Record{Principal: "User/u", Verb: "update"}); err != nil {
			t.Fatal(err)
		}
	}
	for _, l := range []*Log{a, b} {
		rep, err := l.Verify(ctx, "acme")
		if err != nil || !rep.OK || rep.Records != 10 || rep.Checkpoints != 2 {
			t.Fatalf("%+v %v", rep, err)
		}
	}
	da, _ := a.Digest(ctx, "acme", []byte("pw"))
	db, _ := b.Digest(ctx, "acme", []byte("pw"))
	if da != db {
		t.Fatal("consoles disagree on the tenant's digest key")
	}
}

func TestDigest(t *testing.T) {
	ctx := context.Background()
	l := newLog(t, backendtest.Bolt(t), Options{})
	d1, err := l.Digest(ctx, "acme", []byte("hunter2"))
	if err != nil {
		t.Fatal(err)
	}
	d2, _ := l.Digest(ctx, "acme", []byte("hunter2"))
	d3, _ := l.Digest(ctx, "globex", []byte("hunter2"))
	d4, _ := l.Digest(ctx, "acme", []byte("hunter3"))
	if !strings.HasPrefix(d1, "hmac-sha256:") || d1 != d2 || d1 == d3 || d1 == d4 {
		t.Fatalf("digests %s %s %s %s", d1, d2, d3, d4)
	}
	// Not a plain hash: knowing the input is not enough to compute it.
	if d1 == "hmac-sha256:"+"f52fbd32b2b3b86ff88ef6c490628285f482af15ddcb29541f94bcf526a3f6c7" {
		t.Fatal("digest is an unkeyed SHA-256")
	}
	if d, err := l.Digest(ctx, "acme", nil); d != "" || err != nil {
		t.Fatalf("nil data: %q %v", d, err)
	}
}

func TestCheckpointOnDemand(t *testing.T) {
	ctx := context.Background()
	l := newLog(t, backendtest.Bolt(t), Options{})
	if _, err := l.Checkpoint(ctx, "acme"); err == nil {
		t.Fatal("checkpoint of an empty chain")
	}
	appendN(t, l, "acme", 1, 5, nil)
	c, err := l.Checkpoint(ctx, "acme")
	if err != nil || c.Seq != 5 {
		t.Fatalf("Checkpoint = %+v %v", c, err)
	}
	if _, err := l.Checkpoint(ctx, "acme"); err != nil {
		t.Fatalf("second checkpoint at the same seq: %v", err)
	}
	appendN(t, l, "acme", 6, 7, nil)
	rep, err := l.Verify(ctx, "acme", c)
	if err != nil || !rep.OK || rep.Checkpoints != 1 || rep.Head.Seq != 7 {
		t.Fatalf("%+v %v", rep, err)
	}
	pub, id, err := l.PublicKey(ctx)
	if err != nil || len(pub) != 32 || !strings.HasPrefix(id, "ed25519:") || c.KeyID != id {
		t.Fatalf("PublicKey = %x %s %v", pub, id, err)
	}
	// An anchor from another tenant is refused.
	c.Tenant = "globex"
	if rep, _ := l.Verify(ctx, "acme", c); rep.OK {
		t.Fatal("foreign anchor accepted")
	}
}

func TestList(t *testing.T) {
	ctx := context.Background()
	st := backendtest.Bolt(t)
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	l := newLog(t, st, Options{})
	for i := 0; i < 30; i++ {
		r := Record{
			Time:      base.Add(time.Duration(i) * time.Minute),
			Principal: []string{"User/alice", "User/bob", "APIToken/ci"}[i%3],
			Verb:      []string{"create", "update"}[i%2],
			Kind:      "OriginPool", Namespace: []string{"retail", "dev"}[i%2],
			Name: fmt.Sprint("p", i%5),
		}
		if i == 29 {
			r.Outcome = OutcomeDenied
		}
		if _, err := l.Append(ctx, "acme", r); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.Append(ctx, "globex", Record{Principal: "User/alice", Verb: "create"}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		f    Filter
		want int
	}{
		{"all", Filter{}, 30},
		{"principal", Filter{Principal: "User/alice"}, 10},
		{"verb", Filter{Verb: "update"}, 15},
		{"namespace and name", Filter{Namespace: "retail", Name: "p0"}, 3},
		{"kind", Filter{Kind: "Site"}, 0},
		{"outcome", Filter{Outcome: OutcomeDenied}, 1},
		{"since", Filter{Since: base.Add(20 * time.Minute)}, 10},
		{"window", Filter{Since: base.Add(5 * time.Minute), Until: base.Add(10 * time.Minute)}, 5},
		{"limit", Filter{Limit: 7}, 7},
		{"after", Filter{After: 25}, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := l.List(ctx, "acme", tt.f)
			if err != nil || len(res.Items) != tt.want {
				t.Fatalf("List(%+v) = %d items, %v; want %d", tt.f, len(res.Items), err, tt.want)
			}
			for _, r := range res.Items {
				if r.Tenant != "acme" {
					t.Fatalf("record of tenant %q", r.Tenant)
				}
			}
		})
	}
	// Paging: pages of 8 cover everything once, in order.
	var seqs []uint64
	f := Filter{Limit: 8}
	for {
		res, err := l.List(ctx, "acme", f)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res.Items {
			seqs = append(seqs, r.Seq)
		}
		if !res.More {
			break
		}
		f.After = res.Next
	}
	if len(seqs) != 30 || seqs[0] != 1 || seqs[29] != 30 {
		t.Fatalf("paged seqs %v", seqs)
	}
	if _, err := l.List(ctx, "", Filter{}); err == nil {
		t.Fatal("empty tenant accepted")
	}
}

func TestRecordHashCoversEveryField(t *testing.T) {
	base := Record{Seq: 3, Tenant: "acme", Time: time.Unix(100, 5), Principal: "p", Verb: "v", Kind: "k",
		Namespace: "n", Name: "x", ClientAddr: "c", Outcome: OutcomeAllowed, Code: 200, Reason: "r", Count: 2,
		BeforeDigest: "b", AfterDigest: "a", PrevHash: "h"}
	h := base.ComputeHash()
	mutations := []func(r *Record){
		func(r *Record) { r.Seq++ }, func(r *Record) { r.Tenant += "x" }, func(r *Record) { r.Time = r.Time.Add(1) },
		func(r *Record) { r.Principal += "x" }, func(r *Record) { r.Verb += "x" }, func(r *Record) { r.Kind += "x" },
		func(r *Record) { r.Namespace += "x" }, func(r *Record) { r.Name += "x" }, func(r *Record) { r.ClientAddr += "x" },
		func(r *Record) { r.Outcome = OutcomeDenied }, func(r *Record) { r.Code++ }, func(r *Record) { r.Reason += "x" },
		func(r *Record) { r.Count++ }, func(r *Record) { r.BeforeDigest += "x" }, func(r *Record) { r.AfterDigest += "x" },
		func(r *Record) { r.PrevHash += "x" },
		// Moving a byte between adjacent fields changes the hash too.
		func(r *Record) { r.Namespace, r.Name = "nx", "" },
	}
	for i, m := range mutations {
		r := base
		m(&r)
		if r.ComputeHash() == h {
			t.Errorf("mutation %d leaves the hash unchanged", i)
		}
	}
	if !bytes.Equal([]byte(base.ComputeHash()), []byte(h)) {
		t.Fatal("hash not deterministic")
	}
}
