package storetest

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meridian-platform/meridian/internal/store"
)

// Bench runs the store benchmarks: transaction latency one at a time and
// from parallel writers (where group commit shows), and paged lists.
func Bench(b *testing.B, open func(b *testing.B) store.Store) {
	value := make([]byte, 512)
	b.Run("TxnSerial", func(b *testing.B) {
		s := open(b)
		ctx := context.Background()
		b.ReportAllocs()
		var lat latencies
		for i := 0; b.Loop(); i++ {
			t0 := time.Now()
			if _, err := s.Txn(ctx, store.Txn{Ops: []store.Op{store.Put("bench/"+strconv.Itoa(i%1000), value)}}); err != nil {
				b.Fatal(err)
			}
			lat.add(time.Since(t0))
		}
		lat.report(b)
	})
	b.Run("TxnParallelCAS", func(b *testing.B) {
		s := open(b)
		ctx := context.Background()
		var n atomic.Int64
		var mu sync.Mutex
		var lat latencies
		b.SetParallelism(8)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			var mine latencies
			for pb.Next() {
				key := "bench/p" + strconv.FormatInt(n.Add(1), 10)
				t0 := time.Now()
				_, err := s.Txn(ctx, store.Txn{
					Compares: []store.Compare{{Key: key, ModRevision: 0}},
					Ops:      []store.Op{store.Put(key, value), store.Put(key+"/audit", value)},
				})
				if err != nil {
					b.Error(err)
					return
				}
				mine.add(time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		})
		lat.report(b)
	})
	for _, size := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("ListPage100of%d", size), func(b *testing.B) {
			s := open(b)
			ctx := context.Background()
			for i := 0; i < size; i += 100 {
				ops := make([]store.Op, 0, 100)
				for j := i; j < i+100; j++ {
					ops = append(ops, store.Put(fmt.Sprintf("list/%06d", j), value))
				}
				if _, err := s.Txn(ctx, store.Txn{Ops: ops}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			after := ""
			for b.Loop() {
				res, err := s.List(ctx, "list/", store.ListOptions{Limit: 100, After: after})
				if err != nil {
					b.Fatal(err)
				}
				after = ""
				if res.More {
					after = res.Items[len(res.Items)-1].Key
				}
			}
		})
	}
}

type latencies []time.Duration

func (l *latencies) add(d time.Duration) { *l = append(*l, d) }

// report adds p50 and p99 latency (in ms) to the benchmark's output.
func (l latencies) report(b *testing.B) {
	if len(l) == 0 {
		return
	}
	slices.Sort(l)
	at := func(q float64) float64 {
		return float64(l[min(len(l)-1, int(q*float64(len(l))))].Microseconds()) / 1000
	}
	b.ReportMetric(at(0.50), "p50-ms")
	b.ReportMetric(at(0.99), "p99-ms")
}
