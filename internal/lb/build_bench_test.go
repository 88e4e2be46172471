package lb

import (
	"context"
	"testing"
)

// BenchmarkUpdate measures re-applying an unchanged configuration (the
// common case of a push that changes something else).
func BenchmarkUpdate(b *testing.B) {
	for _, alg := range allAlgorithms {
		b.Run(string(alg), func(b *testing.B) {
			r, _ := newTestRegistry(b, RegistryOptions{})
			cfg := PoolConfig{ID: "p", Algorithm: alg, Endpoints: endpoints(addrs(20), 1, 2, 3)}
			b.ReportAllocs()
			for b.Loop() {
				if err := r.Update(context.Background(), []PoolConfig{cfg}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
