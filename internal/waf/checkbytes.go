package waf

import (
	"math/bits"
	"regexp/syntax"
	"unicode"

	bsyntax "rsc.io/binaryregexp/syntax"
)

// Necessary bytes. For a regular expression, needBytes derives from its
// syntax tree a few byte sets ("clauses") such that every match holds at
// least one byte of each: a literal character needs its own bytes, a
// character class one of its members, a concatenation all its parts'
// clauses, an alternation one byte of each alternative's best clause. The
// fast path keeps each transformed value's set of bytes (one pass, shared
// by every operator that reads the value: checkcache.go), and an operator
// whose clause the value misses cannot match it, without a scan.
//
// Non-ASCII runes (and U+FFFD, which Go's matcher also gives invalid
// bytes) stand for every byte from 0x80: a superset, exact because a
// value holding none of those bytes is ASCII.

// byteSet is a set of bytes.
type byteSet [4]uint64

func (b *byteSet) add(c byte)      { b[c>>6] |= 1 << (c & 63) }
func (b *byteSet) has(c byte) bool { return b[c>>6]&(1<<(c&63)) != 0 }
func (b *byteSet) union(o *byteSet) {
	b[0], b[1], b[2], b[3] = b[0]|o[0], b[1]|o[1], b[2]|o[2], b[3]|o[3]
}
func (b *byteSet) meets(o *byteSet) bool {
	return b[0]&o[0]|b[1]&o[1]|b[2]&o[2]|b[3]&o[3] != 0
}
func (b *byteSet) count() int {
	return bits.OnesCount64(b[0]) + bits.OnesCount64(b[1]) + bits.OnesCount64(b[2]) + bits.OnesCount64(b[3])
}

// addRune adds the bytes that can stand for r in a value: r itself when
// ASCII, else every byte from 0x80 (its UTF-8 bytes; invalid bytes for
// U+FFFD; Latin-1 bytes for the binary matcher).
func (b *byteSet) addRune(r rune) {
	if r < 0x80 && r >= 0 {
		b.add(byte(r))
		return
	}
	b[2], b[3] = ^uint64(0), ^uint64(0)
}

func (b *byteSet) addRange(lo, hi rune) {
	for r := lo; r <= hi && r < 0x80; r++ {
		b.add(byte(r))
	}
	if hi >= 0x80 {
		b.addRune(0x80)
	}
}

// needMaxClauses bounds the clauses kept per expression; needMaxBytes
// drops clauses too common to tell anything.
const (
	needMaxClauses = 4
	needMaxBytes   = 160
)

// rxNode is the part of a syntax tree the derivation reads (regexp/syntax
// and rsc.io/binaryregexp/syntax have the same shape).
type rxNode struct {
	op   rxNodeOp
	rune []rune
	fold bool
	min  int
	sub  []*rxNode
}

type rxNodeOp uint8

const (
	rnNone  rxNodeOp = iota // matches the empty string or anything: no clause
	rnNever                 // matches nothing
	rnLit
	rnClass
	rnAny // any character
	rnPlus
	rnRepeat
	rnCapture
	rnConcat
	rnAlt
)

func nodeOf(re *syntax.Regexp) *rxNode {
	n := &rxNode{rune: re.Rune, fold: re.Flags&syntax.FoldCase != 0, min: re.Min}
	switch re.Op {
	case syntax.OpNoMatch:
		n.op = rnNever
	case syntax.OpLiteral:
		n.op = rnLit
	case syntax.OpCharClass:
		n.op = rnClass
	case syntax.OpAnyChar, syntax.OpAnyCharNotNL:
		n.op = rnAny
	case syntax.OpPlus:
		n.op = rnPlus
	case syntax.OpRepeat:
		n.op = rnRepeat
	case syntax.OpCapture:
		n.op = rnCapture
	case syntax.OpConcat:
		n.op = rnConcat
	case syntax.OpAlternate:
		n.op = rnAlt
	default: // empty, anchors, boundaries, star, quest
		n.op = rnNone
	}
	for _, s := range re.Sub {
		n.sub = append(n.sub, nodeOf(s))
	}
	return n
}

func bnodeOf(re *bsyntax.Regexp) *rxNode {
	n := &rxNode{rune: re.Rune, fold: re.Flags&bsyntax.FoldCase != 0, min: re.Min}
	switch re.Op {
	case bsyntax.OpNoMatch:
		n.op = rnNever
	case bsyntax.OpLiteral:
		n.op = rnLit
	case bsyntax.OpCharClass:
		n.op = rnClass
	case bsyntax.OpAnyChar, bsyntax.OpAnyCharNotNL:
		n.op = rnAny
	case bsyntax.OpPlus:
		n.op = rnPlus
	case bsyntax.OpRepeat:
		n.op = rnRepeat
	case bsyntax.OpCapture:
		n.op = rnCapture
	case bsyntax.OpConcat:
		n.op = rnConcat
	case bsyntax.OpAlternate:
		n.op = rnAlt
	default:
		n.op = rnNone
	}
	for _, s := range re.Sub {
		n.sub = append(n.sub, bnodeOf(s))
	}
	return n
}

// needBytes returns the useful clauses of the expression (nil: none).
func needBytes(re *syntax.Regexp) []byteSet { return pruneClauses(clausesOf(nodeOf(re))) }

// needBytesBinary is needBytes for an expression of the binary matcher.
func needBytesBinary(re *bsyntax.Regexp) []byteSet { return pruneClauses(clausesOf(bnodeOf(re))) }

// clausesOf returns clauses every match of n satisfies; never reports
// that n matches nothing (then any clause holds vacuously: an alternation
// leaves such an alternative out).
func clausesOf(n *rxNode) (cs []byteSet) {
	switch n.op {
	case rnLit:
		for _, r := range n.rune {
			var b byteSet
			b.addRune(r)
			if n.fold {
				for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
					b.addRune(f)
				}
			}
			cs = append(cs, b)
		}
	case rnClass:
		var b byteSet
		for i := 0; i+1 < len(n.rune); i += 2 {
			b.addRange(n.rune[i], n.rune[i+1])
		}
		cs = append(cs, b)
	case rnPlus, rnCapture:
		cs = clausesOf(n.sub[0])
	case rnRepeat:
		if n.min >= 1 {
			cs = clausesOf(n.sub[0])
		}
	case rnConcat:
		for _, s := range n.sub {
			cs = append(cs, clausesOf(s)...)
		}
	case rnAlt:
		var u byteSet
		any := false
		for _, s := range n.sub {
			if s.op == rnNever {
				continue
			}
			best, ok := bestClause(clausesOf(s))
			if !ok {
				return nil // this alternative needs nothing
			}
			u.union(&best)
			any = true
		}
		if any {
			cs = append(cs, u)
		}
	}
	return pruneClauses(cs)
}

func bestClause(cs []byteSet) (byteSet, bool) {
	if len(cs) == 0 {
		return byteSet{}, false
	}
	best := 0
	for i := range cs {
		if cs[i].count() < cs[best].count() {
			best = i
		}
	}
	return cs[best], true
}

// pruneClauses keeps the few smallest distinct clauses that are worth
// testing (every clause is necessary on its own: dropping some is exact).
func pruneClauses(cs []byteSet) []byteSet {
	var out []byteSet
	for _, c := range cs {
		if c.count() > needMaxBytes {
			continue
		}
		dup := false
		for _, o := range out {
			if o == c {
				dup = true
			}
		}
		if !dup {
			out = append(out, c)
		}
	}
	// Smallest first, at most needMaxClauses.
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].count() < out[j-1].count(); j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	if len(out) > needMaxClauses {
		out = out[:needMaxClauses]
	}
	return out
}

// missesClause reports whether the value's bytes miss one of the clauses
// (the expression cannot match the value).
func missesClause(vb *byteSet, cs []byteSet) bool {
	for i := range cs {
		if !vb.meets(&cs[i]) {
			return true
		}
	}
	return false
}

// quickNo reports whether the operator certainly does not match the
// memoized value, from what one pass over the value's bytes told (its
// byte set, the literals of the combined scan), without running it.
func (e *fpEval) quickNo(o *fpOp, tv *tfMemoVal) bool {
	var need []byteSet
	switch {
	case o.kind == "detectXSS":
		if tv.info == 0 {
			tv.info = e.info(tv.v)
		}
		return xssImpossible(&e.infos.ents[tv.info-1].bytes)
	case o.kind != "rx" && o.kind != "validateByteRange":
		return false
	case o.rx != nil:
		need = o.rx.need
	case o.brx != nil:
		need = o.brx.need
	}
	if o.lits == nil && need == nil && o.bytes == nil {
		return false
	}
	if tv.info == 0 {
		tv.info = e.info(tv.v)
	}
	vi := &e.infos.ents[tv.info-1]
	if o.bytes != nil {
		// @validateByteRange matches a value holding a byte outside
		// its ranges.
		return !vi.bytes.outside(o.bytes)
	}
	if missesClause(&vi.bytes, need) {
		return true
	}
	return o.lits != nil && e.litsAbsent(tv.info, o.lits)
}

// outside reports whether the set holds a byte that allowed does not.
func (b *byteSet) outside(allowed *[256]bool) bool {
	for w, x := range b {
		for x != 0 {
			c := w<<6 | bits.TrailingZeros64(x)
			if !allowed[c] {
				return true
			}
			x &= x - 1
		}
	}
	return false
}

// xssImpossible reports whether libinjection's XSS detection cannot fire
// on a value with these bytes. Of its five parse contexts, the data state
// needs '<' to leave plain text (tags, comments and doctypes all start
// there). The four attribute contexts start before an attribute name or
// in a quoted value with no attribute, so the first value is judged in no
// attribute's context; a later attribute value, the only other token that
// can fire without a tag, follows an attribute name and '='. Without '<'
// and '=', no token fires (TestXSSImpossible, FuzzXSSImpossible).
func xssImpossible(b *byteSet) bool { return !b.has('<') && !b.has('=') }
