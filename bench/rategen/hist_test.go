package main

import (
	"bytes"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestBuckets(t *testing.T) {
	prevEnd := int64(0)
	for i := range nBuckets {
		low, width := bucketRange(i)
		if low != prevEnd {
			t.Fatalf("bucket %d starts at %d, the previous one ends at %d", i, low, prevEnd)
		}
		if width > 1 && float64(width) > float64(low)/subBuckets {
			t.Fatalf("bucket %d: width %d for values from %d", i, width, low)
		}
		for _, v := range []int64{low, low + width - 1} {
			if got := bucketOf(v); got != i {
				t.Fatalf("value %d in bucket %d, want %d", v, got, i)
			}
		}
		prevEnd = low + width
	}
	if prevEnd != maxValue+1 {
		t.Fatalf("the buckets end at %d, want %d", prevEnd, int64(maxValue)+1)
	}
	if bucketOf(-5) != 0 || bucketOf(math.MaxInt64) != nBuckets-1 {
		t.Fatal("values out of range are not clamped to the first and last buckets")
	}
}

// TestQuantiles compares the histogram's quantiles with those of the
// sorted values: within a bucket's half width (1/256 of the value).
func TestQuantiles(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	dists := map[string]func() int64{
		"log-uniform 1µs-10s": func() int64 { return int64(math.Exp(rng.Float64()*math.Log(1e7)) * 1e3) },
		"narrow around 250µs": func() int64 { return 250_000 + rng.Int64N(20_000) },
		"bimodal with a tail": func() int64 {
			switch r := rng.Float64(); {
			case r < 0.9:
				return 100_000 + rng.Int64N(50_000)
			case r < 0.995:
				return 5_000_000 + rng.Int64N(10_000_000)
			default:
				return 200_000_000 + rng.Int64N(800_000_000)
			}
		},
		"small ns values": func() int64 { return rng.Int64N(300) },
	}
	for name, draw := range dists {
		for _, n := range []int{1, 7, 1000, 100_000} {
			var h histogram
			vals := make([]int64, n)
			for i := range vals {
				vals[i] = draw()
				h.record(vals[i])
			}
			slices.Sort(vals)
			for _, q := range []float64{0, 0.1, 0.5, 0.9, 0.99, 0.999, 1} {
				rank := int(math.Ceil(q * float64(n)))
				want := vals[max(rank, 1)-1]
				got := h.quantile(q)
				if math.Abs(float64(got-want)) > float64(want)/256+1 {
					t.Errorf("%s, %d values: quantile %v = %d, want %d", name, n, q, got, want)
				}
			}
			if h.min != vals[0] || h.max != vals[n-1] || h.n != uint64(n) {
				t.Errorf("%s: min %d max %d n %d, want %d %d %d", name, h.min, h.max, h.n, vals[0], vals[n-1], n)
			}
		}
	}
	var empty histogram
	if empty.quantile(0.99) != 0 || empty.mean() != 0 {
		t.Error("an empty histogram's quantiles and mean are not 0")
	}
}

func TestMerge(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var all, a, b histogram
	for i := range 10_000 {
		v := rng.Int64N(50_000_000)
		all.record(v)
		if i%3 == 0 {
			a.record(v)
		} else {
			b.record(v)
		}
	}
	a.merge(&b)
	if a.counts != all.counts || a.n != all.n || a.min != all.min || a.max != all.max {
		t.Fatal("merging two halves differs from recording everything")
	}
}

func TestRecordAllocatesNothing(t *testing.T) {
	var h histogram
	if n := testing.AllocsPerRun(1000, func() { h.record(123_456) }); n != 0 {
		t.Fatalf("%v allocations per record", n)
	}
}

func TestResultFile(t *testing.T) {
	r := &result{url: "http://127.0.0.1:1/x", rate: 2500, conns: 8, window: time.Second, span: 1100 * time.Millisecond,
		sent: 2500, ok: 2400, non2xx: 90, errors: 10, timeouts: 4, connErrs: 1, all: 3000, cpu: 42 * time.Millisecond,
		firstErr: "reading the response: connection reset by peer"}
	rng := rand.New(rand.NewPCG(5, 6))
	for range 2490 {
		r.lat.record(rng.Int64N(10_000_000))
		r.lag.record(rng.Int64N(100_000))
		r.svc.record(rng.Int64N(5_000_000))
	}
	var buf bytes.Buffer
	if err := writeResult(&buf, r); err != nil {
		t.Fatal(err)
	}
	got, err := readResult(bytes.NewReader(buf.Bytes()), "r1")
	if err != nil {
		t.Fatal(err)
	}
	if summary(got) != summary(r) || got.firstErr != r.firstErr || got.lat.counts != r.lat.counts || got.lag.counts != r.lag.counts || got.svc.counts != r.svc.counts {
		t.Fatalf("read back:\n%s\nwrote:\n%s", summary(got), summary(r))
	}
	var twice result
	twice.merge(got)
	twice.merge(r)
	if twice.sent != 5000 || twice.lat.n != 2*r.lat.n || twice.lat.quantile(0.99) != r.lat.quantile(0.99) || twice.achieved() != r.achieved() {
		t.Fatalf("merged with itself: %s", summary(&twice))
	}

	good := buf.String()
	for _, bad := range []struct{ name, text, want string }{
		{"empty", "", "empty"},
		{"not a result", "hello\n", "not a rategen result"},
		{"unknown key", good + "color blue\n", `unknown key "color"`},
		{"bad count", strings.Replace(good, "\nsent 2500\n", "\nsent many\n", 1), "sent:"},
		{"bucket out of range", good + "lat 99999 1\n", "bucket 99999 out of range"},
		{"buckets disagree", good + "lat 5 1\n", "histogram buckets hold"},
	} {
		_, err := readResult(strings.NewReader(bad.text), "f")
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%s: error %v, want one with %q", bad.name, err, bad.want)
		}
	}
}
