package rxdfa

import (
	"encoding/binary"
	"regexp/syntax"
	"slices"
	"sync"
	"sync/atomic"
	"unicode/utf8"
)

// Result is the answer of Match.
type Result int8

const (
	// Unknown: the automaton gave up (non-ASCII input, or its state
	// budget ran out); the caller must run the real matcher.
	Unknown Result = iota
	// NoMatch: the expression matches nowhere in the input.
	NoMatch
	// Match: the expression matches somewhere in the input.
	Match
)

// DefaultMaxBytes bounds the memory an automaton keeps for its states
// (their instruction lists and transition tables); when a search needs
// more, the states are dropped and that search answers Unknown.
const DefaultMaxBytes = 128 << 10

// DFA is a lazily built automaton for one expression, safe for concurrent
// use. States are created on first use and kept (up to a budget); the warm
// path takes no lock and allocates nothing.
type DFA struct {
	prog     *syntax.Prog
	maxBytes int

	// byte classes over ASCII: bytes that every instruction, and the
	// empty-width assertions, treat alike share a class.
	classOf [utf8.RuneSelf]uint8
	classRp []rune // a representative rune per class
	nclass  int

	mu    sync.Mutex // guards cache replacement and the states map
	cache atomic.Pointer[cache]
}

type cache struct {
	states map[string]*state
	bytes  int // memory held by states, roughly
	start  atomic.Pointer[state]
}

// Context of the rune before the current position: what the empty-width
// assertions (^ $ \b \B with (?m)) need to know about it.
const (
	ctxOther uint8 = iota
	ctxWord
	ctxNewline
	ctxBegin
)

var ctxRune = [...]rune{ctxOther: ' ', ctxWord: 'a', ctxNewline: '\n', ctxBegin: -1}

type state struct {
	pcs  []uint32 // pending instructions (sorted, unique), start included
	ctx  uint8
	next []atomic.Pointer[state] // per byte class; nil: not computed yet
	end  atomic.Int32            // 0 unknown, 1 no match at end, 2 match at end
}

// stateOverhead is a state's fixed size plus its map entry, roughly.
const stateOverhead = 128

// Size returns the number of states the automaton holds and the memory
// they take, roughly.
func (d *DFA) Size() (states, bytes int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	c := d.cache.Load()
	return len(c.states), c.bytes
}

// matched is the sentinel state reached when a match was found.
var matched = &state{}

// New builds the automaton for prog (from syntax.Compile). maxBytes <= 0
// means DefaultMaxBytes.
func New(prog *syntax.Prog, maxBytes int) *DFA {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	d := &DFA{prog: prog, maxBytes: maxBytes}
	d.computeClasses()
	d.cache.Store(&cache{states: map[string]*state{}})
	return d
}

// Compile parses and compiles expr with the flags Go's regexp.Compile uses
// and returns its automaton.
func Compile(expr string) (*DFA, error) {
	re, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return nil, err
	}
	prog, err := syntax.Compile(re.Simplify())
	if err != nil {
		return nil, err
	}
	return New(prog, 0), nil
}

func ctxOf(r rune) uint8 {
	switch {
	case r == '\n':
		return ctxNewline
	case syntax.IsWordChar(r):
		return ctxWord
	}
	return ctxOther
}

func instMatches(in *syntax.Inst, r rune) bool {
	switch in.Op {
	case syntax.InstRune1:
		return r == in.Rune[0]
	case syntax.InstRune:
		return in.MatchRune(r)
	case syntax.InstRuneAny:
		return true
	case syntax.InstRuneAnyNotNL:
		return r != '\n'
	}
	return false
}

// computeClasses partitions the ASCII runes: two runes share a class when
// they have the same context and every rune instruction accepts both or
// neither.
func (d *DFA) computeClasses() {
	var id [utf8.RuneSelf]int
	for r := range id {
		id[r] = int(ctxOf(rune(r)))
	}
	// Many instructions test the same rune set: split by each set once.
	done := map[string]bool{}
	key := make([]byte, 0, 64)
	for i := range d.prog.Inst {
		in := &d.prog.Inst[i]
		switch in.Op {
		case syntax.InstRune, syntax.InstRune1, syntax.InstRuneAnyNotNL:
		default:
			continue
		}
		key = append(key[:0], byte(in.Op), byte(syntax.Flags(in.Arg)&syntax.FoldCase))
		for _, r := range in.Rune {
			key = binary.LittleEndian.AppendUint32(key, uint32(r))
		}
		if done[string(key)] {
			continue
		}
		done[string(key)] = true
		var split [2 * 256]int16 // (old class, accepts) -> new class + 1
		n := 0
		for r := range id {
			k := 2 * id[r]
			if instMatches(in, rune(r)) {
				k++
			}
			if split[k] == 0 {
				n++
				split[k] = int16(n)
			}
			id[r] = int(split[k] - 1)
		}
	}
	seen := map[int]int{}
	for r := range id {
		c, ok := seen[id[r]]
		if !ok {
			c = len(seen)
			seen[id[r]] = c
			d.classRp = append(d.classRp, rune(r))
		}
		d.classOf[r] = uint8(c)
	}
	d.nclass = len(seen)
}

// Match reports whether the expression matches anywhere in s.
func (d *DFA) Match(s string) Result {
	c := d.cache.Load()
	st := c.start.Load()
	if st == nil {
		var ok bool
		if st, ok = d.startState(c); !ok {
			return Unknown
		}
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		if b >= utf8.RuneSelf {
			return Unknown
		}
		cl := d.classOf[b]
		nx := st.next[cl].Load()
		if nx == nil {
			var ok bool
			if nx, ok = d.step(st, cl); !ok {
				return Unknown
			}
		}
		if nx == matched {
			return Match
		}
		st = nx
	}
	switch st.end.Load() {
	case 1:
		return NoMatch
	case 2:
		return Match
	}
	if d.closureMatches(st, -1) {
		st.end.Store(2)
		return Match
	}
	st.end.Store(1)
	return NoMatch
}

func (d *DFA) startState(c *cache) (*state, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if st := c.start.Load(); st != nil {
		return st, true
	}
	st, ok := d.internLocked(c, []uint32{uint32(d.prog.Start)}, ctxBegin)
	if !ok {
		return nil, false
	}
	c.start.Store(st)
	return st, true
}

// internLocked returns the state for (pcs, ctx), creating it; false when
// the budget is spent (the cache is then replaced by an empty one).
func (d *DFA) internLocked(c *cache, pcs []uint32, ctx uint8) (*state, bool) {
	key := make([]byte, 1, 1+4*len(pcs))
	key[0] = ctx
	for _, pc := range pcs {
		key = binary.LittleEndian.AppendUint32(key, pc)
	}
	if st := c.states[string(key)]; st != nil {
		return st, true
	}
	size := stateOverhead + 2*len(key) + 8*d.nclass
	if c.bytes+size > d.maxBytes {
		d.cache.Store(&cache{states: map[string]*state{}})
		return nil, false
	}
	st := &state{pcs: pcs, ctx: ctx, next: make([]atomic.Pointer[state], d.nclass)}
	c.states[string(key)] = st
	c.bytes += size
	return st, true
}

// step computes and records the transition of st on byte class cl.
func (d *DFA) step(st *state, cl uint8) (*state, bool) {
	r := d.classRp[cl]
	d.mu.Lock()
	defer d.mu.Unlock()
	if nx := st.next[cl].Load(); nx != nil {
		return nx, true
	}
	flags := syntax.EmptyOpContext(ctxRune[st.ctx], r)
	heads, isMatch := d.closure(st.pcs, flags)
	if isMatch {
		st.next[cl].Store(matched)
		return matched, true
	}
	next := make([]uint32, 0, len(heads)+1)
	for _, pc := range heads {
		in := &d.prog.Inst[pc]
		if instMatches(in, r) {
			next = append(next, in.Out)
		}
	}
	next = append(next, uint32(d.prog.Start))
	slices.Sort(next)
	next = slices.Compact(next)
	nx, ok := d.internLocked(d.cache.Load(), next, ctxOf(r))
	if !ok {
		return nil, false
	}
	st.next[cl].Store(nx)
	return nx, true
}

// closureMatches reports whether a match is reached from st before a rune
// r (-1: the end of the input).
func (d *DFA) closureMatches(st *state, r rune) bool {
	_, m := d.closure(st.pcs, syntax.EmptyOpContext(ctxRune[st.ctx], r))
	return m
}

// closure follows the empty transitions allowed by flags from pcs and
// returns the rune instructions reached, and whether a match was.
func (d *DFA) closure(pcs []uint32, flags syntax.EmptyOp) (heads []uint32, isMatch bool) {
	seen := make(map[uint32]bool, 2*len(pcs))
	stack := append([]uint32(nil), pcs...)
	for len(stack) > 0 {
		pc := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[pc] {
			continue
		}
		seen[pc] = true
		in := &d.prog.Inst[pc]
		switch in.Op {
		case syntax.InstMatch:
			return nil, true
		case syntax.InstFail:
		case syntax.InstAlt, syntax.InstAltMatch:
			stack = append(stack, in.Arg, in.Out)
		case syntax.InstNop, syntax.InstCapture:
			stack = append(stack, in.Out)
		case syntax.InstEmptyWidth:
			if syntax.EmptyOp(in.Arg)&^flags == 0 {
				stack = append(stack, in.Out)
			}
		default: // rune instructions
			heads = append(heads, pc)
		}
	}
	return heads, false
}
