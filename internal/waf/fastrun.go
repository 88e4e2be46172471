package waf

import (
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/corazawaf/coraza/v3/collection"
	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
	"github.com/corazawaf/coraza/v3/types"
	"github.com/corazawaf/coraza/v3/types/variables"
	libinjection "github.com/corazawaf/libinjection-go"

	"github.com/meridian-platform/meridian/internal/waf/rxdfa"
)

// noMatch reports whether no detection rule of phase can match the
// transaction state st (the lean transaction after that phase); when it
// cannot tell, it returns false and the id of the first such rule.
func (p *fpProgram) noMatch(e *fpEval, phase int) (bool, int) {
	if c := p.firstReachable(e, phase, mayMatch); c != nil {
		return false, c.id
	}
	return true, 0
}

// mayMatch says a detection rule may match e's state: the fast path cannot
// model it, or its checks cannot rule a match out.
func mayMatch(e *fpEval, c *fpCheck) bool {
	if c.unknown != "" {
		return true
	}
	if e.trace != nil {
		t0 := time.Now()
		no := c.certainlyNoMatch(e)
		e.trace(c.id, time.Since(t0))
		return !no
	}
	return !c.certainlyNoMatch(e)
}

// firstReachable follows the control flow of phase on e's state and
// returns the first detection rule it reaches for which stop says true
// (nil: none). stop is a plain function, so that the walk allocates
// nothing.
//
// It follows the flow twice at once: once with every skip rule in place
// (for the rules that any run-time removal of a skip rule removes as
// well), once with the skip rules that can be removed at run time taken as
// "may or may not jump". A guard whose condition holds jumps; other skip
// rules may jump (both the next rule and the marker stay reachable).
func (p *fpProgram) firstReachable(e *fpEval, phase int, stop func(*fpEval, *fpCheck) bool) *fpCheck {
	e.beginPhase()
	var bufA, bufB [256]bool
	pendA, pendB := bufA[:], bufB[:]
	if p.markers > len(bufA) {
		pendA, pendB = make([]bool, p.markers), make([]bool, p.markers)
	}
	reachA, reachB, follow := true, true, true
	for i := range p.flows[phase] {
		f := &p.flows[phase][i]
		switch {
		case f.marker >= 0:
			reachA = reachA || pendA[f.marker]
			reachB = reachB || pendB[f.marker]
			pendA[f.marker], pendB[f.marker] = false, false
		case f.skipN > 0:
			if f.giveUp {
				follow = false
			}
		case f.check != nil:
			reach := reachA
			if !f.covered {
				reach = reachB
			}
			if follow && !reach {
				continue
			}
			if stop(e, f.check) {
				return f.check
			}
		default: // a skip rule
			holds := f.guard != nil && e.guardHolds(f.guard)
			maybe := f.guard == nil
			if reachA && (holds || maybe) {
				if f.jump >= 0 {
					pendA[f.jump] = true
				}
				if holds {
					reachA = false
				}
			}
			if reachB && (holds || maybe) {
				if f.jump >= 0 {
					pendB[f.jump] = true
				}
				// A removable guard may not run: the next rule stays reachable.
			}
		}
	}
	return nil
}

// guardHolds evaluates a guard once per phase: its TX variable is not
// written later in the phase, so every guard on it sees the same value.
func (e *fpEval) guardHolds(g *fpGuard) bool {
	switch e.guard[g.idx] {
	case 1:
		return false
	case 2:
		return true
	}
	h := g.holds(e.st)
	e.guard[g.idx] = 1
	if h {
		e.guard[g.idx] = 2
	}
	return h
}

func (g *fpGuard) holds(st plugintypes.TransactionState) bool {
	arg := g.arg
	tx := st.Variables().TX()
	if g.argKey != "" {
		// An unknown name leaves the macro unexpanded: not a number, 0.
		arg = 0
		if vs := tx.Get(g.argKey); len(vs) > 0 {
			arg, _ = strconv.Atoi(vs[0])
		}
	}
	for _, v := range tx.Get(g.key) {
		n, _ := strconv.Atoi(v)
		if compareInt(g.op, n, arg) {
			return true
		}
	}
	return false
}

func compareInt(op string, a, b int) bool {
	switch op {
	case "lt":
		return a < b
	case "le":
		return a <= b
	case "gt":
		return a > b
	case "ge":
		return a >= b
	case "eq":
		return a == b
	}
	return false
}

// fpCtx carries what the earlier links of a chain matched, as supersets:
// the values (raw and transformed), the captures, and the values the
// links' private setvars wrote.
type fpCtx struct {
	matched, captures, synth  []string
	matchedOK, capOK, synthOK bool
	leak                      bool // a private setvar's name is read elsewhere
}

// add appends vs to *dst, taking its backing from e's free slices when
// it has none.
func (e *fpEval) add(dst *[]string, vs ...string) {
	if len(vs) == 0 {
		return
	}
	if *dst == nil {
		if n := len(e.free); n > 0 {
			*dst, e.free = e.free[n-1], e.free[:n-1]
		}
	}
	*dst = append(*dst, vs...)
}

// releaseCtx gives the context's slices back to e.
func (e *fpEval) releaseCtx(c *fpCtx) {
	if c.matched == nil && c.captures == nil && c.synth == nil {
		return
	}
	for _, s := range [...][]string{c.matched, c.captures, c.synth} {
		if cap(s) > 0 {
			clear(s[:cap(s)])
			e.free = append(e.free, s[:0])
		}
	}
	c.matched, c.captures, c.synth = nil, nil, nil
}

// fpEval is the state of a transaction's checks: the lean transaction and
// what was already extracted and transformed. Values of stable variables
// (fpProgram.stable) are kept from one phase to the next; the others, and
// the guards, are computed again in each phase.
type fpEval struct {
	p       *fpProgram
	st      plugintypes.TransactionState
	vals    [][]types.MatchData // by variable slot
	have    []bool
	tf      []tfMemo // by slot and transformation list
	tfm     []tfMulti
	touched []int32 // indexes of tf or tfm that are set
	guard   []uint8 // by guard index: 0 not evaluated, 1 false, 2 true
	// every value of a collection (by variable), for key regexes
	allVals [256][]types.MatchData
	allHave [256]bool
	allSet  []variables.RuleVariable // the variables set in allVals
	litBits []uint64                 // the literal sets of the scanned values (valInfo.lits)
	// tfc: transformation results by input value; infos: what one pass
	// over a value's bytes tells (checkcache.go).
	tfc   tfTab
	infos infoTab
	// xml: 0 not looked at in this phase, 1 the XML collection is empty,
	// 2 it is not (or absent).
	xml uint8
	// txMD backs the match data of TX values looked up by name.
	txMD  []kvMD
	txOut []types.MatchData
	// macs: the operators' macro expansions in this phase (TX values the
	// phase no longer writes: see compileOp).
	macs []macExp
	// vc: the verdict cache (valcache.go; nil: none); vv the entries of
	// a slot's values (parallel to vals, while vvHave), backed by vvBuf.
	vc     *valCache
	vv     [][]*valVerdict
	vvHave []bool
	vvBuf  []*valVerdict
	// free: string slices for the chain contexts (fpCtx), reused.
	free [][]string
	// trace, when set (tests), is given the time each check took.
	trace func(id int, d time.Duration)
}

type tfMemo struct {
	vals []tfMemoVal // one per value
	set  bool
}

type tfMemoVal struct {
	v    string
	ok   bool
	info int32 // 0: not looked at yet, else 1 + its index in fpEval.infos
}

// tfMulti memoizes, for multiMatch links, every distinct value a value
// takes through the transformations (the raw value included): the
// operator answers the same on equal inputs.
type tfMulti struct {
	flat []string
	vals []tfMultiVal
	set  bool
}

type tfMultiVal struct {
	from, to int32 // flat[from:to]
	ok       bool
}

func (p *fpProgram) newEval(st plugintypes.TransactionState) *fpEval {
	e, _ := p.pool.Get().(*fpEval)
	if e == nil {
		e = &fpEval{vals: make([][]types.MatchData, p.slots), have: make([]bool, p.slots),
			tf: make([]tfMemo, len(p.memoSlot)), tfm: make([]tfMulti, len(p.memoSlot)), guard: make([]uint8, p.guards),
			vv: make([][]*valVerdict, p.slots), vvHave: make([]bool, p.slots)}
	}
	e.st, e.p, e.vc = st, p, p.vc
	return e
}

// beginPhase forgets what the phase that just ran may have changed.
func (e *fpEval) beginPhase() {
	for s, ok := range e.have {
		if ok && !e.p.stable[s] {
			e.have[s], e.vals[s] = false, nil
			e.vvHave[s], e.vv[s] = false, nil
		}
	}
	keep := e.touched[:0]
	for _, k := range e.touched {
		if e.p.stable[e.p.memoSlot[k]] {
			keep = append(keep, k)
			continue
		}
		e.tf[k].set, e.tfm[k].set = false, false
	}
	e.touched = keep
	// e.tfc and e.infos stay: they are keyed by the (immutable) strings
	// themselves, and hold them.
	clear(e.guard)
	e.forgetAll()
	clear(e.macs)
	e.macs = e.macs[:0]
	e.xml = 0
}

func (p *fpProgram) freeEval(e *fpEval) {
	clear(e.vals)
	clear(e.have)
	clear(e.vv)
	clear(e.vvHave)
	clear(e.vvBuf)
	e.vvBuf = e.vvBuf[:0]
	for _, k := range e.touched {
		m := &e.tf[k]
		clear(m.vals)
		m.vals, m.set = m.vals[:0], false
		mm := &e.tfm[k]
		clear(mm.flat)
		mm.flat, mm.vals, mm.set = mm.flat[:0], mm.vals[:0], false
	}
	e.touched = e.touched[:0]
	e.litBits = e.litBits[:0]
	e.xml = 0
	clear(e.txMD)
	clear(e.txOut)
	e.txMD, e.txOut = e.txMD[:0], e.txOut[:0]
	e.tfc.reset()
	e.infos.reset()
	clear(e.macs)
	e.macs = e.macs[:0]
	clear(e.guard)
	e.forgetAll()
	e.st = nil
	p.pool.Put(e)
}

// values returns the variable's values (a superset of what Coraza
// selects: exclusions are not applied), extracted once per phase.
func (e *fpEval) values(v *fpVar) ([]types.MatchData, bool) {
	if e.have[v.slot] {
		return e.vals[v.slot], true
	}
	col := e.st.Collection(v.rv)
	if col == nil {
		return nil, false
	}
	var out []types.MatchData
	switch {
	case v.all:
		out = col.FindAll()
	case v.keyM.dfa != nil && v.rv == variables.TX:
		// TX holds many names: matching each against the key regex
		// costs more than the automaton. A superset of FindRegex, which
		// matches the lower-cased names.
		if v.txNames != nil && v.txNames.never() {
			break // no rule of the lean instance sets such a name
		}
		if rt, ok := col.(*runTX); ok && len(rt.extra) == 0 {
			// A native TX holding only its base names, which are lower
			// case: select them in place, without match data for every
			// name.
			out = rt.find(func(lk string) bool {
				return (v.txNames == nil || v.txNames.may(lk)) && v.keyM.match(lk)
			})
			break
		}
		for _, m := range e.all(v.rv, col) {
			k := m.Key()
			if v.txNames != nil && !v.txNames.may(strings.ToLower(k)) {
				continue
			}
			if v.keyM.match(k) {
				out = append(out, m)
			}
		}
	case v.keyRx != nil:
		k, ok := col.(collection.Keyed)
		if !ok {
			return nil, false
		}
		out = k.FindRegex(v.keyRx)
	case v.rv == variables.TX:
		// TX by name: Get looks the name up where FindString may walk
		// every name; the values are the same.
		out = e.txValues(v.key, e.txGet(v))
	default:
		k, ok := col.(collection.Keyed)
		if !ok {
			return nil, false
		}
		out = k.FindString(v.key)
	}
	e.vals[v.slot], e.have[v.slot] = out, true
	return out, true
}

// all returns every value of the collection, once per phase.
func (e *fpEval) all(rv variables.RuleVariable, col collection.Collection) []types.MatchData {
	if !e.allHave[rv] {
		e.allVals[rv], e.allHave[rv] = col.FindAll(), true
		e.allSet = append(e.allSet, rv)
	}
	return e.allVals[rv]
}

// transformed returns the values of variable v after the link's
// transformations, computed once per phase and transformation list.
func (e *fpEval) transformed(p *fpProgram, l *fpLink, v *fpVar, ms []types.MatchData) []tfMemoVal {
	k := int32(v.memo)
	m := &e.tf[k]
	if m.set {
		return m.vals
	}
	if !e.tfm[k].set {
		e.touched = append(e.touched, k)
	}
	out := m.vals[:0]
	for _, md := range ms {
		val, k, ok := e.tfChain(l, md.Value())
		out = append(out, tfMemoVal{v: val, ok: ok, info: k})
	}
	m.vals, m.set = out, true
	return out
}

// transformedMulti returns, per value of v, the distinct values it takes
// through the link's transformations (ok false when a transformation is
// not known for it), computed once per phase and transformation list.
func (e *fpEval) transformedMulti(p *fpProgram, l *fpLink, v *fpVar, ms []types.MatchData) *tfMulti {
	k := int32(v.memo)
	m := &e.tfm[k]
	if m.set {
		return m
	}
	if !e.tf[k].set {
		e.touched = append(e.touched, k)
	}
	flat, vals := m.flat[:0], m.vals[:0]
	for _, md := range ms {
		from := len(flat)
		val, ok := md.Value(), true
		flat = append(flat, val)
		b := e.infos.ents[e.info(val)-1].bytes
		for i, tf := range l.tfFns {
			id := l.tfIDs[i]
			if !b.meets(&tfTrigger[id]) {
				continue // unchanged
			}
			out, tok := e.tfc.apply(val, id, tf)
			if ok = tok; !ok {
				break
			}
			if out == val {
				continue
			}
			val, b = out, e.infos.ents[e.info(out)-1].bytes
			if !slices.Contains(flat[from:], val) {
				flat = append(flat, val)
			}
		}
		vals = append(vals, tfMultiVal{int32(from), int32(len(flat)), ok})
	}
	m.flat, m.vals, m.set = flat, vals, true
	return m
}

// certainlyNoMatch: Coraza evaluates the links of a chain in order and
// stops at the first that does not match; a link that matched has run its
// non-disruptive actions by then.
func (c *fpCheck) certainlyNoMatch(e *fpEval) bool {
	ctx := fpCtx{matchedOK: true, capOK: true, synthOK: true}
	defer e.releaseCtx(&ctx)
	for _, l := range c.links {
		if l.unknown != "" {
			if l.side || len(l.private) > 0 {
				return false
			}
			ctx.matchedOK, ctx.capOK = false, false
			continue
		}
		if l.knownNo(e) || l.noMatch(e, &ctx) {
			return true
		}
		if l.side || ctx.leak {
			return false
		}
	}
	return false
}

// knownNo reports whether the verdict cache proves that the link does not
// match any value of its variables (what noMatch then finds without
// computing anything, at less cost).
func (l *fpLink) knownNo(e *fpEval) bool {
	if l.vc < 0 || e.vc == nil || !l.plain {
		return false
	}
	for i := range l.vars {
		v := &l.vars[i]
		if v.xml {
			if !e.xmlEmpty() {
				return false
			}
			continue
		}
		ms, ok := e.values(v)
		if !ok || !allKnown(e.verdicts(v.slot, ms), l.vc) {
			return false
		}
	}
	return true
}

// noMatch decides the link; when it may match, it adds what it may have
// matched to ctx.
func (l *fpLink) noMatch(e *fpEval, ctx *fpCtx) bool {
	var out fpCtx
	defer e.releaseCtx(&out)
	out.matchedOK, out.capOK, out.synthOK = true, true, true
	maybe := false
	visit := func(v string) bool { // false: give up
		no, ok := l.valueNoMatch(e, ctx, v, &out)
		if !ok {
			return false
		}
		if !no {
			maybe = true
		}
		return true
	}
	for i := range l.vars {
		v := &l.vars[i]
		switch {
		case v.matched:
			if !ctx.matchedOK {
				return false
			}
			for _, m := range ctx.matched {
				if !visit(m) {
					return false
				}
			}
			continue
		case v.capture:
			if !ctx.capOK {
				return false
			}
			for _, m := range ctx.captures {
				if !visit(m) {
					return false
				}
			}
			continue
		case v.xml:
			if !e.xmlEmpty() {
				return false
			}
			continue
		}
		if v.synth {
			if !ctx.synthOK {
				return false
			}
			for _, m := range ctx.synth {
				if !visit(m) {
					return false
				}
			}
		}
		ms, ok := e.values(v)
		if !ok {
			return false
		}
		if v.count {
			if !visit(strconv.Itoa(len(ms))) {
				return false
			}
			continue
		}
		if !l.multi && len(v.later) == 0 {
			// The common case: transformed values memoized. A link that
			// later links depend on takes the long way below only when
			// one of its values may match.
			var vvs []*valVerdict
			if l.vc >= 0 && e.vc != nil {
				if vvs = e.verdicts(v.slot, ms); allKnown(vvs, l.vc) {
					continue
				}
			}
			no := true
			tvs := e.transformed(e.p, l, v, ms)
			for i := range tvs {
				tv := &tvs[i]
				if !tv.ok {
					no = false
					break
				}
				if vvs != nil && vvs[i].known(l.vc) {
					continue
				}
				if !l.neg && e.quickNo(&l.op, tv) {
					if vvs != nil {
						vvs[i].prove(l.vc)
					}
					continue
				}
				m, known := l.op.evalAll(e, ctx, tv.v)
				if !known || m != l.neg {
					no = false
					break
				}
				if vvs != nil {
					vvs[i].prove(l.vc)
				}
			}
			if no {
				continue
			}
			if !l.needCtx {
				return false
			}
		}
		if l.multi && len(v.later) == 0 {
			// multiMatch: the operator runs on the value before and
			// after each transformation.
			var vvs []*valVerdict
			if l.vc >= 0 && e.vc != nil {
				if vvs = e.verdicts(v.slot, ms); allKnown(vvs, l.vc) {
					continue
				}
			}
			m := e.transformedMulti(e.p, l, v, ms)
			no := true
			for i, mv := range m.vals {
				if !mv.ok {
					no = false
					break
				}
				if vvs != nil && vvs[i].known(l.vc) {
					continue
				}
				for _, tv := range m.flat[mv.from:mv.to] {
					if !l.neg {
						if q := (tfMemoVal{v: tv, ok: true}); e.quickNo(&l.op, &q) {
							continue
						}
					}
					if r, known := l.op.evalAll(e, ctx, tv); !known || r != l.neg {
						no = false
						break
					}
				}
				if !no {
					break
				}
				if vvs != nil {
					vvs[i].prove(l.vc)
				}
			}
			if no {
				continue
			}
			if !l.needCtx {
				return false
			}
		}
		for _, m := range ms {
			if writtenLater(v.later, m.Key()) || !visit(m.Value()) {
				return false
			}
		}
		if maybe && !l.needCtx {
			return false // no later link needs what matched
		}
	}
	if !maybe {
		return true
	}
	e.add(&ctx.matched, out.matched...)
	e.add(&ctx.captures, out.captures...)
	e.add(&ctx.synth, out.synth...)
	ctx.matchedOK = ctx.matchedOK && out.matchedOK
	ctx.capOK = ctx.capOK && out.capOK
	ctx.synthOK = ctx.synthOK && out.synthOK
	ctx.leak = ctx.leak || out.leak
	return false
}

// valueNoMatch decides one value: no=true if the link certainly does not
// match it; ok=false when a needed chain value is not known. When the
// value may match and a later link needs it, what it leaves behind goes
// to out.
func (l *fpLink) valueNoMatch(e *fpEval, ctx *fpCtx, raw string, out *fpCtx) (no, ok bool) {
	if !l.multi && !l.needCtx {
		v, tok := raw, true
		for i, tf := range l.tfFns {
			if v, tok = e.tfc.apply(v, l.tfIDs[i], tf); !tok {
				return false, true
			}
		}
		m, known := l.op.evalAll(e, ctx, v)
		return known && m == l.neg, true
	}
	v := raw
	// The values the link saw go to out.matched (kept only when the
	// value may match).
	start := len(out.matched)
	e.add(&out.matched, raw)
	decided := true
	check := func(v string) bool { // true: certainly no match
		m, known := l.op.evalAll(e, ctx, v)
		if !known {
			decided = false
			return false
		}
		return m == l.neg
	}
	allNo := true
	if l.multi {
		allNo = check(v)
	}
	for i, tf := range l.tfFns {
		var tok bool
		if v, tok = e.tfc.apply(v, l.tfIDs[i], tf); !tok {
			decided, allNo = false, false
			break
		}
		e.add(&out.matched, v)
		if l.multi && !check(v) {
			allNo = false
		}
	}
	if decided && allNo && check(v) {
		out.matched = out.matched[:start]
		return true, true
	}
	// May match: the candidates stay recorded.
	var caps []string
	if l.capture || len(l.private) > 0 {
		var cok bool
		caps, cok = l.op.captures(v)
		if !cok || !decided {
			out.capOK = false
		}
	}
	if l.capture {
		e.add(&out.captures, caps...)
	}
	for _, sv := range l.private {
		if !out.capOK || !decided {
			out.synthOK = false
			continue
		}
		name := sv.keyT.expand(e.st, caps, nil, v)
		for i := range sv.readers {
			if sv.readers[i].match(name) {
				out.leak = true // another rule would see it
			}
		}
		e.add(&out.synth, sv.valueT.expand(e.st, caps, nil, v))
	}
	return false, true
}

// captures returns the capture groups 0-8 of the expression on v, as
// Meridian's rx operator stores them (nil, false for other operators).
func (o *fpOp) captures(v string) ([]string, bool) {
	if o.kind != "rx" {
		return nil, false
	}
	var m []string
	if o.brx != nil {
		m = o.brx.re.FindStringSubmatch(v)
	} else {
		m = o.rx.re.FindStringSubmatch(v)
	}
	if len(m) > 9 {
		m = m[:9]
	}
	return m, true
}

// evalAll evaluates the operator on v for every value its argument can
// take (chain macros range over the earlier links' values).
func (o *fpOp) evalAll(e *fpEval, ctx *fpCtx, v string) (match, ok bool) {
	st := e.st
	if !o.dyn {
		return o.eval(e, v, "")
	}
	cands, okc := ctx.matched, ctx.matchedOK
	if o.dynCap {
		cands, okc = ctx.captures, ctx.capOK
	}
	if !okc {
		return false, false
	}
	for _, c := range cands {
		data := o.tmpl.expand(st, nil, &c, c)
		m, ok := o.eval(e, v, data)
		if !ok || m {
			return m, ok
		}
	}
	return false, true
}

// eval returns whether the operator matches v, and whether it could tell.
func (o *fpOp) eval(e *fpEval, v, dynData string) (match, ok bool) {
	switch o.kind {
	case "rx":
		if o.brx != nil {
			return o.brx.re.MatchString(v), true
		}
		return o.rx.matches(v), true
	case "pm", "pmFromFile", "pmf":
		if len(v) < o.minLen {
			return false, true
		}
		if o.pm != nil {
			return o.pm.match(v), true
		}
		return o.ac.Iter(v).Next() != nil, true
	case "detectSQLi":
		m, _ := libinjection.IsSQLi(v)
		return m, true
	case "detectXSS":
		return libinjection.IsXSS(v), true
	case "validateUtf8Encoding":
		return !utf8.ValidString(v), true
	case "validateUrlEncoding":
		if v == "" || strings.IndexByte(v, '%') < 0 {
			return false, true
		}
		return false, false
	case "validateByteRange":
		if v == "" {
			return false, true
		}
		for i := 0; i < len(v); i++ {
			if !o.bytes[v[i]] {
				return true, true
			}
		}
		return false, true
	case "unconditionalMatch":
		return true, true
	case "noMatch":
		return false, true
	}
	data := o.str
	switch {
	case o.dyn:
		data = dynData
	case o.mac != nil:
		data = e.expand(o)
	}
	switch o.kind {
	case "eq", "ge", "gt", "le", "lt":
		a, _ := strconv.Atoi(v)
		b, _ := strconv.Atoi(data)
		return compareInt(o.kind, a, b), true
	case "within":
		return strings.Contains(data, v), true
	case "streq":
		return v == data, true
	case "beginsWith":
		return strings.HasPrefix(v, data), true
	case "endsWith":
		return strings.HasSuffix(v, data), true
	case "contains":
		return strings.Contains(v, data), true
	}
	return false, false
}

// matches answers whether the expression matches anywhere in v, as
// Evaluate does without captures.
func (o *rxOp) matches(v string) bool {
	cheap := o.pre != nil && !o.pre.Fold && len(o.pre.Lits) == 1
	if cheap && !strings.Contains(v, o.pre.Lits[0]) {
		return false
	}
	switch o.dfaMatch(v) {
	case rxdfa.NoMatch:
		return false
	case rxdfa.Match:
		return true
	}
	if o.pre != nil && !cheap && !o.pre.MayMatch(v) {
		return false
	}
	return o.re.MatchString(v)
}

func writtenLater(later []string, key string) bool {
	if len(later) == 0 {
		return false
	}
	key = strings.ToLower(key)
	for _, w := range later {
		if keysOverlap(w, key) {
			return true
		}
	}
	return false
}

// forgetAll forgets the collections' values (e.all).
func (e *fpEval) forgetAll() {
	for _, rv := range e.allSet {
		e.allVals[rv], e.allHave[rv] = nil, false
	}
	e.allSet = e.allSet[:0]
}

// kvMD is a types.MatchData of a TX value.
type kvMD struct{ key, val string }

func (m *kvMD) Variable() variables.RuleVariable { return variables.TX }
func (m *kvMD) Key() string                      { return m.key }
func (m *kvMD) Value() string                    { return m.val }
func (m *kvMD) Message() string                  { return "" }
func (m *kvMD) Data() string                     { return "" }
func (m *kvMD) ChainLevel() int                  { return 0 }

// txValues gives the TX values of name as match data (backed by e.txMD:
// entries are never changed once handed out, growing keeps the old
// backing alive for them).
func (e *fpEval) txValues(name string, vs []string) []types.MatchData {
	if len(vs) == 0 {
		return nil
	}
	from := len(e.txOut)
	for _, v := range vs {
		e.txMD = append(e.txMD, kvMD{key: name, val: v})
		e.txOut = append(e.txOut, &e.txMD[len(e.txMD)-1])
	}
	return e.txOut[from:len(e.txOut):len(e.txOut)]
}

// xmlEmpty reports whether the XML collection is there and empty, once
// per phase (many links read XML:/* beside ARGS).
func (e *fpEval) xmlEmpty() bool {
	if e.xml == 0 {
		e.xml = 2
		if col := e.st.Collection(variables.XML); col != nil && len(col.FindAll()) == 0 {
			e.xml = 1
		}
	}
	return e.xml == 1
}

// txGet returns the values of TX variable v (by name): Get, or for a
// native transaction and one of its base names, the values in place.
func (e *fpEval) txGet(v *fpVar) []string {
	tx := e.st.Variables().TX()
	if v.txi > 0 {
		if rt, ok := tx.(*runTX); ok && rt.base == e.p.native.tx {
			if i := v.txi - 1; !rt.gone[i] && len(rt.vals[i]) > 0 {
				return rt.vals[i]
			}
			return nil
		}
	}
	return tx.Get(v.key)
}
