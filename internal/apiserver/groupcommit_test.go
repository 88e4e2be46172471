package apiserver

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meridian-platform/meridian/internal/audit"
	"github.com/meridian-platform/meridian/internal/store"
	"github.com/meridian-platform/meridian/internal/store/backendtest"
)

// testGroupCommit drives one console with concurrent writes of one tenant,
// which its group commit puts in shared transactions: every write gets the
// answer it would get alone and the audit chain has one record per write.
func testGroupCommit(t *testing.T, open storeOpener) {
	e := newEnv(t, open)
	tok := e.tenant("acme", "retail")
	ns := "/api/v1/namespaces/retail/"
	auditLog := e.srv.opts.Audit.(*audit.Log)

	// N concurrent creates (and standalone audit appends racing them on
	// the head) all succeed, the chain verifies, and a watch sees each
	// once, in revision order.
	const n = 24
	listRV := get(e.must(200, "GET", ns+"originpools", tok, nil).obj(), "metadata.resourceVersion").(string)
	wctx, stopWatch := context.WithCancel(context.Background())
	defer stopWatch()
	events, _ := e.openWatch(wctx, ns+"originpools?watch=true&resourceVersion="+listRV, tok)
	codes := make([]int, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i] = e.do("POST", ns+"originpools", tok, pool("retail", fmt.Sprintf("c%d", i))).code
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 4; i++ {
			if _, err := auditLog.Append(context.Background(), "acme", audit.Record{Principal: "system/test", Verb: "note"}); err != nil {
				t.Error(err)
			}
		}
	}()
	wg.Wait()
	for i, c := range codes {
		if c != 201 {
			t.Fatalf("create %d: %d", i, c)
		}
	}
	seen := map[string]bool{}
	lastRV := int64(0)
	for i := 0; i < n; i++ {
		ev := next(t, events)
		name, _ := get(ev.Object, "metadata.name").(string)
		rv, _ := strconv.ParseInt(fmt.Sprint(get(ev.Object, "metadata.resourceVersion")), 10, 64)
		if ev.Type != "ADDED" || seen[name] || rv < lastRV {
			t.Fatalf("watch event %d: %s %s at %d after %d (seen %v)", i, ev.Type, name, rv, lastRV, seen[name])
		}
		seen[name], lastRV = true, rv
	}
	stopWatch()
	// The tenant's committer goes once its queue is empty.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		e.srv.group.mu.Lock()
		left := len(e.srv.group.queues)
		e.srv.group.mu.Unlock()
		if left == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d tenant committers still running after their writes", left)
		}
	}
	var recs struct{ Items []audit.Record }
	_ = json.Unmarshal(e.must(200, "GET", "/api/v1/auditrecords?kind=OriginPool&verb=create&limit=1000", tok, nil).body, &recs)
	if len(recs.Items) != n {
		t.Fatalf("%d create records, want %d", len(recs.Items), n)
	}
	var rep audit.Report
	_ = json.Unmarshal(e.must(200, "POST", "/api/v1/audit/verify", tok, nil).body, &rep)
	if !rep.OK {
		t.Fatalf("verify after concurrent creates: %+v", rep)
	}

	// Two updates of one object pinned to the same resourceVersion: one
	// wins, the other is told the object changed.
	for round := 0; round < 5; round++ {
		cur := e.must(200, "GET", ns+"originpools/c0", tok, nil).obj()
		rv := get(cur, "metadata.resourceVersion").(string)
		res := make([]resp, 2)
		for i := range res {
			wg.Add(1)
			go func() {
				defer wg.Done()
				o := pool("retail", "c0")
				o["metadata"].(map[string]any)["resourceVersion"] = rv
				o["metadata"].(map[string]any)["labels"] = map[string]any{"writer": strconv.Itoa(i)}
				res[i] = e.do("PUT", ns+"originpools/c0", tok, o)
			}()
		}
		wg.Wait()
		if c0, c1 := res[0].code, res[1].code; !(c0 == 200 && c1 == 409 || c0 == 409 && c1 == 200) {
			t.Fatalf("round %d: same resourceVersion updates answered %d %s and %d %s", round, c0, res[0].body, c1, res[1].body)
		}
	}

	// A pool delete against a load balancer create naming it, on one
	// console: never both.
	const m = 16
	for i := 0; i < m; i++ {
		e.must(201, "POST", ns+"originpools", tok, pool("retail", fmt.Sprintf("x%d", i)))
	}
	dels, cres := make([]resp, m), make([]resp, m)
	for i := 0; i < m; i++ {
		p := fmt.Sprintf("x%d", i)
		wg.Add(2)
		go func() { defer wg.Done(); dels[i] = e.do("DELETE", ns+"originpools/"+p, tok, nil) }()
		go func() { defer wg.Done(); cres[i] = e.do("POST", ns+"httploadbalancers", tok, lb("retail", "l"+p, p)) }()
	}
	wg.Wait()
	for i := 0; i < m; i++ {
		p := fmt.Sprintf("x%d", i)
		if dels[i].code == 200 && cres[i].code == 201 {
			t.Fatalf("%s: both the delete and the referring create succeeded", p)
		}
		poolExists := e.do("GET", ns+"originpools/"+p, tok, nil).code == 200
		lbExists := e.do("GET", ns+"httploadbalancers/l"+p, tok, nil).code == 200
		if (dels[i].code == 200) == poolExists || (cres[i].code == 201) != lbExists || (lbExists && !poolExists) {
			t.Fatalf("%s: delete %d %s, create %d %s, pool %v, lb %v", p, dels[i].code, dels[i].body, cres[i].code, cres[i].body, poolExists, lbExists)
		}
	}
	_ = json.Unmarshal(e.must(200, "POST", "/api/v1/audit/verify", tok, nil).body, &rep)
	if !rep.OK {
		t.Fatalf("verify at the end: %+v", rep)
	}
}

// putPlan builds the plan of a pinned update of an existing object to val.
func putPlan(t *testing.T, s *Server, tenant, kind, ns, name string, want int64, val []byte) *pendingWrite {
	t.Helper()
	info := s.byKind[kind]
	ref := objRef{Plural: info.Plural, Namespace: ns, Name: name}
	ctx := context.Background()
	old, kv, err := s.loadObject(ctx, tenant, info, ref)
	if err != nil {
		t.Fatal(err)
	}
	obj := info.New()
	if err := json.Unmarshal(val, obj); err != nil {
		t.Fatal(err)
	}
	p := &writePlan{verb: "update", info: info, tenant: tenant, ref: ref, obj: obj, old: old, oldKV: kv, objCmp: want, pinned: true, stored: val}
	p.cmp(kv.Key, want)
	p.put(kv.Key, val)
	rec, err := s.auditRecord(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	return &pendingWrite{ctx: ctx, p: p, rec: rec, done: make(chan commitResult, 1)}
}

func relabel(t *testing.T, kv store.KV, label string) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(kv.Value, &m); err != nil {
		t.Fatal(err)
	}
	m["metadata"].(map[string]any)["labels"] = map[string]any{"l": label}
	b, _ := json.Marshal(m)
	return b
}

var boltLimits = batchLimits{plans: maxBatchPlans, ops: maxBatchOps, bytes: maxBatchBytes}

// The batcher itself: plans that touch the same object go to different
// batches; in one batch, a plan whose compare fails gets its own answer
// and the others are written together, each at its own revision, with
// their records chained.
func TestGroupCommitBatches(t *testing.T) {
	e := newEnv(t, backendtest.Bolt)
	tok := e.tenant("acme", "retail")
	ns := "/api/v1/namespaces/retail/"
	ctx := context.Background()
	for _, n := range []string{"a", "b", "c"} {
		e.must(201, "POST", ns+"originpools", tok, pool("retail", n))
	}
	s := e.srv
	kvOf := func(name string) store.KV {
		kv, err := e.st.Get(ctx, objKey("acme", objRef{Plural: "originpools", Namespace: "retail", Name: name}))
		if err != nil {
			t.Fatal(err)
		}
		return kv
	}
	answer := func(w *pendingWrite) commitResult {
		select {
		case r := <-w.done:
			return r
		default:
			t.Fatalf("%s %q: no answer", w.p.verb, w.p.ref.Name)
			return commitResult{}
		}
	}
	before, err := s.opts.Audit.Verify(ctx, "acme")
	if err != nil || !before.OK {
		t.Fatalf("verify: %+v %v", before, err)
	}

	// Same object twice: the second waits for the next batch, then loses
	// on the resourceVersion both read.
	a := kvOf("a")
	w1 := putPlan(t, s, "acme", "OriginPool", "retail", "a", a.ModRevision, relabel(t, a, "one"))
	w2 := putPlan(t, s, "acme", "OriginPool", "retail", "a", a.ModRevision, relabel(t, a, "two"))
	batch, rest := selectBatch([]*pendingWrite{w1, w2}, boltLimits)
	if len(batch) != 1 || batch[0] != w1 || len(rest) != 1 || rest[0] != w2 {
		t.Fatalf("same object: batch %d, rest %d", len(batch), len(rest))
	}
	s.commitBatch("acme", batch)
	if r := answer(w1); r.err != nil || r.rev == 0 {
		t.Fatalf("first update: %+v", r)
	}
	s.commitBatch("acme", rest)
	if r := answer(w2); toAPIError(r.err).code != http.StatusConflict {
		t.Fatalf("second update: %+v", r)
	}

	// Three objects, one pinned to a stale version: two written in one
	// commit at consecutive revisions, the stale one refused.
	b, c := kvOf("b"), kvOf("c")
	a = kvOf("a")
	ws := []*pendingWrite{
		putPlan(t, s, "acme", "OriginPool", "retail", "a", a.ModRevision, relabel(t, a, "x")),
		putPlan(t, s, "acme", "OriginPool", "retail", "b", b.ModRevision-1, relabel(t, b, "x")),
		putPlan(t, s, "acme", "OriginPool", "retail", "c", c.ModRevision, relabel(t, c, "x")),
	}
	batch, rest = selectBatch(ws, boltLimits)
	if len(batch) != 3 || len(rest) != 0 {
		t.Fatalf("distinct objects: batch %d, rest %d", len(batch), len(rest))
	}
	s.commitBatch("acme", batch)
	ra, rb, rc := answer(ws[0]), answer(ws[1]), answer(ws[2])
	if ra.err != nil || rc.err != nil || ra.rev == 0 || rc.rev != ra.rev+1 {
		t.Fatalf("the good plans: %+v %+v", ra, rc)
	}
	if toAPIError(rb.err).code != http.StatusConflict {
		t.Fatalf("the stale plan: %+v", rb)
	}
	if got := kvOf("a"); got.ModRevision != ra.rev {
		t.Fatalf("a at %d, want %d", got.ModRevision, ra.rev)
	}
	if got := kvOf("b"); got.ModRevision != b.ModRevision {
		t.Fatal("the refused plan was written")
	}
	after, err := s.opts.Audit.Verify(ctx, "acme")
	if err != nil || !after.OK || after.Records != before.Records+3 {
		t.Fatalf("verify: %+v (before %d records) %v", after, before.Records, err)
	}
	res, err := s.opts.Audit.List(ctx, "acme", audit.Filter{Verb: "update"})
	if err != nil || len(res.Items) != 3 {
		t.Fatalf("update records: %d %v", len(res.Items), err)
	}
	if l := res.Items[1:]; l[0].Name != "a" || l[1].Name != "c" || l[1].Seq != l[0].Seq+1 || l[1].PrevHash != l[0].Hash {
		t.Fatalf("batched records: %+v", l)
	}

	// A plan the store refuses for another reason than a conflict (here a
	// key too long for bbolt) fails alone: the batch is retried plan by
	// plan.
	a, b = kvOf("a"), kvOf("b")
	bad := putPlan(t, s, "acme", "OriginPool", "retail", "c", kvOf("c").ModRevision, relabel(t, kvOf("c"), "y"))
	bad.p.put("/x/"+strings.Repeat("k", 40000), []byte("v"))
	ws = []*pendingWrite{
		putPlan(t, s, "acme", "OriginPool", "retail", "a", a.ModRevision, relabel(t, a, "y")),
		bad,
		putPlan(t, s, "acme", "OriginPool", "retail", "b", b.ModRevision, relabel(t, b, "y")),
	}
	batch, _ = selectBatch(ws, boltLimits)
	s.commitBatch("acme", batch)
	ra, rbad, rb := answer(ws[0]), answer(bad), answer(ws[2])
	if ra.err != nil || rb.err != nil || toAPIError(rbad.err).code != http.StatusInternalServerError {
		t.Fatalf("store error in a batch: %+v %+v %+v", ra, rbad, rb)
	}
	if v, err := s.opts.Audit.Verify(ctx, "acme"); err != nil || !v.OK || v.Records != after.Records+2 {
		t.Fatalf("verify after a refused plan: %+v %v", v, err)
	}

	// Keys a batch may share: the same guard touched by several creates.
	// Keys it may not: a compare on a key another plan writes.
	g := guardKey("acme", objRef{Plural: "namespaces", Name: "retail"})
	touch := func(extra ...store.Compare) *pendingWrite {
		p := &writePlan{txn: store.Txn{Ops: []store.Op{store.Put(g, []byte("x"))}, Compares: extra}}
		return &pendingWrite{ctx: ctx, p: p, done: make(chan commitResult, 1)}
	}
	batch, rest = selectBatch([]*pendingWrite{touch(), touch(), touch(store.Compare{Key: g, ModRevision: 1})}, boltLimits)
	if len(batch) != 2 || len(rest) != 1 {
		t.Fatalf("guard touches: batch %d, rest %d", len(batch), len(rest))
	}
	if ts := batchTxns(batch, nil, nil); len(ts) != 2 || len(ts[0].Ops) != 1 || store.ValidateBatch(ts) != nil {
		t.Fatalf("guard touches: %+v", ts)
	}
}

// The audit digests are of the stored bytes on both sides: the record of
// an update starts from the digest the previous record ended with.
func TestAuditDigestsChainPerObject(t *testing.T) {
	e := newEnv(t, backendtest.Bolt)
	tok := e.tenant("acme", "retail")
	ns := "/api/v1/namespaces/retail/"
	ctx := context.Background()
	e.must(201, "POST", ns+"originpools", tok, pool("retail", "a"))
	e.must(200, "PATCH", ns+"originpools/a", tok, `{"metadata":{"labels":{"x":"1"}}}`)
	e.must(200, "PATCH", ns+"originpools/a", tok, `{"spec":{"loadBalancing":"random"}}`)
	e.must(200, "DELETE", ns+"originpools/a", tok, nil)
	res, err := e.srv.opts.Audit.List(ctx, "acme", audit.Filter{Kind: "OriginPool", Name: "a"})
	if err != nil || len(res.Items) != 4 {
		t.Fatalf("records: %d %v", len(res.Items), err)
	}
	r := res.Items
	if r[0].BeforeDigest != "" || r[0].AfterDigest == "" || r[3].AfterDigest != "" {
		t.Fatalf("create/delete digests: %+v %+v", r[0], r[3])
	}
	for i := 1; i < len(r); i++ {
		if r[i].BeforeDigest != r[i-1].AfterDigest {
			t.Fatalf("record %d (%s) starts from %s, the previous one ended at %s", i, r[i].Verb, r[i].BeforeDigest, r[i-1].AfterDigest)
		}
	}
	// And the digest is of what the store holds.
	e.must(201, "POST", ns+"originpools", tok, pool("retail", "b"))
	kv, err := e.st.Get(ctx, objKey("acme", objRef{Plural: "originpools", Namespace: "retail", Name: "b"}))
	if err != nil {
		t.Fatal(err)
	}
	want, _ := e.srv.opts.Audit.Digest(ctx, "acme", kv.Value)
	res, _ = e.srv.opts.Audit.List(ctx, "acme", audit.Filter{Kind: "OriginPool", Name: "b"})
	if len(res.Items) != 1 || res.Items[0].AfterDigest != want {
		t.Fatalf("create of b: %+v, want after-digest %s", res.Items, want)
	}
}
