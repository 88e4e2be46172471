package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/meridian-platform/meridian/internal/store"
)

// testTxnBatch checks store.Batcher (skipped for stores without it): one
// revision per transaction, all or nothing, compares checked against what
// the earlier transactions of the batch wrote, and a watch resumed from the
// revision of any event neither misses nor repeats one.
func testTxnBatch(t *testing.T, s store.Store) {
	b, ok := store.AsBatcher(s)
	if !ok {
		t.Skip("the store is not a store.Batcher")
	}
	ctx := ctxT(t)
	put(t, s, "b/old", "o")
	start := revision(t, s)

	revs, err := b.TxnBatch(ctx, []store.Txn{
		{Compares: []store.Compare{{Key: "b/a", ModRevision: 0}}, Ops: []store.Op{store.Put("b/a", []byte("1")), store.Put("g/shared", []byte("x"))}},
		{Ops: []store.Op{store.Put("b/b", []byte("2")), store.Put("g/shared", []byte("y"))}},
		{Ops: []store.Op{store.Delete("b/missing")}}, // changes nothing
		{Ops: []store.Op{store.Delete("b/old"), store.Put("b/c", []byte("3"))}},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []int64{start + 1, start + 2, start + 2, start + 3}
	if fmt.Sprint(revs) != fmt.Sprint(want) {
		t.Fatalf("revisions %v, want %v", revs, want)
	}
	if r := revision(t, s); r != start+3 {
		t.Fatalf("store at %d after the batch, want %d", r, start+3)
	}
	for key, rev := range map[string]int64{"b/a": revs[0], "b/b": revs[1], "b/c": revs[3], "g/shared": revs[1]} {
		if kv := mustGet(t, s, key); kv.ModRevision != rev {
			t.Fatalf("%s at %d, want %d", key, kv.ModRevision, rev)
		}
	}
	evs := collect(t, s, "b/", start, 4)
	checkEvents(t, evs, []expected{
		{store.EventPut, "b/a", "1", nil, revs[0]},
		{store.EventPut, "b/b", "2", nil, revs[1]},
		{store.EventDelete, "b/old", "o", sp("o"), revs[3]},
		{store.EventPut, "b/c", "3", nil, revs[3]},
	})
	// Resuming from each event's revision gives exactly the later ones.
	for i, ev := range evs {
		rest := evs[i+1:]
		for len(rest) > 0 && rest[0].KV.ModRevision == ev.KV.ModRevision {
			rest = rest[1:] // same transaction: delivered together
		}
		if len(rest) == 0 {
			continue
		}
		got := collect(t, s, "b/", ev.KV.ModRevision, len(rest))
		if fmtEvents(got) != fmtEvents(rest) {
			t.Fatalf("resumed from %d: %s, want %s", ev.KV.ModRevision, fmtEvents(got), fmtEvents(rest))
		}
	}
	// Lists at each revision show the batch one transaction at a time.
	if res := listAll(t, s, "b/", store.ListOptions{Revision: revs[0]}); fmt.Sprint(keys(res.Items)) != "[b/a b/old]" {
		t.Fatalf("at %d: %v", revs[0], keys(res.Items))
	}

	// A compare failing on what an earlier transaction of the batch wrote:
	// nothing is applied, and the error names the transaction and key.
	before := revision(t, s)
	_, err = b.TxnBatch(ctx, []store.Txn{
		{Ops: []store.Op{store.Put("b/d", []byte("4"))}},
		{Compares: []store.Compare{{Key: "b/d", ModRevision: 0}}, Ops: []store.Op{store.Put("b/e", []byte("5"))}},
	})
	var be *store.BatchError
	var ce *store.ConflictError
	if !errors.As(err, &be) || be.Index != 1 || !errors.As(err, &ce) || ce.Key != "b/d" || ce.Have != before+1 {
		t.Fatalf("conflict inside the batch: %v", err)
	}
	// A compare on a key an earlier transaction deleted sees it gone.
	_, err = b.TxnBatch(ctx, []store.Txn{
		{Ops: []store.Op{store.Delete("b/a")}},
		{Compares: []store.Compare{{Key: "b/a", ModRevision: revs[0]}}, Ops: []store.Op{store.Put("b/e", []byte("5"))}},
	})
	if !errors.As(err, &be) || be.Index != 1 || !errors.As(err, &ce) || ce.Have != 0 {
		t.Fatalf("compare after a delete in the batch: %v", err)
	}
	if r := revision(t, s); r != before {
		t.Fatalf("failed batches moved the store from %d to %d", before, r)
	}
	for _, k := range []string{"b/d", "b/e"} {
		if _, err := s.Get(ctx, k); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("%s after failed batches: %v", k, err)
		}
	}
	if kv := mustGet(t, s, "b/a"); kv.ModRevision != revs[0] {
		t.Fatal("a failed batch deleted b/a")
	}
	// The same with the compare in the first transaction: index 0.
	_, err = b.TxnBatch(ctx, []store.Txn{{Compares: []store.Compare{{Key: "b/a", ModRevision: 1}}, Ops: []store.Op{store.Put("b/x", nil)}}})
	if !errors.As(err, &be) || be.Index != 0 {
		t.Fatalf("conflict in the first transaction: %v", err)
	}
	// A compare on a key written earlier in the batch, at its new revision.
	cur := revision(t, s)
	revs, err = b.TxnBatch(ctx, []store.Txn{
		{Ops: []store.Op{store.Put("b/d", []byte("4"))}},
		{Compares: []store.Compare{{Key: "b/d", ModRevision: cur + 1}}, Ops: []store.Op{store.Put("b/d", []byte("5"))}},
	})
	if err != nil || revs[1] != cur+2 {
		t.Fatalf("chained compare: %v %v", revs, err)
	}
	// Invalid transactions are refused with their index.
	_, err = b.TxnBatch(ctx, []store.Txn{{Ops: []store.Op{store.Put("b/y", nil)}}, {Ops: []store.Op{store.Put("", nil)}}})
	if !errors.As(err, &be) || be.Index != 1 {
		t.Fatalf("invalid transaction: %v", err)
	}

	// Batches and single transactions from many goroutines: every
	// revision is used once, every watch event has its own.
	from := revision(t, s)
	const writers, each = 4, 10
	var wg sync.WaitGroup
	var mu sync.Mutex
	seen := map[int64]bool{}
	note := func(rs ...int64) {
		mu.Lock()
		defer mu.Unlock()
		for _, r := range rs {
			if seen[r] {
				t.Errorf("revision %d given twice", r)
			}
			seen[r] = true
		}
	}
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				revs, err := b.TxnBatch(context.Background(), []store.Txn{
					{Ops: []store.Op{store.Put(fmt.Sprintf("c/%d-%d-a", w, i), nil)}},
					{Ops: []store.Op{store.Put(fmt.Sprintf("c/%d-%d-b", w, i), nil)}},
				})
				if err != nil {
					t.Error(err)
					return
				}
				rev, err := s.Txn(context.Background(), store.Txn{Ops: []store.Op{store.Put(fmt.Sprintf("c/%d-%d-c", w, i), nil)}})
				if err != nil {
					t.Error(err)
					return
				}
				note(append(revs, rev)...)
			}
		}()
	}
	wg.Wait()
	evs = collect(t, s, "c/", from, writers*each*3)
	for i := 1; i < len(evs); i++ {
		if evs[i].KV.ModRevision <= evs[i-1].KV.ModRevision {
			t.Fatalf("events %d and %d share or reverse revisions: %s", i-1, i, fmtEvents(evs[i-1:i+1]))
		}
	}
}
