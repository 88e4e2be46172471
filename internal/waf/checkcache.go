package waf

import (
	"slices"
	"unsafe"
)

// Per-transaction tables of the fast path's checks, keyed by a string's
// identity (its data pointer and length), not its content: looking a value
// up costs no hashing of its bytes. Go strings are immutable and every key
// is kept in its entry (so its memory cannot be reused for another string
// while the table holds it): equal identity means equal content. The same
// header value reaches many variables (REQUEST_HEADERS and
// REQUEST_HEADERS:User-Agent), and transformations mostly return their
// input unchanged, so one value's results are shared across variables,
// transformation lists and operators.

func strHash(s string, aux int32) uint64 {
	h := uint64(uintptr(unsafe.Pointer(unsafe.StringData(s))))*0x9e3779b97f4a7c15 ^
		uint64(len(s))*0xc2b2ae3d27d4eb4f ^ uint64(uint32(aux))*0x165667b19e3779f9
	return h ^ h>>29
}

func sameStr(a, b string) bool {
	return len(a) == len(b) && unsafe.StringData(a) == unsafe.StringData(b)
}

// tfTab memoizes transformation steps: (input, transformation) -> output.
type tfTab struct {
	ents []tfEnt
	idx  []int32 // open addressing: 0 empty, else 1 + index into ents
}

type tfEnt struct {
	in, out string
	tf      int32
	ok      bool
}

func (t *tfTab) slot(in string, tf int32) (int, bool) {
	if len(t.idx) == 0 {
		t.idx = make([]int32, 256)
	}
	mask := uint64(len(t.idx) - 1)
	for i := strHash(in, tf) & mask; ; i = (i + 1) & mask {
		k := t.idx[i]
		if k == 0 {
			return int(i), false
		}
		if en := &t.ents[k-1]; en.tf == tf && sameStr(en.in, in) {
			return int(i), true
		}
	}
}

// apply returns f(in) for transformation id tf, computed once.
func (t *tfTab) apply(in string, tf int32, f func(string) (string, bool)) (string, bool) {
	i, hit := t.slot(in, tf)
	if hit {
		en := &t.ents[t.idx[i]-1]
		return en.out, en.ok
	}
	out, ok := f(in)
	t.ents = append(t.ents, tfEnt{in: in, out: out, tf: tf, ok: ok})
	t.idx[i] = int32(len(t.ents))
	if 2*len(t.ents) > len(t.idx) {
		t.grow()
	}
	return out, ok
}

func (t *tfTab) grow() {
	t.idx = make([]int32, 2*len(t.idx))
	mask := uint64(len(t.idx) - 1)
	for k := range t.ents {
		en := &t.ents[k]
		i := strHash(en.in, en.tf) & mask
		for t.idx[i] != 0 {
			i = (i + 1) & mask
		}
		t.idx[i] = int32(k + 1)
	}
}

func (t *tfTab) reset() {
	if len(t.ents) == 0 {
		return
	}
	clear(t.ents)
	t.ents = t.ents[:0]
	clear(t.idx)
}

// valInfo is what the checks learn about a transformed value by one scan
// of its bytes: the bytes it holds and which of the @rx operators'
// literals occur in it (fastpm.go).
type valInfo struct {
	s     string
	bytes byteSet
	lits  int32 // offset of its literal bits in fpEval.litBits; -1: not scanned
	ascii bool
}

// infoTab maps a value to its valInfo.
type infoTab struct {
	ents []valInfo
	idx  []int32
}

func (t *infoTab) find(s string) (int, bool) {
	if len(t.idx) == 0 {
		t.idx = make([]int32, 128)
	}
	mask := uint64(len(t.idx) - 1)
	for i := strHash(s, 0) & mask; ; i = (i + 1) & mask {
		k := t.idx[i]
		if k == 0 {
			return int(i), false
		}
		if sameStr(t.ents[k-1].s, s) {
			return int(i), true
		}
	}
}

func (t *infoTab) add(i int, vi valInfo) int32 {
	t.ents = append(t.ents, vi)
	t.idx[i] = int32(len(t.ents))
	if 2*len(t.ents) > len(t.idx) {
		t.idx = make([]int32, 2*len(t.idx))
		mask := uint64(len(t.idx) - 1)
		for k := range t.ents {
			j := strHash(t.ents[k].s, 0) & mask
			for t.idx[j] != 0 {
				j = (j + 1) & mask
			}
			t.idx[j] = int32(k + 1)
		}
	}
	return int32(len(t.ents))
}

func (t *infoTab) reset() {
	if len(t.ents) == 0 {
		return
	}
	clear(t.ents)
	t.ents = t.ents[:0]
	clear(t.idx)
}

// info returns the value's valInfo (index + 1 into e.infos.ents), noting
// its bytes on first use.
func (e *fpEval) info(s string) int32 {
	i, hit := e.infos.find(s)
	if hit {
		return e.infos.idx[i]
	}
	vi := valInfo{s: s, lits: -1}
	for j := 0; j < len(s); j++ {
		c := s[j]
		vi.bytes[c>>6] |= 1 << (c & 63)
	}
	vi.ascii = vi.bytes[2]|vi.bytes[3] == 0
	return e.infos.add(i, vi)
}

// litsOf returns the literal bits of the value (info index k), scanning
// it on first use.
func (e *fpEval) litsOf(k int32) []uint64 {
	vi := &e.infos.ents[k-1]
	if vi.lits < 0 {
		off, n := len(e.litBits), e.p.litWords
		e.litBits = slices.Grow(e.litBits, n)[:off+n]
		clear(e.litBits[off:])
		e.p.litScan.scan(vi.s, e.litBits[off:])
		vi.lits = int32(off)
	}
	return e.litBits[vi.lits : vi.lits+int32(e.p.litWords)]
}

// macExp is an operator argument's macro expansion.
type macExp struct {
	op  *fpOp
	val string
}

// expand returns the operator's argument with its macros expanded, once
// per phase: compileOp accepts only TX macros whose names no later rule
// of the phase writes, and beginPhase (also called whenever the native
// lean rules changed TX, runlean.go) forgets them.
func (e *fpEval) expand(o *fpOp) string {
	for i := range e.macs {
		if e.macs[i].op == o {
			return e.macs[i].val
		}
	}
	v := o.mac.Expand(e.st)
	e.macs = append(e.macs, macExp{o, v})
	return v
}

// tfChain applies the link's transformations to val, skipping each one
// whose trigger bytes (tfTrigger) val lacks; it returns the result, its
// valInfo index and whether every transformation was known.
func (e *fpEval) tfChain(l *fpLink, val string) (string, int32, bool) {
	k := e.info(val)
	b := e.infos.ents[k-1].bytes
	for i, tf := range l.tfFns {
		id := l.tfIDs[i]
		if !b.meets(&tfTrigger[id]) {
			continue
		}
		out, ok := e.tfc.apply(val, id, tf)
		if !ok {
			return out, 0, false
		}
		if out != val {
			val, k = out, e.info(out)
			b = e.infos.ents[k-1].bytes
		}
	}
	return val, k, true
}
