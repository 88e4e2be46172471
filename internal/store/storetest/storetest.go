package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meridian-platform/meridian/internal/store"
)

// Run runs the conformance suite. open must return an empty store (or an
// empty namespace of a shared one) and arrange for it to be closed; the
// subtests do not run in parallel with each other.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"GetPutDelete", testGetPutDelete},
		{"TxnValidation", testTxnValidation},
		{"TxnAtomicConflict", testTxnAtomicConflict},
		{"CreateOnly", testCreateOnly},
		{"ListPaging", testListPaging},
		{"ListOldRevision", testListOldRevision},
		{"ListPagingConcurrentWriters", testListPagingConcurrentWriters},
		{"ConcurrentCAS", testConcurrentCAS},
		{"ConcurrentCreateOnly", testConcurrentCreateOnly},
		{"LargeValues", testLargeValues},
		{"PrefixIsolation", testPrefixIsolation},
		{"WatchReplayThenLive", testWatchReplayThenLive},
		{"WatchStartRace", testWatchStartRace},
		{"WatchDeleteCarriesPrev", testWatchDeleteCarriesPrev},
		{"WatchCompacted", testWatchCompacted},
		{"WatchCancel", testWatchCancel},
		{"HistoryMatchesModel", testHistoryMatchesModel},
		{"TxnBatch", testTxnBatch},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
	}
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func put(t testing.TB, s store.Store, key, value string) int64 {
	t.Helper()
	rev, err := s.Txn(ctxT(t), store.Txn{Ops: []store.Op{store.Put(key, []byte(value))}})
	if err != nil {
		t.Fatalf("put %q: %v", key, err)
	}
	return rev
}

func del(t testing.TB, s store.Store, key string) int64 {
	t.Helper()
	rev, err := s.Txn(ctxT(t), store.Txn{Ops: []store.Op{store.Delete(key)}})
	if err != nil {
		t.Fatalf("delete %q: %v", key, err)
	}
	return rev
}

func mustGet(t testing.TB, s store.Store, key string) store.KV {
	t.Helper()
	kv, err := s.Get(ctxT(t), key)
	if err != nil {
		t.Fatalf("get %q: %v", key, err)
	}
	return kv
}

func revision(t testing.TB, s store.Store) int64 {
	t.Helper()
	rev, err := s.Revision(ctxT(t))
	if err != nil {
		t.Fatalf("revision: %v", err)
	}
	return rev
}

func testGetPutDelete(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	if _, err := s.Get(ctx, "a"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("get missing key: got %v, want ErrNotFound", err)
	}
	r1 := put(t, s, "a", "one")
	if r1 <= 0 {
		t.Fatalf("first put revision %d, want > 0", r1)
	}
	if got := revision(t, s); got != r1 {
		t.Fatalf("Revision after put = %d, want %d", got, r1)
	}
	kv := mustGet(t, s, "a")
	if want := (store.KV{Key: "a", Value: []byte("one"), CreateRevision: r1, ModRevision: r1}); !kvEqual(kv, want) {
		t.Fatalf("get a = %+v, want %+v", kv, want)
	}
	r2 := put(t, s, "a", "two")
	if r2 <= r1 {
		t.Fatalf("second put revision %d not after %d", r2, r1)
	}
	kv = mustGet(t, s, "a")
	if want := (store.KV{Key: "a", Value: []byte("two"), CreateRevision: r1, ModRevision: r2}); !kvEqual(kv, want) {
		t.Fatalf("get a = %+v, want %+v", kv, want)
	}
	r3 := del(t, s, "a")
	if r3 <= r2 {
		t.Fatalf("delete revision %d not after %d", r3, r2)
	}
	if _, err := s.Get(ctx, "a"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("get deleted key: got %v, want ErrNotFound", err)
	}
	// Deleting a missing key changes nothing.
	if r := del(t, s, "a"); r != r3 {
		t.Fatalf("delete of missing key returned revision %d, want unchanged %d", r, r3)
	}
	r4 := put(t, s, "a", "three")
	if kv := mustGet(t, s, "a"); kv.CreateRevision != r4 || kv.ModRevision != r4 {
		t.Fatalf("recreated key revisions = %d/%d, want %d/%d", kv.CreateRevision, kv.ModRevision, r4, r4)
	}
	// An empty transaction reports the current revision.
	r, err := s.Txn(ctx, store.Txn{})
	if err != nil || r != r4 {
		t.Fatalf("empty txn = %d, %v; want %d", r, err, r4)
	}
	// Compares without ops are checked.
	if _, err := s.Txn(ctx, store.Txn{Compares: []store.Compare{{Key: "a", ModRevision: r4}}}); err != nil {
		t.Fatalf("read-only txn with holding compare: %v", err)
	}
	if _, err := s.Txn(ctx, store.Txn{Compares: []store.Compare{{Key: "a", ModRevision: r1}}}); !store.IsConflict(err) {
		t.Fatalf("read-only txn with failing compare: got %v, want conflict", err)
	}
	// Empty values round-trip.
	put(t, s, "empty", "")
	if kv := mustGet(t, s, "empty"); len(kv.Value) != 0 {
		t.Fatalf("empty value came back as %q", kv.Value)
	}
}

func kvEqual(a, b store.KV) bool {
	return a.Key == b.Key && bytes.Equal(a.Value, b.Value) && a.CreateRevision == b.CreateRevision && a.ModRevision == b.ModRevision
}

func testTxnValidation(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	before := revision(t, s)
	bad := []struct {
		name string
		txn  store.Txn
	}{
		{"empty key", store.Txn{Ops: []store.Op{store.Put("", []byte("x"))}}},
		{"duplicate key", store.Txn{Ops: []store.Op{store.Put("k", []byte("1")), store.Delete("k")}}},
		{"unknown op", store.Txn{Ops: []store.Op{{Type: 42, Key: "k"}}}},
		{"empty compare key", store.Txn{Compares: []store.Compare{{Key: ""}}, Ops: []store.Op{store.Put("k", nil)}}},
	}
	for _, tc := range bad {
		if _, err := s.Txn(ctx, tc.txn); err == nil || store.IsConflict(err) {
			t.Errorf("%s: got %v, want a validation error", tc.name, err)
		}
	}
	if after := revision(t, s); after != before {
		t.Fatalf("rejected transactions moved the revision from %d to %d", before, after)
	}
	if _, err := s.Get(ctx, "k"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("rejected transaction wrote k: %v", err)
	}
}

func testTxnAtomicConflict(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	ra := put(t, s, "acct/a", "10")
	rb := put(t, s, "acct/b", "20")
	before := revision(t, s)
	_, err := s.Txn(ctx, store.Txn{
		Compares: []store.Compare{{Key: "acct/a", ModRevision: ra}, {Key: "acct/b", ModRevision: rb - 1}},
		Ops:      []store.Op{store.Put("acct/a", []byte("0")), store.Put("acct/b", []byte("30")), store.Put("acct/c", []byte("x")), store.Delete("acct/a2")},
	})
	var ce *store.ConflictError
	if !errors.As(err, &ce) {
		t.Fatalf("txn with stale compare: got %v, want *ConflictError", err)
	}
	if ce.Key != "acct/b" || ce.Want != rb-1 || ce.Have != rb {
		t.Fatalf("conflict = %+v, want key acct/b want %d have %d", *ce, rb-1, rb)
	}
	if !store.IsConflict(fmt.Errorf("wrapped: %w", err)) {
		t.Fatal("IsConflict does not see a wrapped conflict")
	}
	if after := revision(t, s); after != before {
		t.Fatalf("failed txn moved revision %d -> %d", before, after)
	}
	if v := mustGet(t, s, "acct/a").Value; string(v) != "10" {
		t.Fatalf("failed txn changed acct/a to %q", v)
	}
	if _, err := s.Get(ctx, "acct/c"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("failed txn created acct/c: %v", err)
	}

	rev, err := s.Txn(ctx, store.Txn{
		Compares: []store.Compare{{Key: "acct/a", ModRevision: ra}, {Key: "acct/b", ModRevision: rb}},
		Ops:      []store.Op{store.Put("acct/a", []byte("0")), store.Put("acct/b", []byte("30")), store.Put("acct/c", []byte("x"))},
	})
	if err != nil {
		t.Fatalf("txn with current compares: %v", err)
	}
	for key, want := range map[string]string{"acct/a": "0", "acct/b": "30", "acct/c": "x"} {
		kv := mustGet(t, s, key)
		if string(kv.Value) != want || kv.ModRevision != rev {
			t.Fatalf("%s = %q at %d, want %q at %d", key, kv.Value, kv.ModRevision, want, rev)
		}
	}
	// Put and delete in one transaction.
	rev2, err := s.Txn(ctx, store.Txn{Ops: []store.Op{store.Delete("acct/c"), store.Put("acct/d", []byte("y"))}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "acct/c"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("acct/c not deleted: %v", err)
	}
	if kv := mustGet(t, s, "acct/d"); kv.ModRevision != rev2 {
		t.Fatalf("acct/d at %d, want %d", kv.ModRevision, rev2)
	}
}

func testCreateOnly(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	create := store.Txn{Compares: []store.Compare{{Key: "obj", ModRevision: 0}}, Ops: []store.Op{store.Put("obj", []byte("v1"))}}
	rev, err := s.Txn(ctx, create)
	if err != nil {
		t.Fatalf("create-only on a missing key: %v", err)
	}
	_, err = s.Txn(ctx, create)
	var ce *store.ConflictError
	if !errors.As(err, &ce) || ce.Key != "obj" || ce.Want != 0 || ce.Have != rev {
		t.Fatalf("create-only on an existing key: got %v, want conflict on obj (want 0, have %d)", err, rev)
	}
	_, err = s.Txn(ctx, store.Txn{Compares: []store.Compare{{Key: "nope", ModRevision: rev}}, Ops: []store.Op{store.Put("nope", nil)}})
	if !errors.As(err, &ce) || ce.Key != "nope" || ce.Have != 0 {
		t.Fatalf("update of a missing key: got %v, want conflict on nope with have 0", err)
	}
	// After a delete the key may be created again.
	del(t, s, "obj")
	if _, err := s.Txn(ctx, create); err != nil {
		t.Fatalf("create-only after delete: %v", err)
	}
}

func keyN(prefix string, i int) string { return fmt.Sprintf("%s%04d", prefix, i) }

func listAll(t testing.TB, s store.Store, prefix string, opts store.ListOptions) store.ListResult {
	t.Helper()
	res, err := s.List(ctxT(t), prefix, opts)
	if err != nil {
		t.Fatalf("list %q %+v: %v", prefix, opts, err)
	}
	return res
}

func keys(items []store.KV) []string {
	out := make([]string, len(items))
	for i, kv := range items {
		out[i] = kv.Key
	}
	return out
}

func testListPaging(t *testing.T, s store.Store) {
	var want []string
	for i := range 25 {
		put(t, s, keyN("p/", i), strconv.Itoa(i))
		want = append(want, keyN("p/", i))
	}
	put(t, s, "p", "not under p/")
	put(t, s, "q/0", "other prefix")
	put(t, s, "o/9", "other prefix")

	all := listAll(t, s, "p/", store.ListOptions{})
	if !slices.Equal(keys(all.Items), want) || all.More {
		t.Fatalf("list p/ = %v (more %v), want %v", keys(all.Items), all.More, want)
	}
	for i, kv := range all.Items {
		if string(kv.Value) != strconv.Itoa(i) {
			t.Fatalf("%s = %q", kv.Key, kv.Value)
		}
	}
	if rev := revision(t, s); all.Revision != rev {
		t.Fatalf("list revision %d, want current %d", all.Revision, rev)
	}

	var got []string
	opts := store.ListOptions{Limit: 10}
	for pages := 0; ; pages++ {
		if pages > 3 {
			t.Fatalf("too many pages: %v", got)
		}
		res := listAll(t, s, "p/", opts)
		if len(res.Items) > 10 {
			t.Fatalf("page of %d items with limit 10", len(res.Items))
		}
		got = append(got, keys(res.Items)...)
		if !res.More {
			break
		}
		opts.Revision = res.Revision
		opts.After = res.Items[len(res.Items)-1].Key
	}
	if !slices.Equal(got, want) {
		t.Fatalf("paged list = %v, want %v", got, want)
	}
	// A page that ends exactly at the last key says there is no more.
	res := listAll(t, s, "p/", store.ListOptions{Limit: 5, After: keyN("p/", 19)})
	if len(res.Items) != 5 || res.More {
		t.Fatalf("last page: %v more=%v", keys(res.Items), res.More)
	}
	if res := listAll(t, s, "none/", store.ListOptions{}); len(res.Items) != 0 || res.More {
		t.Fatalf("list of empty prefix: %v", keys(res.Items))
	}
	if _, err := s.List(ctxT(t), "p/", store.ListOptions{Revision: revision(t, s) + 1000}); !errors.Is(err, store.ErrFutureRevision) {
		t.Fatalf("list at a future revision: got %v, want ErrFutureRevision", err)
	}
}

func testListOldRevision(t *testing.T, s store.Store) {
	for i := range 10 {
		put(t, s, keyN("h/", i), "v1")
	}
	old := revision(t, s)
	oldAll := listAll(t, s, "h/", store.ListOptions{})
	for i := range 10 {
		switch i % 3 {
		case 0:
			del(t, s, keyN("h/", i))
		case 1:
			put(t, s, keyN("h/", i), "v2")
		}
	}
	del(t, s, keyN("h/", 3)) // deleted and ...
	put(t, s, keyN("h/", 3), "v3")
	put(t, s, keyN("h/", 10), "new")
	put(t, s, keyN("h/", 11), "new")

	atOld := listAll(t, s, "h/", store.ListOptions{Revision: old})
	if atOld.Revision != old {
		t.Fatalf("list at %d reports revision %d", old, atOld.Revision)
	}
	if len(atOld.Items) != len(oldAll.Items) {
		t.Fatalf("list at old revision: %v, want %v", keys(atOld.Items), keys(oldAll.Items))
	}
	for i := range atOld.Items {
		if !kvEqual(atOld.Items[i], oldAll.Items[i]) {
			t.Fatalf("item %d at old revision = %+v, want %+v", i, atOld.Items[i], oldAll.Items[i])
		}
	}
	// Paging at the old revision gives the same items.
	var paged []store.KV
	opts := store.ListOptions{Revision: old, Limit: 3}
	for {
		res := listAll(t, s, "h/", opts)
		paged = append(paged, res.Items...)
		if !res.More {
			break
		}
		opts.After = res.Items[len(res.Items)-1].Key
	}
	if !slices.EqualFunc(paged, oldAll.Items, kvEqual) {
		t.Fatalf("paged at old revision = %v, want %v", keys(paged), keys(oldAll.Items))
	}
	now := listAll(t, s, "h/", store.ListOptions{})
	var wantNow []string
	for i := range 12 {
		if i < 10 && i%3 == 0 && i != 3 {
			continue
		}
		wantNow = append(wantNow, keyN("h/", i))
	}
	if !slices.Equal(keys(now.Items), wantNow) {
		t.Fatalf("current list = %v, want %v", keys(now.Items), wantNow)
	}
}

func testListPagingConcurrentWriters(t *testing.T, s store.Store) {
	const seeded = 150
	for i := 0; i < seeded; i += 25 {
		var ops []store.Op
		for j := i; j < i+25; j++ {
			ops = append(ops, store.Put(keyN("pg/", j), []byte("0")))
		}
		if _, err := s.Txn(ctxT(t), store.Txn{Ops: ops}); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(ctxT(t))
	var wg sync.WaitGroup
	var writeErr error
	var errOnce sync.Once
	for w := range 3 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 7))
			for n := 0; ctx.Err() == nil; n++ {
				// Update seeded keys, create and delete keys of our own in
				// between them and after them.
				ops := []store.Op{
					store.Put(keyN("pg/", r.IntN(seeded)), []byte(strconv.Itoa(n))),
					store.Put(fmt.Sprintf("pg/%04d-w%d-%d", r.IntN(seeded), w, n), []byte("new")),
				}
				if n > 0 {
					ops = append(ops, store.Delete(fmt.Sprintf("pg/zz-w%d-%d", w, n-1)))
				}
				ops = append(ops, store.Put(fmt.Sprintf("pg/zz-w%d-%d", w, n), []byte("new")))
				if _, err := s.Txn(ctx, store.Txn{Ops: ops}); err != nil && ctx.Err() == nil {
					errOnce.Do(func() { writeErr = err })
					return
				}
			}
		})
	}
	defer func() {
		cancel()
		wg.Wait()
		if writeErr != nil {
			t.Errorf("writer: %v", writeErr)
		}
	}()
	// Let the writers get going.
	deadline := time.Now().Add(10 * time.Second)
	for start := revision(t, s); revision(t, s) < start+10; {
		if time.Now().After(deadline) {
			t.Fatal("writers made no progress")
		}
		time.Sleep(time.Millisecond)
	}

	var pages []store.KV
	opts := store.ListOptions{Limit: 17}
	for n := 0; ; n++ {
		res := listAll(t, s, "pg/", opts)
		if opts.Revision != 0 && res.Revision != opts.Revision {
			t.Fatalf("page read at %d, asked for %d", res.Revision, opts.Revision)
		}
		opts.Revision = res.Revision
		pages = append(pages, res.Items...)
		if !res.More {
			break
		}
		opts.After = res.Items[len(res.Items)-1].Key
		time.Sleep(time.Millisecond) // let writers move on between pages
	}
	rev := opts.Revision
	if now := revision(t, s); now <= rev {
		t.Logf("writers did not advance during paging (rev %d)", rev)
	}
	seen := map[string]int{}
	for i, kv := range pages {
		if i > 0 && kv.Key <= pages[i-1].Key {
			t.Fatalf("keys out of order or repeated: %q after %q", kv.Key, pages[i-1].Key)
		}
		if kv.ModRevision > rev {
			t.Fatalf("%s has mod revision %d after the page revision %d", kv.Key, kv.ModRevision, rev)
		}
		seen[kv.Key]++
	}
	for i := range seeded {
		if seen[keyN("pg/", i)] != 1 {
			t.Fatalf("seeded key %s seen %d times", keyN("pg/", i), seen[keyN("pg/", i)])
		}
	}
	for w := range 3 {
		var live int
		for k := range seen {
			if len(k) > 6 && k[:6] == "pg/zz-" && k[6:8] == "w"+strconv.Itoa(w) {
				live++
			}
		}
		if live > 1 {
			t.Fatalf("writer %d has %d rolling keys at one revision, want at most 1", w, live)
		}
	}
	whole := listAll(t, s, "pg/", store.ListOptions{Revision: rev})
	if !slices.EqualFunc(whole.Items, pages, kvEqual) {
		t.Fatalf("pages differ from one list at revision %d: %d vs %d items", rev, len(pages), len(whole.Items))
	}
}

func testConcurrentCAS(t *testing.T, s store.Store) {
	const workers, incs = 5, 15
	counters := []string{"ctr/a", "ctr/b"}
	for _, c := range counters {
		put(t, s, c, "0")
	}
	ctx := ctxT(t)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range incs {
				key := counters[(w+i)%len(counters)]
				for attempt := 0; ; attempt++ {
					if attempt > 1000 {
						errs <- fmt.Errorf("worker %d: no progress on %s", w, key)
						return
					}
					kv, err := s.Get(ctx, key)
					if err != nil {
						errs <- err
						return
					}
					n, _ := strconv.Atoi(string(kv.Value))
					_, err = s.Txn(ctx, store.Txn{
						Compares: []store.Compare{{Key: key, ModRevision: kv.ModRevision}},
						Ops:      []store.Op{store.Put(key, []byte(strconv.Itoa(n+1)))},
					})
					if store.IsConflict(err) {
						continue
					}
					if err != nil {
						errs <- err
						return
					}
					break
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	total := 0
	for _, c := range counters {
		n, _ := strconv.Atoi(string(mustGet(t, s, c).Value))
		total += n
	}
	if total != workers*incs {
		t.Fatalf("counters sum to %d, want %d", total, workers*incs)
	}
}

// testConcurrentCreateOnly races transactions that may each succeed only
// if no other did: exactly one wins, every other names the key it lost on.
func testConcurrentCreateOnly(t *testing.T, s store.Store) {
	const racers = 16
	ctx := ctxT(t)
	type result struct {
		rev int64
		err error
	}
	results := make(chan result, racers)
	startGun := make(chan struct{})
	for i := range racers {
		go func() {
			<-startGun
			rev, err := s.Txn(ctx, store.Txn{
				Compares: []store.Compare{{Key: "lock", ModRevision: 0}},
				Ops:      []store.Op{store.Put("lock", []byte(strconv.Itoa(i))), store.Put("owner/"+strconv.Itoa(i), []byte("x"))},
			})
			results <- result{rev, err}
		}()
	}
	close(startGun)
	var winner int64
	var lost []*store.ConflictError
	for range racers {
		r := <-results
		var ce *store.ConflictError
		switch {
		case r.err == nil:
			if winner != 0 {
				t.Fatalf("two create-only transactions on one key succeeded (revisions %d and %d)", winner, r.rev)
			}
			winner = r.rev
		case errors.As(r.err, &ce):
			lost = append(lost, ce)
		default:
			t.Fatalf("racer failed: %v", r.err)
		}
	}
	if winner == 0 {
		t.Fatal("no racer won")
	}
	for _, ce := range lost {
		if ce.Key != "lock" || ce.Want != 0 || ce.Have != winner {
			t.Fatalf("loser's conflict = %+v, want lock have %d", *ce, winner)
		}
	}
	kv := mustGet(t, s, "lock")
	if owners := listAll(t, s, "owner/", store.ListOptions{}); len(owners.Items) != 1 || owners.Items[0].Key != "owner/"+string(kv.Value) || owners.Items[0].ModRevision != winner {
		t.Fatalf("owners %v for lock held by %q", keys(owners.Items), kv.Value)
	}
}

func testLargeValues(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	big := make([]byte, 1<<20)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range big {
		big[i] = byte(r.Uint32())
	}
	start := revision(t, s)
	rev, err := s.Txn(ctx, store.Txn{Ops: []store.Op{store.Put("big", big)}})
	if err != nil {
		t.Fatalf("put 1 MiB: %v", err)
	}
	big2 := bytes.Clone(big)
	big2[0] ^= 0xff
	big2[len(big2)-1] ^= 0xff
	if _, err := s.Txn(ctx, store.Txn{Ops: []store.Op{store.Put("big", big2)}}); err != nil {
		t.Fatalf("overwrite 1 MiB: %v", err)
	}
	if kv := mustGet(t, s, "big"); !bytes.Equal(kv.Value, big2) {
		t.Fatal("1 MiB value did not round-trip")
	}
	res := listAll(t, s, "big", store.ListOptions{Revision: rev})
	if len(res.Items) != 1 || !bytes.Equal(res.Items[0].Value, big) {
		t.Fatal("1 MiB value at an older revision did not round-trip")
	}
	evs := collect(t, s, "big", start, 2)
	if !bytes.Equal(evs[0].KV.Value, big) || !bytes.Equal(evs[1].KV.Value, big2) || !bytes.Equal(evs[1].PrevValue, big) {
		t.Fatal("1 MiB values in watch events differ")
	}
}

func testPrefixIsolation(t *testing.T, s store.Store) {
	for _, k := range []string{"ns/a", "ns/a/x", "ns/ab", "ns", "ns0/a", "nr/z"} {
		put(t, s, k, k)
	}
	if got := keys(listAll(t, s, "ns/a/", store.ListOptions{}).Items); !slices.Equal(got, []string{"ns/a/x"}) {
		t.Fatalf("list ns/a/ = %v", got)
	}
	if got := keys(listAll(t, s, "ns/", store.ListOptions{}).Items); !slices.Equal(got, []string{"ns/a", "ns/a/x", "ns/ab"}) {
		t.Fatalf("list ns/ = %v", got)
	}
	// After outside the prefix.
	if got := keys(listAll(t, s, "ns/", store.ListOptions{After: "a"}).Items); len(got) != 3 {
		t.Fatalf("list ns/ after a = %v", got)
	}
	if got := keys(listAll(t, s, "ns/", store.ListOptions{After: "zz"}).Items); len(got) != 0 {
		t.Fatalf("list ns/ after zz = %v", got)
	}
	rev := revision(t, s)
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	ch, err := s.Watch(ctx, "ns/a/", rev)
	if err != nil {
		t.Fatal(err)
	}
	put(t, s, "ns/ab", "noise")
	put(t, s, "ns/a", "noise")
	want := put(t, s, "ns/a/y", "mine")
	evs := recvN(t, ch, 1)
	if evs[0].KV.Key != "ns/a/y" || evs[0].KV.ModRevision != want {
		t.Fatalf("watch ns/a/ got %+v, want ns/a/y at %d", evs[0].KV, want)
	}
}

// expected is what a watch must report for one change.
type expected struct {
	typ   store.EventType
	key   string
	value string
	prev  *string
	rev   int64
}

func checkEvents(t testing.TB, got []store.Event, want []expected) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d events, want %d:\n got %v\nwant %v", len(got), len(want), fmtEvents(got), want)
	}
	for i, w := range want {
		g := got[i]
		prevOK := (w.prev == nil && g.PrevValue == nil) || (w.prev != nil && g.PrevValue != nil && string(g.PrevValue) == *w.prev)
		if g.Type != w.typ || g.KV.Key != w.key || string(g.KV.Value) != w.value || g.KV.ModRevision != w.rev || !prevOK {
			t.Fatalf("event %d = %s, want %+v", i, fmtEvents(got[i:i+1]), w)
		}
	}
}

func fmtEvents(evs []store.Event) string {
	var b bytes.Buffer
	for _, e := range evs {
		fmt.Fprintf(&b, "{%d %s=%q@%d prev=%q} ", e.Type, e.KV.Key, e.KV.Value, e.KV.ModRevision, e.PrevValue)
	}
	return b.String()
}

// recvN reads n events from ch, failing on errors, early close or timeout.
func recvN(t testing.TB, ch <-chan store.WatchResponse, n int) []store.Event {
	t.Helper()
	var evs []store.Event
	timeout := time.After(20 * time.Second)
	for len(evs) < n {
		select {
		case r, ok := <-ch:
			if !ok {
				t.Fatalf("watch closed after %d of %d events", len(evs), n)
			}
			if r.Err != nil {
				t.Fatalf("watch failed after %d of %d events: %v", len(evs), n, r.Err)
			}
			for i := 1; i < len(r.Events); i++ {
				if r.Events[i].KV.ModRevision < r.Events[i-1].KV.ModRevision {
					t.Fatalf("events out of order in one response: %s", fmtEvents(r.Events))
				}
			}
			evs = append(evs, r.Events...)
		case <-timeout:
			t.Fatalf("timed out after %d of %d events", len(evs), n)
		}
	}
	if len(evs) > n {
		t.Fatalf("got %d events, want %d: %s", len(evs), n, fmtEvents(evs))
	}
	return evs
}

// noMore checks that nothing else arrives on ch for a short while.
func noMore(t testing.TB, ch <-chan store.WatchResponse) {
	t.Helper()
	select {
	case r := <-ch:
		t.Fatalf("unexpected extra response: %s err=%v", fmtEvents(r.Events), r.Err)
	case <-time.After(100 * time.Millisecond):
	}
}

func collect(t testing.TB, s store.Store, prefix string, from int64, n int) []store.Event {
	t.Helper()
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	ch, err := s.Watch(ctx, prefix, from)
	if err != nil {
		t.Fatalf("watch %q from %d: %v", prefix, from, err)
	}
	return recvN(t, ch, n)
}

func sp(s string) *string { return &s }

func testWatchReplayThenLive(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	start := revision(t, s)
	var want []expected
	r := put(t, s, "w/a", "1")
	want = append(want, expected{store.EventPut, "w/a", "1", nil, r})
	put(t, s, "x/noise", "1")
	r = put(t, s, "w/a", "2")
	want = append(want, expected{store.EventPut, "w/a", "2", sp("1"), r})
	r, err := s.Txn(ctx, store.Txn{Ops: []store.Op{store.Put("w/b", []byte("b1")), store.Put("x/other", nil), store.Delete("w/a")}})
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, expected{store.EventPut, "w/b", "b1", nil, r}, expected{store.EventDelete, "w/a", "2", sp("2"), r})
	mid := r
	r = put(t, s, "w/c", "c1")
	want = append(want, expected{store.EventPut, "w/c", "c1", nil, r})
	del(t, s, "w/missing") // no event
	midIdx := 4

	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	chAll, err := s.Watch(wctx, "w/", start)
	if err != nil {
		t.Fatal(err)
	}
	chMid, err := s.Watch(wctx, "w/", mid)
	if err != nil {
		t.Fatal(err)
	}
	// Live changes after the watches started.
	r = put(t, s, "w/b", "b2")
	want = append(want, expected{store.EventPut, "w/b", "b2", sp("b1"), r})
	r = del(t, s, "w/c")
	want = append(want, expected{store.EventDelete, "w/c", "c1", sp("c1"), r})
	checkEvents(t, recvN(t, chAll, len(want)), want)
	checkEvents(t, recvN(t, chMid, len(want)-midIdx), want[midIdx:])
	noMore(t, chAll)

	// A watch from the current revision sees only what follows.
	chNow, err := s.Watch(wctx, "w/", revision(t, s))
	if err != nil {
		t.Fatal(err)
	}
	r = put(t, s, "w/d", "d1")
	checkEvents(t, recvN(t, chNow, 1), []expected{{store.EventPut, "w/d", "d1", nil, r}})
	// A watch from a future revision waits for it.
	chFut, err := s.Watch(wctx, "w/", r+1)
	if err != nil {
		t.Fatal(err)
	}
	put(t, s, "w/e", "skipped")
	r = put(t, s, "w/f", "seen")
	checkEvents(t, recvN(t, chFut, 1), []expected{{store.EventPut, "w/f", "seen", nil, r}})
}

func testWatchStartRace(t *testing.T, s store.Store) {
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	const writes = 200
	revs := make([]int64, writes)
	done := make(chan error, 1)
	go func() {
		for i := range writes {
			r, err := s.Txn(ctx, store.Txn{Ops: []store.Op{store.Put("race/"+strconv.Itoa(i%7), []byte(strconv.Itoa(i)))}})
			if err != nil {
				done <- err
				return
			}
			revs[i] = r
		}
		done <- nil
	}()
	// Start watches at revisions the writer is producing right now.
	type w struct {
		from int64
		ch   <-chan store.WatchResponse
	}
	var ws []w
	for len(ws) < 5 {
		from := revision(t, s)
		ch, err := s.Watch(ctx, "race/", from)
		if err != nil {
			t.Fatal(err)
		}
		ws = append(ws, w{from, ch})
		time.Sleep(time.Duration(len(ws)) * time.Millisecond)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, w := range ws {
		var want []int
		for i, r := range revs {
			if r > w.from {
				want = append(want, i)
			}
		}
		evs := recvN(t, w.ch, len(want))
		for j, e := range evs {
			if string(e.KV.Value) != strconv.Itoa(want[j]) || e.KV.ModRevision != revs[want[j]] {
				t.Fatalf("watch from %d: event %d = %s, want write %d at %d", w.from, j, fmtEvents(evs[j:j+1]), want[j], revs[want[j]])
			}
		}
	}
}

func testWatchDeleteCarriesPrev(t *testing.T, s store.Store) {
	start := put(t, s, "d/k", "before")
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	ch, err := s.Watch(ctx, "d/", start)
	if err != nil {
		t.Fatal(err)
	}
	r := del(t, s, "d/k")
	evs := recvN(t, ch, 1)
	e := evs[0]
	if e.Type != store.EventDelete || e.KV.Key != "d/k" || e.KV.ModRevision != r || string(e.KV.Value) != "before" || string(e.PrevValue) != "before" || e.KV.CreateRevision != start {
		t.Fatalf("delete event = %s create=%d, want d/k deleted at %d with prev before, created %d", fmtEvents(evs), e.KV.CreateRevision, r, start)
	}
}

// watchErr returns the error Watch reports, either from the call or as the
// first response.
func watchErr(t testing.TB, s store.Store, prefix string, from int64) error {
	t.Helper()
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	ch, err := s.Watch(ctx, prefix, from)
	if err != nil {
		return err
	}
	select {
	case r, ok := <-ch:
		if !ok {
			t.Fatal("watch closed without an error")
		}
		if r.Err == nil {
			t.Fatalf("watch from %d delivered %s, want an error", from, fmtEvents(r.Events))
		}
		return r.Err
	case <-time.After(10 * time.Second):
		t.Fatalf("watch from %d: no error in time", from)
	}
	return nil
}

func testWatchCompacted(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	first := put(t, s, "c/a", "1")
	for i := range 5 {
		put(t, s, "c/a", strconv.Itoa(i+2))
	}
	mid := put(t, s, "c/b", "1")
	last := put(t, s, "c/a", "last")
	if err := s.Compact(ctx, mid); err != nil {
		t.Fatalf("compact at %d: %v", mid, err)
	}
	if err := s.Compact(ctx, first); err != nil {
		t.Fatalf("compacting below an earlier compaction should be a no-op: %v", err)
	}
	if err := s.Compact(ctx, last+1000); !errors.Is(err, store.ErrFutureRevision) {
		t.Fatalf("compact in the future: got %v, want ErrFutureRevision", err)
	}
	if err := watchErr(t, s, "c/", first); !errors.Is(err, store.ErrCompacted) {
		t.Fatalf("watch from compacted revision: got %v, want ErrCompacted", err)
	}
	if _, err := s.List(ctx, "c/", store.ListOptions{Revision: first}); !errors.Is(err, store.ErrCompacted) {
		t.Fatalf("list at compacted revision: got %v, want ErrCompacted", err)
	}
	// The current state and history after the compaction stay readable.
	if kv := mustGet(t, s, "c/a"); string(kv.Value) != "last" {
		t.Fatalf("c/a = %q after compaction", kv.Value)
	}
	if res := listAll(t, s, "c/", store.ListOptions{Revision: mid}); len(res.Items) != 2 || string(res.Items[0].Value) != "6" {
		t.Fatalf("list at compaction revision = %+v", res.Items)
	}
	checkEvents(t, collect(t, s, "c/", mid, 1), []expected{{store.EventPut, "c/a", "last", sp("6"), last}})
}

func testWatchCancel(t *testing.T, s store.Store) {
	ctx, cancel := context.WithCancel(ctxT(t))
	ch, err := s.Watch(ctx, "cancel/", revision(t, s))
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case r, ok := <-ch:
			if !ok {
				return
			}
			if len(r.Events) > 0 {
				t.Fatalf("unexpected events %s", fmtEvents(r.Events))
			}
		case <-timeout:
			t.Fatal("watch channel not closed after cancel")
		}
	}
}

// testHistoryMatchesModel runs random transactions from several goroutines,
// then replays the watch history into a model map and checks it against
// every transaction's answer and the final List, in the spirit of etcd's
// robustness tests.
func testHistoryMatchesModel(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	start := revision(t, s)
	type applied struct {
		txn store.Txn
		rev int64
	}
	const workers, txns = 4, 40
	results := make(chan applied, workers*txns)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 99))
			for i := range txns {
				var txn store.Txn
				used := map[string]bool{}
				for range 1 + r.IntN(3) {
					key := "m/" + strconv.Itoa(r.IntN(6))
					if used[key] {
						continue
					}
					used[key] = true
					if r.IntN(4) == 0 {
						txn.Ops = append(txn.Ops, store.Delete(key))
					} else {
						txn.Ops = append(txn.Ops, store.Put(key, []byte(fmt.Sprintf("w%d-%d", w, i))))
					}
				}
				if r.IntN(2) == 0 {
					// Compare against what we read just now: may lose a race.
					key := "m/" + strconv.Itoa(r.IntN(6))
					var mod int64
					if kv, err := s.Get(ctx, key); err == nil {
						mod = kv.ModRevision
					}
					txn.Compares = []store.Compare{{Key: key, ModRevision: mod}}
				}
				rev, err := s.Txn(ctx, txn)
				if store.IsConflict(err) {
					continue
				}
				if err != nil {
					t.Errorf("txn: %v", err)
					return
				}
				results <- applied{txn, rev}
			}
		})
	}
	wg.Wait()
	close(results)
	byRev := map[int64][]store.Txn{}
	var last int64
	for a := range results {
		byRev[a.rev] = append(byRev[a.rev], a.txn)
		last = max(last, a.rev)
	}
	if last == 0 {
		t.Fatal("no transaction succeeded")
	}

	// Collect the history up to the last revision.
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch, err := s.Watch(wctx, "m/", start)
	if err != nil {
		t.Fatal(err)
	}
	events := map[int64][]store.Event{}
	var seenRev int64
	for seenRev < last {
		select {
		case r, ok := <-ch:
			if !ok || r.Err != nil {
				t.Fatalf("watch ended at %d of %d: %v", seenRev, last, r.Err)
			}
			for _, e := range r.Events {
				if e.KV.ModRevision < seenRev {
					t.Fatalf("revision %d after %d", e.KV.ModRevision, seenRev)
				}
				seenRev = e.KV.ModRevision
				events[e.KV.ModRevision] = append(events[e.KV.ModRevision], e)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("history stopped at %d of %d", seenRev, last)
		}
	}

	model := map[string]string{}
	revs := make([]int64, 0, len(events))
	for rev := range events {
		revs = append(revs, rev)
	}
	slices.Sort(revs)
	for _, rev := range revs {
		evs := events[rev]
		sortEvents := func(e []store.Event) {
			slices.SortFunc(e, func(a, b store.Event) int { return strings.Compare(a.KV.Key, b.KV.Key) })
		}
		sortEvents(evs)
		// Several answers share a revision when all but one changed
		// nothing (deletes of missing keys): find the one that matches.
		matched := false
		for _, txn := range byRev[rev] {
			next := maps.Clone(model)
			var want []store.Event
			for _, op := range txn.Ops {
				prev, existed := next[op.Key]
				switch {
				case op.Type == store.OpPut:
					e := store.Event{Type: store.EventPut, KV: store.KV{Key: op.Key, Value: op.Value, ModRevision: rev}}
					if existed {
						e.PrevValue = []byte(prev)
					}
					want = append(want, e)
					next[op.Key] = string(op.Value)
				case existed:
					want = append(want, store.Event{Type: store.EventDelete, KV: store.KV{Key: op.Key, Value: []byte(prev), ModRevision: rev}, PrevValue: []byte(prev)})
					delete(next, op.Key)
				}
			}
			sortEvents(want)
			if slices.EqualFunc(want, evs, func(w, g store.Event) bool {
				return g.Type == w.Type && g.KV.Key == w.KV.Key && bytes.Equal(g.KV.Value, w.KV.Value) &&
					(g.PrevValue == nil) == (w.PrevValue == nil) && bytes.Equal(g.PrevValue, w.PrevValue)
			}) {
				model, matched = next, true
				break
			}
		}
		if !matched {
			t.Fatalf("revision %d: events %s match no transaction answered with that revision (%d of them)", rev, fmtEvents(evs), len(byRev[rev]))
		}
	}
	// Every reported revision that changed something is in the history.
	for rev, txnsAt := range byRev {
		if _, ok := events[rev]; !ok {
			for _, txn := range txnsAt {
				for _, op := range txn.Ops {
					if op.Type == store.OpPut {
						t.Fatalf("transaction at revision %d wrote %s but the history has nothing there", rev, op.Key)
					}
				}
			}
		}
	}
	final := listAll(t, s, "m/", store.ListOptions{Revision: last})
	if len(final.Items) != len(model) {
		t.Fatalf("list at %d has %d keys, model %d", last, len(final.Items), len(model))
	}
	for _, kv := range final.Items {
		if v, ok := model[kv.Key]; !ok || v != string(kv.Value) {
			t.Fatalf("list at %d: %s=%q, model has %q", last, kv.Key, kv.Value, v)
		}
	}
}
