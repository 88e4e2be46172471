package lb

import (
	"container/heap"
	"math/bits"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync/atomic"
)

// table is the immutable selection state of a pool, rebuilt off the hot path
// on every configuration change or re-resolution and swapped atomically.
// Endpoint health and ejection are not part of it: Pick reads them from the
// endpoints, so a health change needs no rebuild.
type table struct {
	alg      Algorithm
	eps      []*Endpoint // sorted by Addr, so every node builds the same table
	weights  []uint64
	aliasThr []uint64 // alias method: keep i when a 32-bit coin < aliasThr[i]
	alias    []int32  // ... else take alias[i]
	total    uint64
	uniform  bool
	rrSeq    []int32 // smooth weighted round-robin order; nil when uniform
	ring     ring
	maglev   []int32
	byID     map[string]*Endpoint
	outlier  *OutlierConfig
	breaker  *BreakerConfig
	panicPct int
	ringSize int // MinRingSize the ring was built with
	tabSize  int // MaglevTableSize the table was built with

	// available counts endpoints with no flag set; kept up to date by
	// Pool.recountLocked under Pool.mu.
	available atomic.Int64
}

type ringPoint struct {
	hash uint64
	idx  int32
}

// ring is the sorted ring in two dense arrays, with an index of where each
// bucket of top hash bits starts (about one point per bucket), so a lookup
// is a couple of comparisons instead of a binary search.
type ring struct {
	hashes []uint64
	idx    []int32
	start  []int32 // start[b]: first point whose hash >> shift >= b; len 2^bits+1
	shift  uint
}

// buildTable builds the selection state for eps. When prev selected among
// the same endpoints with the same weights and algorithm, its (costly)
// sequence, ring or lookup table is reused.
func buildTable(cfg *PoolConfig, eps []*Endpoint, weights []uint64, prev *table) *table {
	t := &table{
		alg:      cfg.Algorithm,
		eps:      eps,
		weights:  weights,
		byID:     make(map[string]*Endpoint, len(eps)),
		outlier:  cfg.Outlier,
		breaker:  cfg.Breaker,
		panicPct: cfg.PanicThresholdPercent,
		ringSize: cfg.MinRingSize,
		tabSize:  cfg.MaglevTableSize,
		uniform:  true,
	}
	for i, e := range eps {
		t.total += weights[i]
		t.byID[e.id] = e
		if weights[i] != weights[0] {
			t.uniform = false
		}
	}
	if len(eps) == 0 {
		return t
	}
	if !t.uniform && (t.alg == Random || t.alg == LeastRequest) {
		t.aliasThr, t.alias = buildAlias(weights, t.total)
	}
	if prev != nil && prev.alg == t.alg && prev.ringSize == t.ringSize && prev.tabSize == t.tabSize &&
		slices.Equal(prev.eps, eps) && slices.Equal(prev.weights, weights) {
		t.rrSeq, t.ring, t.maglev = prev.rrSeq, prev.ring, prev.maglev
		return t
	}
	switch cfg.Algorithm {
	case RoundRobin:
		if !t.uniform {
			t.rrSeq = smoothSequence(weights)
		}
	case RingHash:
		t.ring = buildRing(eps, weights, t.total, cfg.MinRingSize)
	case Maglev:
		t.maglev = buildMaglev(eps, weights, cfg.MaglevTableSize)
	}
	return t
}

// smoothSequence returns one cycle of weighted round robin in which every
// endpoint's picks are spread evenly (earliest-deadline-first: endpoint i is
// due at (k+1/2)/w_i for its k-th pick). Weights are reduced by their greatest
// common divisor and, if the cycle would still be longer than maxRRSequence,
// scaled down proportionally (each endpoint keeps at least one slot).
func smoothSequence(weights []uint64) []int32 {
	g := weights[0]
	for _, w := range weights[1:] {
		g = gcd(g, w)
	}
	w := make([]uint64, len(weights))
	var total uint64
	for i, x := range weights {
		w[i] = x / g
		total += w[i]
	}
	if total > maxRRSequence {
		scaled := uint64(0)
		for i := range w {
			w[i] = max(1, w[i]*maxRRSequence/total)
			scaled += w[i]
		}
		total = scaled
	}
	h := make(edfHeap, len(w))
	for i := range w {
		h[i] = edfItem{idx: int32(i), picks: 0, weight: w[i]}
	}
	heap.Init(&h)
	seq := make([]int32, 0, total)
	for uint64(len(seq)) < total {
		it := &h[0]
		seq = append(seq, it.idx)
		it.picks++
		heap.Fix(&h, 0)
	}
	return seq
}

type edfItem struct {
	idx    int32
	picks  uint64
	weight uint64
}

type edfHeap []edfItem

func (h edfHeap) Len() int { return len(h) }
func (h edfHeap) Less(i, j int) bool {
	// deadline (picks+1/2)/weight, compared without division; ties by index.
	a := (2*h[i].picks + 1) * h[j].weight
	b := (2*h[j].picks + 1) * h[i].weight
	if a != b {
		return a < b
	}
	return h[i].idx < h[j].idx
}
func (h edfHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *edfHeap) Push(x any)   { *h = append(*h, x.(edfItem)) }
func (h *edfHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

func gcd(a, b uint64) uint64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// buildRing gives every endpoint weight*P points, at
// HashString("<addr>_<k>") for k = 0..weight*P-1. P, the points per unit of
// weight, is the smallest power of two that makes the ring at least
// minSize points (bounded so the ring stays under maxRingSize). An
// endpoint's points depend only on its address, weight and P, so adding or
// removing an endpoint moves only the keys of that endpoint as long as P is
// unchanged (it changes only when the total weight crosses a power of two
// relative to minSize).
func buildRing(eps []*Endpoint, weights []uint64, total uint64, minSize int) ring {
	// Huge total weights are scaled down to fit the ring size bound.
	div := (total + maxRingSize - 1) / maxRingSize
	if div > 1 {
		scaled := make([]uint64, len(weights))
		total = 0
		for i, w := range weights {
			scaled[i] = max(1, w/div)
			total += scaled[i]
		}
		weights = scaled
	}
	per := uint64(1)
	for per*total < uint64(minSize) && per*total*2 <= maxRingSize {
		per *= 2
	}
	n := per * total
	points := make([]ringPoint, 0, n)
	var buf []byte
	for i, e := range eps {
		for k := uint64(0); k < weights[i]*per; k++ {
			buf = append(buf[:0], e.addr...)
			buf = append(buf, '_')
			buf = strconv.AppendUint(buf, k, 10)
			points = append(points, ringPoint{hash: HashBytes(buf), idx: int32(i)})
		}
	}
	slices.SortFunc(points, func(a, b ringPoint) int {
		switch {
		case a.hash < b.hash:
			return -1
		case a.hash > b.hash:
			return 1
		}
		return int(a.idx) - int(b.idx)
	})
	r := ring{hashes: make([]uint64, len(points)), idx: make([]int32, len(points))}
	for i, p := range points {
		r.hashes[i], r.idx[i] = p.hash, p.idx
	}
	nbits := uint(bits.Len(uint(len(points))))
	r.shift = 64 - nbits
	r.start = make([]int32, 1<<nbits+1)
	j := 0
	for b := range r.start {
		for j < len(points) && points[j].hash>>r.shift < uint64(b) {
			j++
		}
		r.start[b] = int32(j)
	}
	return r
}

// buildMaglev fills a lookup table of the given prime size: each endpoint
// walks its own permutation (offset, skip derived from its address) and
// claims the next free slot in turn; an endpoint of weight w takes a turn in
// w/maxWeight of the rounds, so slot counts are proportional to weights.
func buildMaglev(eps []*Endpoint, weights []uint64, size int) []int32 {
	m := uint64(size)
	n := len(eps)
	offset := make([]uint64, n)
	skip := make([]uint64, n)
	next := make([]uint64, n)
	credit := make([]float64, n)
	share := make([]float64, n)
	var maxW uint64
	for _, w := range weights {
		maxW = max(maxW, w)
	}
	for i, e := range eps {
		offset[i] = HashString(e.addr+"#offset") % m
		skip[i] = HashString(e.addr+"#skip")%(m-1) + 1
		share[i] = float64(weights[i]) / float64(maxW)
	}
	tab := make([]int32, m)
	for i := range tab {
		tab[i] = -1
	}
	filled := uint64(0)
	for filled < m {
		for i := 0; i < n && filled < m; i++ {
			credit[i] += share[i]
			if credit[i] < 1 {
				continue
			}
			credit[i]--
			for {
				c := (offset[i] + next[i]*skip[i]) % m
				next[i]++
				if tab[c] < 0 {
					tab[c] = int32(i)
					filled++
					break
				}
			}
		}
	}
	return tab
}

// ok reports whether endpoint e may be picked: not the excluded one, and
// available unless the pool is in panic mode.
func ok(e, exclude *Endpoint, all bool) bool {
	return e != exclude && (all || e.flags.Load() == 0)
}

// pick returns the index of the chosen endpoint, or -1.
func (t *table) pick(p *Pool, hash uint64, exclude *Endpoint, all bool) int {
	switch t.alg {
	case RoundRobin:
		return t.pickRoundRobin(p.rr.Add(1), exclude, all)
	case LeastRequest:
		return t.pickLeastRequest(exclude, all)
	case Random:
		return t.pickRandom(exclude, all)
	case RingHash:
		return t.pickRing(hash, exclude, all)
	case Maglev:
		return t.pickMaglev(hash, exclude, all)
	}
	return -1
}

// pickRoundRobin walks the cycle from position n to the first usable
// endpoint.
func (t *table) pickRoundRobin(n uint64, exclude *Endpoint, all bool) int {
	if t.rrSeq == nil {
		l := uint64(len(t.eps))
		s := n % l
		for k := uint64(0); k < l; k++ {
			i := s + k
			if i >= l {
				i -= l
			}
			if ok(t.eps[i], exclude, all) {
				return int(i)
			}
		}
		return -1
	}
	l := uint64(len(t.rrSeq))
	s := n % l
	for k := uint64(0); k < l; k++ {
		i := s + k
		if i >= l {
			i -= l
		}
		if idx := t.rrSeq[i]; ok(t.eps[idx], exclude, all) {
			return int(idx)
		}
	}
	return -1
}

// randomIndex draws an index in proportion to the weights: uniform, or by
// the alias method (one random word, no search).
func (t *table) randomIndex() int {
	if t.uniform {
		return int(rand.Uint64N(uint64(len(t.eps))))
	}
	r := rand.Uint64()
	i := int((r >> 32) * uint64(len(t.alias)) >> 32)
	if r&0xffffffff < t.aliasThr[i] {
		return i
	}
	return int(t.alias[i])
}

// buildAlias builds Vose's alias tables: column i keeps itself with
// probability thr[i]/2^32 and otherwise gives way to alias[i]; every column
// is drawn with probability 1/n, so index i comes out with probability
// weights[i]/total.
func buildAlias(weights []uint64, total uint64) ([]uint64, []int32) {
	n := len(weights)
	scaled := make([]uint64, n) // weight*n, compared against total
	thr := make([]uint64, n)
	alias := make([]int32, n)
	var small, large []int
	for i, w := range weights {
		scaled[i] = w * uint64(n)
		alias[i] = int32(i)
		if scaled[i] < total {
			small = append(small, i)
		} else {
			large = append(large, i)
		}
	}
	for len(small) > 0 && len(large) > 0 {
		s, l := small[len(small)-1], large[len(large)-1]
		small, large = small[:len(small)-1], large[:len(large)-1]
		hi, lo := bits.Mul64(scaled[s], 1<<32)
		thr[s], _ = bits.Div64(hi, lo, total)
		alias[s] = int32(l)
		scaled[l] = scaled[l] + scaled[s] - total
		if scaled[l] < total {
			small = append(small, l)
		} else {
			large = append(large, l)
		}
	}
	for _, i := range append(small, large...) {
		thr[i] = 1 << 32 // rounding leftovers keep their whole column
	}
	return thr, alias
}

// pickRandom draws up to four times, then takes the first usable endpoint
// after the last draw.
func (t *table) pickRandom(exclude *Endpoint, all bool) int {
	i := 0
	for try := 0; try < 4; try++ {
		i = t.randomIndex()
		if ok(t.eps[i], exclude, all) {
			return i
		}
	}
	l := len(t.eps)
	for k := 1; k < l; k++ {
		j := (i + k) % l
		if ok(t.eps[j], exclude, all) {
			return j
		}
	}
	return -1
}

// pickLeastRequest is the power of two choices: two weighted random draws,
// the one with fewer active requests per unit of weight wins (the first on a
// tie, so an idle pool is balanced exactly by weight).
func (t *table) pickLeastRequest(exclude *Endpoint, all bool) int {
	a := t.pickRandom(exclude, all)
	if a < 0 {
		return -1
	}
	b := t.pickRandom(exclude, all)
	if b < 0 || b == a {
		return a
	}
	ra := uint64(max(0, t.eps[a].active.Load()))
	rb := uint64(max(0, t.eps[b].active.Load()))
	if rb*t.weights[a] < ra*t.weights[b] {
		return b
	}
	return a
}

// pickRing goes to the first ring point at or after hash and walks on to the
// first usable endpoint.
func (t *table) pickRing(hash uint64, exclude *Endpoint, all bool) int {
	r := &t.ring
	// The bucket of hash's top bits bounds the search to a point or two.
	b := hash >> r.shift
	lo, hi := r.start[b], r.start[b+1]
	for lo < hi && r.hashes[lo] < hash {
		lo++
	}
	l := int32(len(r.idx))
	for k := int32(0); k < l; k++ {
		j := lo + k
		if j >= l {
			j -= l
		}
		if idx := r.idx[j]; ok(t.eps[idx], exclude, all) {
			return int(idx)
		}
	}
	return -1
}

// pickMaglev looks hash up in the table; when that endpoint is not usable
// it probes the following slots, which belong to endpoints spread at
// random, so the keys of a failed endpoint are spread over the others and
// no other key moves.
func (t *table) pickMaglev(hash uint64, exclude *Endpoint, all bool) int {
	m := uint64(len(t.maglev))
	s := hash % m
	for k := uint64(0); k < m; k++ {
		j := s + k
		if j >= m {
			j -= m
		}
		if idx := t.maglev[j]; ok(t.eps[idx], exclude, all) {
			return int(idx)
		}
	}
	return -1
}
