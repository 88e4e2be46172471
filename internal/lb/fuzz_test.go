package lb

import (
	"context"
	"errors"
	"testing"
)

// FuzzPick builds a pool from fuzz bytes (algorithm, weights, endpoint
// states, panic threshold) and checks Pick's contract: it returns an
// endpoint of the pool, never an unavailable one outside panic mode, avoids
// the excluded endpoint when another is usable, and fails only when nothing
// is usable.
func FuzzPick(f *testing.F) {
	f.Add([]byte{0, 3, 1, 1, 1, 0, 0, 0}, uint64(1), uint8(0), int8(0))
	f.Add([]byte{1, 4, 1, 2, 3, 4, 1, 2, 0, 3}, uint64(99), uint8(2), int8(-1))
	f.Add([]byte{3, 5, 9, 1, 1, 7, 2, 1, 1, 1, 1, 1}, uint64(1<<63), uint8(4), int8(80))
	f.Add([]byte{4, 2, 200, 1, 3, 3}, uint64(12345), uint8(1), int8(100))
	f.Add([]byte{2, 1, 5, 0}, uint64(0), uint8(0), int8(-5))
	f.Fuzz(func(t *testing.T, data []byte, hash uint64, excludeIdx uint8, panicPct int8) {
		if len(data) < 2 {
			return
		}
		alg := allAlgorithms[int(data[0])%len(allAlgorithms)]
		n := int(data[1]) % 12
		data = data[2:]
		ws := make([]int, n)
		states := make([]byte, n)
		for i := range ws {
			ws[i] = 1
			if i < len(data) {
				ws[i] = 1 + int(data[i])%50
			}
			if j := n + i; j < len(data) {
				states[i] = data[j] % 4
			}
		}
		pct := int(panicPct)
		if pct > 100 {
			pct = 100
		}
		r := NewRegistry(RegistryOptions{Logger: discardLogger()})
		defer r.Close()
		cfg := PoolConfig{ID: "f", Algorithm: alg, Endpoints: endpoints(addrs(n), ws...), PanicThresholdPercent: pct, MaglevTableSize: 1009, MinRingSize: 64}
		if err := r.Update(context.Background(), []PoolConfig{cfg}); err != nil {
			t.Fatal(err)
		}
		p := r.Pool("f")
		eps := p.Endpoints()
		p.mu.Lock()
		for i, e := range eps {
			if states[i]&1 != 0 {
				p.setHealthLocked(e, HealthUnhealthy)
			}
			if states[i]&2 != 0 {
				e.flags.Or(flagEjected)
			}
		}
		p.recountLocked()
		p.mu.Unlock()
		var exclude *Endpoint
		if n > 0 && excludeIdx%2 == 1 {
			exclude = eps[int(excludeIdx/2)%n]
		}
		avail := 0
		for _, e := range eps {
			if e.Available() {
				avail++
			}
		}
		effPct := pct
		if effPct == 0 {
			effPct = DefaultPanicThresholdPercent
		}
		panicMode := effPct > 0 && avail*100 < effPct*n
		usable := avail
		if panicMode {
			usable = n
		}
		for k := 0; k < 8; k++ {
			e, err := p.Pick(hash+uint64(k)*0x9e3779b97f4a7c15, exclude)
			if usable == 0 {
				if !errors.Is(err, ErrNoHealthyEndpoint) {
					t.Fatalf("nothing usable but Pick gave %v, %v", e, err)
				}
				continue
			}
			if err != nil {
				t.Fatalf("Pick failed with %d usable endpoints: %v", usable, err)
			}
			if p.ByID(e.ID()) != e {
				t.Fatalf("picked endpoint %s not in the pool", e.Addr())
			}
			if !panicMode && !e.Available() {
				t.Fatalf("picked unavailable %s outside panic mode", e.Addr())
			}
			others := usable
			if exclude != nil && (panicMode || exclude.Available()) {
				others--
			}
			if e == exclude && others > 0 {
				t.Fatalf("picked the excluded endpoint with %d others usable", others)
			}
		}
	})
}
