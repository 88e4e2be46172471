package waf

import (
	"net/netip"
	"os"
	"sort"
	"testing"
	"time"

	v1 "github.com/meridian-platform/meridian/api/v1"
)

// benignHeaders8 are the header fields of the wafstage benchmark (the
// real bench request: a browser's GET).
var benignHeaders8 = [][2]string{
	{"Host", "shop.example.com"},
	{"User-Agent", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"},
	{"Accept", "application/json, text/plain, */*"},
	{"Accept-Language", "en-US,en;q=0.9"},
	{"Accept-Encoding", "gzip, deflate, br"},
	{"Cookie", "session=3f2a9c1e77b04d1a; theme=dark"},
	{"Referer", "https://shop.example.com/catalog"},
	{"Connection", "keep-alive"},
}

// leanGET runs a benign GET through the lean transaction up to the
// response headers and returns it (decided by the fast path).
func leanGET(tb testing.TB, w *WAF, hdrs [][2]string) *Tx {
	tb.Helper()
	tx := w.NewTx("")
	tx.Connection(netip.MustParseAddrPort("198.51.100.7:40000"), netip.MustParseAddrPort("127.0.0.1:8080"))
	v := tx.RequestHeaders("GET", "/api/users?id=42&name=alice", "HTTP/1.1", "shop.example.com", func(add func(n, v string)) {
		for _, h := range hdrs {
			add(h[0], h[1])
		}
	})
	if v == nil {
		v = tx.RequestBody(nil, true)
	}
	if v != nil || !tx.Fast() {
		tb.Fatalf("benign GET not decided by the fast path (verdict %+v, fell back at %d)", v, tx.FellBackAt())
	}
	return tx
}

// benchChecks measures the detection checks alone (phases 1 and 2 of a
// benign GET on a lean transaction that already ran them).
func benchChecks(b *testing.B, hdrs [][2]string) {
	w := mustWAF(b, v1.AppFirewallSpec{})
	tx := leanGET(b, w, hdrs)
	defer tx.Close()
	st := tx.fpe.st // the state the checks of the request ran on
	b.ReportAllocs()
	cpu0 := cpuTime()
	for b.Loop() {
		e := w.fp.newEval(st)
		for _, ph := range []int{1, 2} {
			if ok, id := w.fp.noMatch(e, ph); !ok {
				b.Fatalf("phase %d: rule %d may match", ph, id)
			}
		}
		w.fp.freeEval(e)
	}
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
}

func BenchmarkChecksGET(b *testing.B)  { benchChecks(b, benignHeaders) }
func BenchmarkChecksGET8(b *testing.B) { benchChecks(b, benignHeaders8) }

// TestCheckCosts prints the costliest detection checks of the benign GET
// (MERIDIAN_CHECK_COSTS=1; a tool for tuning, not a judge).
func TestCheckCosts(t *testing.T) {
	if os.Getenv("MERIDIAN_CHECK_COSTS") == "" {
		t.Skip("set MERIDIAN_CHECK_COSTS=1")
	}
	w := mustWAF(t, v1.AppFirewallSpec{})
	tx := leanGET(t, w, benignHeaders8)
	defer tx.Close()
	st := tx.fpe.st // the state the checks of the request ran on
	type cost struct {
		id int
		d  time.Duration
	}
	costs := map[int]time.Duration{}
	const n = 2000
	for i := 0; i < n; i++ {
		e := w.fp.newEval(st)
		for _, ph := range []int{1, 2} {
			e.trace = func(id int, d time.Duration) { costs[id] += d }
			w.fp.noMatch(e, ph)
			e.trace = nil
		}
		w.fp.freeEval(e)
	}
	var cs []cost
	var total time.Duration
	for id, d := range costs {
		cs = append(cs, cost{id, d / n})
		total += d / n
	}
	sort.Slice(cs, func(i, j int) bool { return cs[i].d > cs[j].d })
	t.Logf("%d checks, %v per request (every check, reachable or not)", len(cs), total)
	for _, c := range cs[:min(40, len(cs))] {
		t.Logf("%6d %v", c.id, c.d)
	}
}
