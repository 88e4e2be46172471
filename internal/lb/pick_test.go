package lb

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"testing"
)

var allAlgorithms = []Algorithm{RoundRobin, LeastRequest, Random, RingHash, Maglev}

func TestPickDistributionHonoursWeights(t *testing.T) {
	tests := []struct {
		alg       Algorithm
		weights   []int
		picks     int
		tolerance float64 // allowed |share - expected| / expected
	}{
		{RoundRobin, []int{1, 1, 1, 1}, 4000, 0.001},
		{RoundRobin, []int{1, 2, 3, 4}, 10000, 0.001},
		{RoundRobin, []int{1000, 1, 7}, 100800, 0.001},
		{Random, []int{1, 1, 1, 1}, 40000, 0.06},
		{Random, []int{1, 2, 3, 4}, 40000, 0.06},
		{LeastRequest, []int{1, 1, 1, 1}, 40000, 0.06},
		{LeastRequest, []int{1, 2, 3, 4}, 40000, 0.06},
		{RingHash, []int{1, 1, 1, 1}, 40000, 0.15},
		{RingHash, []int{1, 2, 3, 4}, 40000, 0.15},
		{Maglev, []int{1, 1, 1, 1}, 40000, 0.05},
		{Maglev, []int{1, 2, 3, 4}, 40000, 0.05},
	}
	for _, tt := range tests {
		t.Run(string(tt.alg)+"/"+strconv.Itoa(len(tt.weights))+"w"+strconv.Itoa(tt.weights[1]), func(t *testing.T) {
			r, _ := newTestRegistry(t, RegistryOptions{})
			as := addrs(len(tt.weights))
			p := mustPool(t, r, PoolConfig{Algorithm: tt.alg, Endpoints: endpoints(as, tt.weights...)})
			counts := map[string]int{}
			for i := 0; i < tt.picks; i++ {
				e, err := p.Pick(HashString("key-"+strconv.Itoa(i)), nil)
				if err != nil {
					t.Fatalf("Pick: %v", err)
				}
				counts[e.Addr()]++
			}
			total := 0
			for _, w := range tt.weights {
				total += w
			}
			for i, a := range as {
				want := float64(tt.weights[i]) / float64(total)
				got := float64(counts[a]) / float64(tt.picks)
				if math.Abs(got-want)/want > tt.tolerance {
					t.Errorf("%s (weight %d): share %.4f, want %.4f ±%.0f%%", a, tt.weights[i], got, want, tt.tolerance*100)
				}
			}
		})
	}
}

func TestRoundRobinIsSmooth(t *testing.T) {
	r, _ := newTestRegistry(t, RegistryOptions{})
	as := addrs(3)
	p := mustPool(t, r, PoolConfig{Algorithm: RoundRobin, Endpoints: endpoints(as, 1000, 1, 7)})
	// Over two cycles of 1008 picks the weight-7 endpoint comes back every
	// ~144 picks (not in a burst), and each cycle has exactly 1000/1/7.
	var at []int
	counts := map[string]int{}
	for i := 0; i < 2*1008; i++ {
		e, err := p.Pick(0, nil)
		if err != nil {
			t.Fatal(err)
		}
		counts[e.Addr()]++
		if e.Addr() == as[2] {
			at = append(at, i)
		}
	}
	if counts[as[0]] != 2000 || counts[as[1]] != 2 || counts[as[2]] != 14 {
		t.Fatalf("counts over two cycles %v, want 2000/2/14", counts)
	}
	for i := 1; i < len(at); i++ {
		if gap := at[i] - at[i-1]; gap < 130 || gap > 160 {
			t.Errorf("weight-7 endpoint picked at %v: gap %d, want about 144", at, gap)
			break
		}
	}
}

func TestHashAlgorithmsAreConsistent(t *testing.T) {
	const keys = 20000
	for _, alg := range []Algorithm{RingHash, Maglev} {
		t.Run(string(alg), func(t *testing.T) {
			as := addrs(10)
			mapKeys := func(eps []string) []string {
				r, _ := newTestRegistry(t, RegistryOptions{})
				p := mustPool(t, r, PoolConfig{Algorithm: alg, Endpoints: endpoints(eps)})
				out := make([]string, keys)
				for i := range out {
					e, err := p.Pick(HashString("user-"+strconv.Itoa(i)), nil)
					if err != nil {
						t.Fatal(err)
					}
					out[i] = e.Addr()
				}
				return out
			}
			base := mapKeys(as)
			// Another "node" (a separate registry, endpoints listed in
			// another order) maps every key the same way.
			rev := make([]string, len(as))
			for i, a := range as {
				rev[len(as)-1-i] = a
			}
			again := mapKeys(rev)
			for i := range base {
				if base[i] != again[i] {
					t.Fatalf("key %d: %s on one node, %s on another", i, base[i], again[i])
				}
			}
			// Removing one endpoint moves its keys and (almost) nothing else.
			removed := as[3]
			fewer := mapKeys(append(append([]string{}, as[:3]...), as[4:]...))
			moved, movedOthers := 0, 0
			for i := range base {
				if base[i] != fewer[i] {
					moved++
					if base[i] != removed {
						movedOthers++
					}
				}
			}
			share := float64(moved) / keys
			if share > 1.0/10*1.4 {
				t.Errorf("removing 1 of 10 endpoints moved %.1f%% of keys, want about 10%%", share*100)
			}
			if alg == RingHash && movedOthers != 0 {
				t.Errorf("ring: %d keys not on the removed endpoint moved", movedOthers)
			}
			if float64(movedOthers)/keys > 0.02 {
				t.Errorf("%d keys not on the removed endpoint moved", movedOthers)
			}
			// Marking an endpoint unhealthy moves only its keys.
			r, _ := newTestRegistry(t, RegistryOptions{})
			p := mustPool(t, r, PoolConfig{Algorithm: alg, Endpoints: endpoints(as)})
			setHealth(p, byAddr(p, removed), HealthUnhealthy)
			for i := range base {
				e, err := p.Pick(HashString("user-"+strconv.Itoa(i)), nil)
				if err != nil {
					t.Fatal(err)
				}
				if e.Addr() == removed {
					t.Fatalf("key %d picked the unhealthy endpoint", i)
				}
				if base[i] != removed && e.Addr() != base[i] {
					t.Fatalf("key %d moved from healthy %s to %s", i, base[i], e.Addr())
				}
			}
		})
	}
}

func TestPickSkipsUnavailableEndpoints(t *testing.T) {
	for _, alg := range allAlgorithms {
		t.Run(string(alg), func(t *testing.T) {
			r, _ := newTestRegistry(t, RegistryOptions{})
			as := addrs(5)
			p := mustPool(t, r, PoolConfig{Algorithm: alg, Endpoints: endpoints(as, 1, 2, 3, 4, 5)})
			setHealth(p, byAddr(p, as[1]), HealthUnhealthy)
			ej := byAddr(p, as[4])
			p.mu.Lock()
			ej.flags.Or(flagEjected)
			p.recountLocked()
			p.mu.Unlock()
			seen := map[string]int{}
			for i := 0; i < 3000; i++ {
				e, err := p.Pick(rand.Uint64(), nil)
				if err != nil {
					t.Fatal(err)
				}
				seen[e.Addr()]++
			}
			if seen[as[1]] != 0 || seen[as[4]] != 0 {
				t.Fatalf("picked unavailable endpoints: %v", seen)
			}
			for _, a := range []string{as[0], as[2], as[3]} {
				if seen[a] == 0 {
					t.Errorf("available endpoint %s never picked: %v", a, seen)
				}
			}
		})
	}
}

func TestPanicThreshold(t *testing.T) {
	tests := []struct {
		name      string
		panicPct  int
		unhealthy int // of 4
		wantAll   bool
		wantErr   error
	}{
		{"half healthy is not panic", 0, 2, false, nil},
		{"one of four healthy panics", 0, 3, true, nil},
		{"none healthy panics", 0, 4, true, nil},
		{"threshold 80 panics at 3 of 4", 80, 1, true, nil},
		{"disabled keeps to the healthy", -1, 3, false, nil},
		{"disabled and none healthy fails", -1, 4, false, ErrNoHealthyEndpoint},
	}
	for _, tt := range tests {
		for _, alg := range allAlgorithms {
			t.Run(tt.name+"/"+string(alg), func(t *testing.T) {
				r, _ := newTestRegistry(t, RegistryOptions{})
				as := addrs(4)
				p := mustPool(t, r, PoolConfig{Algorithm: alg, Endpoints: endpoints(as), PanicThresholdPercent: tt.panicPct})
				for i := 0; i < tt.unhealthy; i++ {
					setHealth(p, byAddr(p, as[i]), HealthUnhealthy)
				}
				seen := map[string]bool{}
				for i := 0; i < 2000; i++ {
					e, err := p.Pick(rand.Uint64(), nil)
					if !errors.Is(err, tt.wantErr) {
						t.Fatalf("Pick error %v, want %v", err, tt.wantErr)
					}
					if err != nil {
						return
					}
					seen[e.Addr()] = true
				}
				for i, a := range as {
					healthy := i >= tt.unhealthy
					if want := healthy || tt.wantAll; seen[a] != want {
						t.Errorf("%s (healthy %v) picked=%v, want %v", a, healthy, seen[a], want)
					}
				}
				if got := p.Stats().Panic; got != tt.wantAll {
					t.Errorf("Stats().Panic = %v, want %v", got, tt.wantAll)
				}
			})
		}
	}
}

func TestPickExclude(t *testing.T) {
	for _, alg := range allAlgorithms {
		t.Run(string(alg), func(t *testing.T) {
			r, _ := newTestRegistry(t, RegistryOptions{})
			p := mustPool(t, r, PoolConfig{Algorithm: alg, Endpoints: endpoints(addrs(3), 1, 5, 1)})
			for i := 0; i < 1000; i++ {
				h := rand.Uint64()
				first, err := p.Pick(h, nil)
				if err != nil {
					t.Fatal(err)
				}
				second, err := p.Pick(h, first)
				if err != nil {
					t.Fatal(err)
				}
				if second == first {
					t.Fatalf("retry picked the excluded endpoint %s", first.Addr())
				}
			}
			// With one endpoint left the excluded one is returned again.
			p2 := mustPool(t, r, PoolConfig{ID: "single", Algorithm: alg, Endpoints: endpoints(addrs(1))})
			only := p2.Endpoints()[0]
			if e, err := p2.Pick(1, only); err != nil || e != only {
				t.Fatalf("single endpoint: got %v, %v; want the excluded endpoint", e, err)
			}
			// With the only other endpoint unhealthy, too.
			p3 := mustPool(t, r, PoolConfig{ID: "two", Algorithm: alg, Endpoints: endpoints(addrs(2)), PanicThresholdPercent: -1})
			a, b := p3.Endpoints()[0], p3.Endpoints()[1]
			setHealth(p3, b, HealthUnhealthy)
			if e, err := p3.Pick(1, a); err != nil || e != a {
				t.Fatalf("other unhealthy: got %v, %v; want the excluded endpoint", e, err)
			}
		})
	}
}

func TestPickEmptyPool(t *testing.T) {
	r, _ := newTestRegistry(t, RegistryOptions{})
	for _, alg := range allAlgorithms {
		p := mustPool(t, r, PoolConfig{ID: string(alg), Algorithm: alg})
		if _, err := p.Pick(1, nil); !errors.Is(err, ErrNoHealthyEndpoint) {
			t.Errorf("%s: empty pool Pick error %v, want ErrNoHealthyEndpoint", alg, err)
		}
	}
}

func TestLeastRequestAvoidsBusyEndpoint(t *testing.T) {
	r, _ := newTestRegistry(t, RegistryOptions{})
	as := addrs(4)
	p := mustPool(t, r, PoolConfig{Algorithm: LeastRequest, Endpoints: endpoints(as)})
	busy := byAddr(p, as[0])
	for i := 0; i < 100; i++ {
		busy.Begin()
	}
	n := 0
	const picks = 20000
	for i := 0; i < picks; i++ {
		e, err := p.Pick(0, nil)
		if err != nil {
			t.Fatal(err)
		}
		if e == busy {
			n++
		}
	}
	// Both draws must hit the busy endpoint: about 1/16 of picks, against
	// 1/4 for an equal share.
	if share := float64(n) / picks; share > 0.10 {
		t.Errorf("busy endpoint got %.1f%% of picks, want about 6%%", share*100)
	}
	for i := 0; i < 100; i++ {
		busy.End(Result{Status: 200})
	}
	if got := busy.ActiveRequests(); got != 0 {
		t.Errorf("ActiveRequests = %d after matching End calls", got)
	}
}

func TestPickDoesNotAllocate(t *testing.T) {
	r, _ := newTestRegistry(t, RegistryOptions{})
	for _, alg := range allAlgorithms {
		for _, weights := range [][]int{{1, 1, 1}, {1, 2, 3}} {
			p := mustPool(t, r, PoolConfig{ID: string(alg), Algorithm: alg, Endpoints: endpoints(addrs(3), weights...)})
			setHealth(p, p.Endpoints()[1], HealthUnhealthy)
			var ex *Endpoint = p.Endpoints()[0]
			h := uint64(0)
			allocs := testing.AllocsPerRun(1000, func() {
				h += 0x9e3779b97f4a7c15
				e, err := p.Pick(h, ex)
				if err != nil || e == nil {
					panic("pick failed")
				}
				e.Begin()
				e.End(Result{Status: 200})
			})
			if allocs != 0 {
				t.Errorf("%s %v: %.1f allocations per Pick", alg, weights, allocs)
			}
		}
	}
}

func TestConcurrentPickUpdateAndHealth(t *testing.T) {
	r, _ := newTestRegistry(t, RegistryOptions{})
	as := addrs(8)
	p := mustPool(t, r, PoolConfig{Algorithm: RoundRobin, Endpoints: endpoints(as)})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				e, err := p.Pick(rand.Uint64(), nil)
				if err != nil {
					t.Error(err)
					return
				}
				e.Begin()
				e.End(Result{Status: 200})
			}
		}()
	}
	for i := 0; i < 40; i++ {
		alg := allAlgorithms[i%len(allAlgorithms)]
		n := 2 + i%7
		mustPool(t, r, PoolConfig{Algorithm: alg, Endpoints: endpoints(as[:n]), MaglevTableSize: 251})
		eps := p.Endpoints()
		setHealth(p, eps[i%len(eps)], HealthState(1+i%2))
	}
	close(stop)
	wg.Wait()
}

func TestHashIsStable(t *testing.T) {
	// These values must never change: ring and maglev placement on every
	// node depends on them.
	golden := map[string]uint64{}
	for _, s := range []string{"", "a", "10.0.0.1:8080", "user-42"} {
		golden[s] = HashString(s)
		if HashBytes([]byte(s)) != golden[s] {
			t.Errorf("HashBytes(%q) != HashString", s)
		}
	}
	want := map[string]uint64{
		"":              hashGoldenEmpty,
		"a":             hashGoldenA,
		"10.0.0.1:8080": hashGoldenAddr,
	}
	for s, w := range want {
		if golden[s] != w {
			t.Errorf("HashString(%q) = %#x, want %#x", s, golden[s], w)
		}
	}
	if n := testing.AllocsPerRun(100, func() { HashString("10.0.0.1:8080") }); n != 0 {
		t.Errorf("HashString allocates %.0f times", n)
	}
}

// Golden values of HashString, computed independently of this package.
const (
	hashGoldenEmpty = 0xefd01f60ba992926
	hashGoldenA     = 0x82a2a958a9bece5b
	hashGoldenAddr  = 0xe8c721156ed52b14
)

func TestRoundRobinLongCycleIsScaled(t *testing.T) {
	// Co-prime weights summing above the cycle bound are scaled down; the
	// shares stay close and the light endpoint still gets picks.
	weights := []uint64{10007, 10009, 3}
	seq := smoothSequence(weights)
	if len(seq) > maxRRSequence {
		t.Fatalf("cycle of %d picks, bound %d", len(seq), maxRRSequence)
	}
	counts := make([]int, 3)
	for _, i := range seq {
		counts[i]++
	}
	total := 10007.0 + 10009 + 3
	for i, w := range weights[:2] {
		got, want := float64(counts[i])/float64(len(seq)), float64(w)/total
		if math.Abs(got-want)/want > 0.005 {
			t.Errorf("endpoint %d: share %.4f, want %.4f", i, got, want)
		}
	}
	if counts[2] == 0 {
		t.Error("light endpoint dropped from the cycle")
	}
}

func TestRingLookupMatchesBinarySearch(t *testing.T) {
	for _, n := range []int{1, 3, 17, 100} {
		r, _ := newTestRegistry(t, RegistryOptions{})
		p := mustPool(t, r, PoolConfig{Algorithm: RingHash, Endpoints: endpoints(addrs(n), 3, 1, 4, 1, 5), MinRingSize: 1000})
		tab := p.tab.Load()
		hs := tab.ring.hashes
		if !slices.IsSorted(hs) {
			t.Fatal("ring not sorted")
		}
		keys := []uint64{0, 1, math.MaxUint64, hs[0], hs[0] - 1, hs[len(hs)-1], hs[len(hs)-1] + 1}
		for i := 0; i < 20000; i++ {
			keys = append(keys, rand.Uint64())
		}
		for _, k := range keys {
			i, _ := slices.BinarySearch(hs, k)
			if i == len(hs) {
				i = 0
			}
			want := int(tab.ring.idx[i])
			if got := tab.pickRing(k, nil, false); got != want {
				t.Fatalf("n=%d key %#x: endpoint %d, want %d", n, k, got, want)
			}
		}
	}
}

func TestAliasTablesAreExact(t *testing.T) {
	cases := [][]uint64{{1}, {1, 1}, {1, 2, 3, 4}, {1000, 1, 7}, {65536, 1, 1, 1, 3}}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 50; i++ {
		w := make([]uint64, 1+rng.IntN(40))
		for j := range w {
			w[j] = 1 + rng.Uint64N(5000)
		}
		cases = append(cases, w)
	}
	for _, w := range cases {
		var total uint64
		for _, x := range w {
			total += x
		}
		thr, alias := buildAlias(w, total)
		n := float64(len(w))
		got := make([]float64, len(w))
		for i := range w {
			keep := float64(thr[i]) / (1 << 32)
			got[i] += keep / n
			got[alias[i]] += (1 - keep) / n
		}
		for i, x := range w {
			if want := float64(x) / float64(total); math.Abs(got[i]-want) > 1e-6 {
				t.Fatalf("weights %v: index %d drawn with p=%.8f, want %.8f", w, i, got[i], want)
			}
		}
	}
}
