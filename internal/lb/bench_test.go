package lb

import (
	"strconv"
	"testing"
)

func benchPool(b *testing.B, alg Algorithm, n int, weighted bool) *Pool {
	b.Helper()
	r, _ := newTestRegistry(b, RegistryOptions{})
	ws := make([]int, n)
	for i := range ws {
		ws[i] = 1
		if weighted {
			ws[i] = 1 + i%5
		}
	}
	return mustPool(b, r, PoolConfig{Algorithm: alg, Endpoints: endpoints(addrs(n), ws...)})
}

// BenchmarkPick measures one Pick (plus Begin/End for leastRequest's
// counters) per operation; it must report 0 allocs/op.
func BenchmarkPick(b *testing.B) {
	for _, alg := range allAlgorithms {
		for _, n := range []int{3, 100} {
			for _, weighted := range []bool{false, true} {
				name := string(alg) + "/" + strconv.Itoa(n)
				if weighted {
					name += "/weighted"
				}
				b.Run(name, func(b *testing.B) {
					p := benchPool(b, alg, n, weighted)
					b.ReportAllocs()
					h := uint64(0)
					for b.Loop() {
						h += 0x9e3779b97f4a7c15
						e, err := p.Pick(h, nil)
						if err != nil {
							b.Fatal(err)
						}
						_ = e
					}
				})
			}
		}
	}
}

// BenchmarkPickParallel is Pick with request accounting from all CPUs.
func BenchmarkPickParallel(b *testing.B) {
	for _, alg := range allAlgorithms {
		b.Run(string(alg), func(b *testing.B) {
			p := benchPool(b, alg, 10, true)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				h := uint64(0)
				for pb.Next() {
					h += 0x9e3779b97f4a7c15
					e, err := p.Pick(h, nil)
					if err != nil {
						b.Fatal(err)
					}
					e.Begin()
					e.End(Result{Status: 200})
				}
			})
		})
	}
}

// BenchmarkPickRetry is a retry Pick that excludes the failed endpoint with
// a third of the pool unhealthy.
func BenchmarkPickRetry(b *testing.B) {
	for _, alg := range allAlgorithms {
		b.Run(string(alg), func(b *testing.B) {
			p := benchPool(b, alg, 9, false)
			eps := p.Endpoints()
			for i := 0; i < 3; i++ {
				setHealth(p, eps[i*3], HealthUnhealthy)
			}
			ex := eps[1]
			b.ReportAllocs()
			h := uint64(0)
			for b.Loop() {
				h += 0x9e3779b97f4a7c15
				if _, err := p.Pick(h, ex); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkBreakerAcquireRelease(b *testing.B) {
	p := benchPool(b, RoundRobin, 3, false)
	if err := p.reg.Update(b.Context(), []PoolConfig{{ID: p.ID(), Endpoints: endpoints(addrs(3)), Breaker: &BreakerConfig{MaxRequests: 1 << 30}}}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := p.Acquire(); err != nil {
			b.Fatal(err)
		}
		p.Release()
	}
}

func BenchmarkHashString(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = HashString("203.0.113.77")
	}
}
