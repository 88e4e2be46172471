package waf

import (
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/corazawaf/coraza/v3/collection"
	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
	"github.com/corazawaf/coraza/v3/types"
	libinjection "github.com/corazawaf/libinjection-go"

	"github.com/meridian-platform/meridian/internal/waf/rxdfa"
)

// noMatch reports whether no detection rule of phase can match the
// transaction state st (the lean transaction after that phase); when it
// cannot tell, it returns false and the id of the first such rule.
//
// It follows the phase's control flow twice: once with every skip rule in
// place (for the rules that any run-time removal of a skip rule removes as
// well), once with the skip rules that can be removed at run time taken as
// "may or may not jump". A guard whose condition holds jumps; other skip
// rules may jump (both the next rule and the marker stay reachable).
func (p *fpProgram) noMatch(st plugintypes.TransactionState, phase int) (bool, int) {
	var bufA, bufB [256]bool
	pendA, pendB := bufA[:], bufB[:]
	if p.markers > len(bufA) {
		pendA, pendB = make([]bool, p.markers), make([]bool, p.markers)
	}
	reachA, reachB, follow := true, true, true
	var e *fpEval
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
			if !f.check.covered {
				reach = reachB
			}
			if follow && !reach {
				continue
			}
			if f.check.unknown != "" {
				return false, f.check.id
			}
			if e == nil {
				e = p.newEval(st)
				defer p.freeEval(e)
			}
			if !f.check.certainlyNoMatch(e) {
				return false, f.check.id
			}
		default: // a skip rule
			holds := f.guard != nil && f.guard.holds(st)
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
	return true, 0
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

// fpEval is the state of one phase's checks: the lean transaction and
// what was already extracted and transformed.
type fpEval struct {
	p    *fpProgram
	st   plugintypes.TransactionState
	vals [][]types.MatchData // by variable slot
	have []bool
	tf   map[int32][]tfMemoVal // by slot and transformation list: one per value
}

type tfMemoVal struct {
	v  string
	ok bool
}

func (p *fpProgram) newEval(st plugintypes.TransactionState) *fpEval {
	e, _ := p.pool.Get().(*fpEval)
	if e == nil {
		e = &fpEval{vals: make([][]types.MatchData, p.slots), have: make([]bool, p.slots), tf: map[int32][]tfMemoVal{}}
	}
	e.st, e.p = st, p
	return e
}

func (p *fpProgram) freeEval(e *fpEval) {
	clear(e.vals)
	clear(e.have)
	clear(e.tf)
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
	case v.keyRx != nil:
		k, ok := col.(collection.Keyed)
		if !ok {
			return nil, false
		}
		out = k.FindRegex(v.keyRx)
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

// transformed returns the values of variable v after the link's
// transformations, computed once per phase and transformation list.
func (e *fpEval) transformed(p *fpProgram, l *fpLink, v *fpVar, ms []types.MatchData) []tfMemoVal {
	k := int32(v.slot)*int32(p.chains) + l.chain
	if r, ok := e.tf[k]; ok {
		return r
	}
	out := make([]tfMemoVal, len(ms))
	for i, m := range ms {
		val, ok := m.Value(), true
		for _, t := range l.tfs {
			if val, ok = tfApply(t, val); !ok {
				break
			}
		}
		out[i] = tfMemoVal{val, ok}
	}
	e.tf[k] = out
	return out
}

// certainlyNoMatch: Coraza evaluates the links of a chain in order and
// stops at the first that does not match; a link that matched has run its
// non-disruptive actions by then.
func (c *fpCheck) certainlyNoMatch(e *fpEval) bool {
	ctx := fpCtx{matchedOK: true, capOK: true, synthOK: true}
	for _, l := range c.links {
		if l.unknown != "" {
			if l.side || len(l.private) > 0 {
				return false
			}
			ctx.matchedOK, ctx.capOK = false, false
			continue
		}
		if l.noMatch(e, &ctx) {
			return true
		}
		if l.side || ctx.leak {
			return false
		}
	}
	return false
}

// noMatch decides the link; when it may match, it adds what it may have
// matched to ctx.
func (l *fpLink) noMatch(e *fpEval, ctx *fpCtx) bool {
	var out fpCtx
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
			col := e.st.Collection(v.rv)
			if col == nil || len(col.FindAll()) > 0 {
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
		if !l.multi && !l.needCtx && len(v.later) == 0 {
			// The common case: transformed values memoized per phase.
			for _, tv := range e.transformed(e.p, l, v, ms) {
				if !tv.ok {
					return false
				}
				m, known := l.op.evalAll(e.st, ctx, tv.v)
				if !known || m != l.neg {
					return false
				}
			}
			continue
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
	ctx.matched = append(ctx.matched, out.matched...)
	ctx.captures = append(ctx.captures, out.captures...)
	ctx.synth = append(ctx.synth, out.synth...)
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
		for _, t := range l.tfs {
			if v, tok = tfApply(t, v); !tok {
				return false, true
			}
		}
		m, known := l.op.evalAll(e.st, ctx, v)
		return known && m == l.neg, true
	}
	v := raw
	seen := []string{raw}
	decided := true
	check := func(v string) bool { // true: certainly no match
		m, known := l.op.evalAll(e.st, ctx, v)
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
	for _, t := range l.tfs {
		var tok bool
		if v, tok = tfApply(t, v); !tok {
			decided, allNo = false, false
			break
		}
		seen = append(seen, v)
		if l.multi && !check(v) {
			allNo = false
		}
	}
	if decided && allNo && check(v) {
		return true, true
	}
	// May match: record the candidates.
	out.matched = append(out.matched, seen...)
	var caps []string
	if l.capture || len(l.private) > 0 {
		var cok bool
		caps, cok = l.op.captures(v)
		if !cok || !decided {
			out.capOK = false
		}
	}
	if l.capture {
		out.captures = append(out.captures, caps...)
	}
	for _, sv := range l.private {
		if !out.capOK || !decided {
			out.synthOK = false
			continue
		}
		name := expandWith(e.st, sv.key, caps, v)
		for _, rx := range sv.readers {
			if rx.MatchString(name) {
				out.leak = true // another rule would see it
			}
		}
		out.synth = append(out.synth, expandWith(e.st, sv.value, caps, v))
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

// expandWith expands TX:0-9 from caps, MATCHED_VAR as matched and other
// TX names from the transaction (unknown names stay as written, as
// Coraza's macros do).
func expandWith(st plugintypes.TransactionState, s string, caps []string, matched string) string {
	return macroRef.ReplaceAllStringFunc(s, func(ref string) string {
		inner := ref[2 : len(ref)-1]
		switch dynamicMacro(inner) {
		case "matched":
			return matched
		case "capture":
			i := int(inner[3] - '0')
			if i < len(caps) {
				return caps[i]
			}
			return ref
		}
		_, k, _ := strings.Cut(inner, ".")
		if vs := st.Variables().TX().Get(strings.ToLower(k)); len(vs) > 0 {
			return vs[0]
		}
		return ref
	})
}

// evalAll evaluates the operator on v for every value its argument can
// take (chain macros range over the earlier links' values).
func (o *fpOp) evalAll(st plugintypes.TransactionState, ctx *fpCtx, v string) (match, ok bool) {
	if !o.dyn {
		return o.eval(st, v, "")
	}
	cands, okc := ctx.matched, ctx.matchedOK
	if strings.Contains(strings.ToLower(o.str), "%{tx.") {
		for _, m := range macroRef.FindAllStringSubmatch(o.str, -1) {
			if dynamicMacro(m[1]) == "capture" {
				cands, okc = ctx.captures, ctx.capOK
			}
		}
	}
	if !okc {
		return false, false
	}
	for _, c := range cands {
		caps := make([]string, 10)
		for i := range caps {
			caps[i] = c
		}
		data := expandWith(st, o.str, caps, c)
		m, ok := o.eval(st, v, data)
		if !ok || m {
			return m, ok
		}
	}
	return false, true
}

// eval returns whether the operator matches v, and whether it could tell.
func (o *fpOp) eval(st plugintypes.TransactionState, v, dynData string) (match, ok bool) {
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
		data = o.mac.Expand(st)
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
