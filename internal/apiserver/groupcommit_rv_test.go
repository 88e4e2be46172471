package apiserver

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/meridian-platform/meridian/internal/audit"
	"github.com/meridian-platform/meridian/internal/store/backendtest"
)

// evKey is one watch event as the client sees it.
type evKey struct{ typ, name, rv string }

func (k evKey) String() string { return k.typ + " " + k.name + "@" + k.rv }

func watchEvents(t *testing.T, ch <-chan watchLine, n int) []evKey {
	t.Helper()
	out := make([]evKey, 0, n)
	for len(out) < n {
		l := next(t, ch)
		if l.Type == "BOOKMARK" {
			continue
		}
		if l.Type == "ERROR" {
			t.Fatalf("watch error after %d events: %v", len(out), l.Object)
		}
		out = append(out, evKey{l.Type, fmt.Sprint(get(l.Object, "metadata.name")), fmt.Sprint(get(l.Object, "metadata.resourceVersion"))})
	}
	return out
}

// checkResume checks that events have distinct, increasing
// resourceVersions and that a watch resumed from the resourceVersion of
// event i (every step-th) yields exactly events i+1.. and then the
// sentinel written afterwards (so nothing extra, no wait for silence).
func checkResume(t *testing.T, e *env, tok, path string, evs []evKey, step int, sentinel func() evKey) {
	t.Helper()
	seen := map[string]bool{}
	for i, ev := range evs {
		if seen[ev.rv] {
			t.Fatalf("event %d (%s) shares resourceVersion %s with an earlier event", i, ev, ev.rv)
		}
		seen[ev.rv] = true
		if i > 0 && !rvLess(evs[i-1].rv, ev.rv) {
			t.Fatalf("events %d and %d out of order: %s, %s", i-1, i, evs[i-1], ev)
		}
	}
	end := sentinel()
	for i := 0; i < len(evs); i += step {
		ctx, cancel := context.WithCancel(context.Background())
		ch, res := e.openWatch(ctx, path+"?watch=true&resourceVersion="+evs[i].rv, tok)
		if res.StatusCode != 200 {
			cancel()
			t.Fatalf("watch from %s: %d", evs[i].rv, res.StatusCode)
		}
		want := append(append([]evKey(nil), evs[i+1:]...), end)
		got := watchEvents(t, ch, len(want))
		cancel()
		for j := range want {
			if got[j] != want[j] {
				t.Fatalf("watch resumed from event %d (%s): event %d is %s, want %s", i, evs[i], j, got[j], want[j])
			}
		}
	}
}

func rvLess(a, b string) bool { return len(a) < len(b) || len(a) == len(b) && a < b }

// testWatchResumeGroupCommit: concurrent creates that the group commit
// puts in one commit, and a cascade namespace delete of more objects than
// etcd takes in one transaction, give every object event its own
// resourceVersion: a watch resumed from ANY event's resourceVersion
// neither misses nor repeats one.
func testWatchResumeGroupCommit(t *testing.T, open storeOpener) {
	e := newEnv(t, open)
	tok := e.tenant("acme", "retail", "bulk")
	ns := "/api/v1/namespaces/retail/originpools"
	listRV := get(e.must(200, "GET", ns, tok, nil).obj(), "metadata.resourceVersion").(string)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, _ := e.openWatch(ctx, ns+"?watch=true&resourceVersion="+listRV, tok)

	const n = 24
	var wg sync.WaitGroup
	answers := make([]resp, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			answers[i] = e.do("POST", ns, tok, pool("retail", fmt.Sprintf("c%02d", i)))
		}()
	}
	wg.Wait()
	answered := map[string]string{}
	for i, a := range answers {
		if a.code != 201 {
			t.Fatalf("create %d: %d", i, a.code)
		}
		answered[fmt.Sprint(get(a.obj(), "metadata.name"))] = fmt.Sprint(get(a.obj(), "metadata.resourceVersion"))
	}
	evs := watchEvents(t, ch, n)
	cancel()
	// The resourceVersion a create answered is the one its event and a
	// GET show.
	for _, ev := range evs {
		if answered[ev.name] != ev.rv {
			t.Fatalf("%s: the create answered resourceVersion %s", ev, answered[ev.name])
		}
		if got := fmt.Sprint(get(e.must(200, "GET", ns+"/"+ev.name, tok, nil).obj(), "metadata.resourceVersion")); got != ev.rv {
			t.Fatalf("%s: GET shows resourceVersion %s", ev, got)
		}
	}
	k := 0
	checkResume(t, e, tok, ns, evs, 1, func() evKey {
		k++
		r := e.must(201, "POST", ns, tok, pool("retail", fmt.Sprintf("sentinel%d", k)))
		return evKey{"ADDED", fmt.Sprintf("sentinel%d", k), get(r.obj(), "metadata.resourceVersion").(string)}
	})

	// Cascade: 140 pools (some with history, one referenced by a load
	// balancer in the namespace) deleted with their namespace.
	const m = 140
	bulk := "/api/v1/namespaces/bulk/"
	sem := make(chan struct{}, 8)
	for i := 0; i < m; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if r := e.do("POST", bulk+"originpools", tok, pool("bulk", fmt.Sprintf("p%03d", i))); r.code != 201 {
				t.Errorf("create p%03d: %d %s", i, r.code, r.body)
			}
		}()
	}
	wg.Wait()
	for g := 0; g < 3; g++ {
		e.must(200, "PATCH", bulk+"originpools/p000", tok, fmt.Sprintf(`{"metadata":{"labels":{"g":"%d"}}}`, g))
	}
	e.must(201, "POST", bulk+"httploadbalancers", tok, lb("bulk", "front", "p001", "p002"))
	allPools := "/api/v1/originpools"
	rv := get(e.must(200, "GET", allPools, tok, nil).obj(), "metadata.resourceVersion").(string)
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	ch, _ = e.openWatch(ctx, allPools+"?watch=true&resourceVersion="+rv, tok)
	e.must(200, "DELETE", "/api/v1/namespaces/bulk?cascade=true", tok, nil)
	evs = watchEvents(t, ch, m)
	cancel()
	names := map[string]bool{}
	for _, ev := range evs {
		if ev.typ != "DELETED" || names[ev.name] || !strings.HasPrefix(ev.name, "p") {
			t.Fatalf("cascade event %s (seen %v)", ev, names[ev.name])
		}
		names[ev.name] = true
	}
	e.must(404, "GET", "/api/v1/namespaces/bulk", tok, nil)
	if items := e.must(200, "GET", bulk+"httploadbalancers", tok, nil).obj()["items"]; items != nil && len(items.([]any)) != 0 {
		t.Fatalf("load balancers left: %v", items)
	}
	checkResume(t, e, tok, allPools, evs, 23, func() evKey {
		k++
		r := e.must(201, "POST", ns, tok, pool("retail", fmt.Sprintf("sentinel%d", k)))
		return evKey{"ADDED", fmt.Sprintf("sentinel%d", k), get(r.obj(), "metadata.resourceVersion").(string)}
	})
	// One audit record per deleted object, and the chain verifies.
	var recs struct{ Items []audit.Record }
	_ = json.Unmarshal(e.must(200, "GET", "/api/v1/auditrecords?verb=delete&kind=OriginPool&namespace=bulk&limit=1000", tok, nil).body, &recs)
	if len(recs.Items) != m {
		t.Fatalf("%d delete records for the cascade, want %d", len(recs.Items), m)
	}
	var rep audit.Report
	_ = json.Unmarshal(e.must(200, "POST", "/api/v1/audit/verify", tok, nil).body, &rep)
	if !rep.OK {
		t.Fatalf("audit chain after the cascade: %+v", rep)
	}
}

func TestWatchResumeGroupCommitOnBolt(t *testing.T) { testWatchResumeGroupCommit(t, backendtest.Bolt) }

// TestStoreFixesOnEtcd runs this file's and rbaccache_test.go's tests on
// one in-process etcd.
func TestStoreFixesOnEtcd(t *testing.T) {
	if testing.Short() {
		t.Skip("etcd skipped in -short mode")
	}
	open := openEtcdT(t)
	t.Run("WatchResumeGroupCommit", func(t *testing.T) { testWatchResumeGroupCommit(t, open) })
	t.Run("RBACCacheRevoke", func(t *testing.T) { testRBACCacheRevoke(t, open) })
	t.Run("BigWrites", func(t *testing.T) { testBigWrites(t, open, true) })
}
