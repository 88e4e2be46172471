package apiserver

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/meridian-platform/meridian/internal/store/backendtest"
)

// BenchmarkCreateGet measures an authenticated, authorised, audited create
// and a get through HTTP on bbolt.
func BenchmarkCreateGet(b *testing.B) {
	e := newEnv(b, backendtest.Bolt)
	tok := e.tenant("acme", "retail")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := e.do("POST", "/api/v1/namespaces/retail/originpools", tok, pool("retail", fmt.Sprintf("p%d", i)))
		if r.code != 201 {
			b.Fatalf("create: %d %s", r.code, r.body)
		}
		if r := e.do("GET", "/api/v1/namespaces/retail/originpools/"+fmt.Sprintf("p%d", i), tok, nil); r.code != 200 {
			b.Fatalf("get: %d", r.code)
		}
	}
}

// BenchmarkCreateConcurrent measures creates of 8 concurrent clients in
// one tenant (one audit chain), which the group commit batches.
func BenchmarkCreateConcurrent(b *testing.B) { benchCreateConcurrent(b, backendtest.Bolt) }

// benchCreateConcurrent is BenchmarkCreateConcurrent on the stores open
// opens.
func benchCreateConcurrent(b *testing.B, open storeOpener) {
	e := newEnv(b, open)
	tok := e.tenant("acme", "retail")
	var n atomic.Int64
	b.SetParallelism(4) // 8 clients on 2 CPUs
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			name := fmt.Sprintf("p%d", n.Add(1))
			if r := e.do("POST", "/api/v1/namespaces/retail/originpools", tok, pool("retail", name)); r.code != 201 {
				b.Errorf("create: %d %s", r.code, r.body)
				return
			}
		}
	})
}
