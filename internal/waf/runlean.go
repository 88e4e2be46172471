package waf

import (
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/corazawaf/coraza/v3"
	"github.com/corazawaf/coraza/v3/collection"
	"github.com/corazawaf/coraza/v3/experimental/plugins/macro"
	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
	"github.com/corazawaf/coraza/v3/types"
	"github.com/corazawaf/coraza/v3/types/variables"
)

// The lean instance's rules, followed natively.
//
// A native transaction (runstate.go) goes through the rules left in the
// lean instance phase by phase, in Coraza's order (rules and the markers
// the lean instance keeps, skip:N and skipAfter as Coraza counts them). A
// rule's outcome is taken from:
//
//   - a paranoia-level guard: its comparison on TX;
//   - the fast path's check of the rule: certainly no match, nothing runs;
//   - a single-link SecAction: it matches, its setvars and jumps run
//     (setvar exactly as Coraza's action computes it);
//   - a rule whose actions change nothing a native transaction or the
//     checks read (ctl:forceRequestBodyVariable without a body, removals
//     of targets of rules that are not in the lean instance, logging): it
//     does not matter whether it matches.
//
// Anything else may change state the native transaction does not model:
// the transaction goes to the lean instance (Tx.toLean).

// runProg is the native side of a configuration's fast path.
type runProg struct {
	steps    [6][]runStep
	kinds    [256]uint8 // runState.Collection by variable (bind)
	tx       *runTXBase // bind
	txInit   []string
	txVals   [][]string
	defaults runStateDefaults
	argLimit int
	// reqBodyAccess is the engine's SecRequestBodyAccess (no rule changes
	// it: a ctl that does is not inert).
	reqBodyAccess bool
	// respBodyAccess and respMimes: SecResponseBodyAccess and
	// SecResponseBodyMimeType (a response body to inspect goes to the
	// lean instance).
	respBodyAccess bool
	respMimes      []string
	pool           sync.Pool // *runState
}

type runStep struct {
	marker string // a SecMarker ("" for a rule)
	id     int
	check  *fpCheck // the rule as a check (nil or unknown: cannot prove a no match)
	guard  *fpGuard
	always bool    // a SecAction: it matches
	cmp    *runCmp // a comparison of a TX value decided exactly
	txOnly bool    // its macros read TX only
	inert  bool    // what it does when it matches changes nothing here
	sets   []runSetvar
	jump   string // skipAfter
	skipN  int
	// pre: what sets leave in TX when they run first (nothing written to
	// TX before in the transaction) and read nothing but TX (bind).
	pre *runPre
}

// runPre is the outcome of a step's setvars on the starting TX.
type runPre struct {
	idx   []int      // base names written
	vals  [][]string // their values (nil: removed)
	extra []runKV    // names added
}

type runSetvar struct {
	remove     bool
	key, value macro.Macro
	hasValue   bool
	// addKey: the value is "+%{tx.addKey}" (or "-" with addNeg).
	addKey string
	addNeg bool
}

// runProgIn is what buildRunProg needs from compileFastPath.
type runProgIn struct {
	items []*fpItem // the lean instance's rules and markers, in load order
	check func(it *fpItem) *fpCheck
	guard func(it *fpItem) (fpGuard, string, bool)
	// leanIDs and leanTags: ids and tags of the lean rules (a removal of
	// targets that names one of them is not inert).
	leanIDs  map[int]bool
	leanTags map[string]bool
	txInit   []string
	txVals   [][]string
	lean     string // the lean directives (SecArgumentsLimit)
}

// runInertActions change nothing a native transaction or the checks see.
var runInertActions = map[string]bool{"id": true, "phase": true, "pass": true, "nolog": true, "log": true,
	"auditlog": true, "noauditlog": true, "t": true, "tag": true, "ver": true, "rev": true, "msg": true,
	"logdata": true, "severity": true, "maturity": true, "accuracy": true, "chain": true, "multimatch": true}

// buildRunProg compiles the native side; nil and why when the lean
// instance holds something it cannot follow.
func buildRunProg(in runProgIn) (*runProg, string) {
	rp := &runProg{argLimit: 1000}
	for _, line := range strings.Split(in.lean, "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && strings.EqualFold(f[0], "SecArgumentsLimit") {
			n, err := strconv.Atoi(f[1])
			if err != nil || n <= 0 {
				return nil, "SecArgumentsLimit " + f[1]
			}
			rp.argLimit = n
		}
		if len(f) > 0 && strings.EqualFold(f[0], "SecRuleEngine") && (len(f) != 2 || strings.EqualFold(f[1], "Off")) {
			return nil, "rule engine off"
		}
		if len(f) > 0 && strings.EqualFold(f[0], "SecResponseBodyMimeType") {
			// Coraza splits the rest of the line at single spaces.
			_, rest, _ := strings.Cut(strings.TrimSpace(line), " ")
			rp.respMimes = strings.Split(rest, " ")
		}
		if len(f) > 0 && strings.EqualFold(f[0], "SecResponseBodyMimeTypesClear") {
			return nil, "SecResponseBodyMimeTypesClear"
		}
	}
	rp.txInit, rp.txVals = in.txInit, in.txVals
	for _, it := range in.items {
		if it.rule == nil {
			for ph := 1; ph <= 5; ph++ {
				rp.steps[ph] = append(rp.steps[ph], runStep{marker: it.marker})
			}
			continue
		}
		r := it.rule
		st := runStep{id: r.id}
		if g, m, ok := in.guard(it); ok {
			st.guard, st.jump = &g, m
			rp.steps[it.phase] = append(rp.steps[it.phase], st)
			continue
		}
		if c := in.check(it); c != nil && c.unknown == "" {
			st.check = c
		}
		st.inert = true
		for l := r; l != nil; l = l.chain {
			for _, a := range l.actions {
				if !runInert(a, in) {
					st.inert = false
				}
			}
		}
		if uncond := len(r.vars) == 0 && r.op == "unconditionalMatch"; r.chain == nil && (uncond || runCmpOf(r) != nil) {
			// Its actions, when they are all followed here.
			acts := true
			st.txOnly = true
			for _, a := range r.actions {
				switch {
				case runInert(a, in):
				case a.key == "setvar":
					sv, ok := runParseSetvar(a.val)
					if !ok {
						acts = false
					}
					for _, m := range macroRef.FindAllStringSubmatch(a.val, -1) {
						if c, _, _ := strings.Cut(strings.ToLower(m[1]), "."); c != "tx" {
							st.txOnly = false
						}
					}
					st.sets = append(st.sets, sv)
				case a.key == "skipafter":
					st.jump = a.val
				case a.key == "skip":
					n, err := strconv.Atoi(a.val)
					if err != nil || n < 1 {
						acts = false
					}
					st.skipN = n
				default:
					acts = false
				}
			}
			switch {
			case !acts:
				st.sets, st.jump, st.skipN = nil, "", 0
			case uncond:
				st.always = true
			default:
				st.cmp = runCmpOf(r)
			}
		}
		rp.steps[it.phase] = append(rp.steps[it.phase], st)
	}
	return rp, ""
}

func runInert(a slAction, in runProgIn) bool {
	if runInertActions[a.key] {
		return true
	}
	if a.key != "ctl" {
		return false
	}
	k, v, _ := strings.Cut(a.val, "=")
	switch strings.ToLower(strings.TrimSpace(k)) {
	case "forcerequestbodyvariable":
		return true // a native transaction has no body
	case "auditengine", "auditlogparts":
		return true
	case "ruleremovetargetbyid":
		ids, _, _ := strings.Cut(v, ";")
		lo, hi, ok := idRange(ids)
		if !ok {
			return false
		}
		for id := range in.leanIDs {
			if id >= lo && id <= hi {
				return false
			}
		}
		return true // the checks ignore exclusions
	case "ruleremovetargetbytag":
		tag, _, _ := strings.Cut(v, ";")
		return !in.leanTags[strings.ToLower(strings.TrimSpace(tag))]
	case "ruleremovebyid":
		// Removing detection rules changes nothing the checks read (they
		// consider every rule that may run).
		for _, f := range strings.Fields(v) {
			lo, hi, ok := idRange(f)
			if !ok {
				return false
			}
			for id := range in.leanIDs {
				if id >= lo && id <= hi {
					return false
				}
			}
		}
		return true
	case "ruleremovebytag":
		return !in.leanTags[strings.ToLower(strings.TrimSpace(v))]
	}
	return false
}

func runParseSetvar(val string) (runSetvar, bool) {
	var sv runSetvar
	if strings.HasPrefix(val, "!") {
		sv.remove, val = true, val[1:]
	}
	key, value, hasValue := strings.Cut(val, "=")
	col, k, ok := strings.Cut(key, ".")
	if !ok || !strings.EqualFold(col, "tx") || strings.TrimSpace(k) == "" {
		return sv, false
	}
	km, err := macro.NewMacro(k)
	if err != nil {
		return sv, false
	}
	sv.key, sv.hasValue = km, hasValue
	if hasValue {
		vm, err := macro.NewMacro(value)
		if err != nil {
			return sv, false
		}
		sv.value = vm
		if len(value) > 1 && (value[0] == '+' || value[0] == '-') {
			if m := macroRef.FindStringSubmatch(value[1:]); m != nil && m[0] == value[1:] {
				if c, k, ok := strings.Cut(strings.ToLower(m[1]), "."); ok && c == "tx" && k != "" && !strings.ContainsAny(k, "%{}") {
					sv.addKey, sv.addNeg = k, value[0] == '-'
				}
			}
		}
	}
	return sv, true
}

// apply runs the setvar as Coraza's setvar action does.
func (sv *runSetvar) apply(st plugintypes.TransactionState) {
	key := strings.ToLower(sv.key.Expand(st))
	col := st.Variables().TX()
	if sv.remove {
		col.Remove(key)
		return
	}
	cur := ""
	if r := col.Get(key); len(r) > 0 {
		cur = r[0]
	}
	set := func(v string) {
		if t, ok := col.(*runTX); ok {
			t.set1(key, v)
			return
		}
		col.Set(key, []string{v})
	}
	if sv.addKey != "" {
		// tx.x=+%{tx.y}: the sum without building "+N" first.
		if r := col.Get(sv.addKey); len(r) > 0 {
			if n, err := strconv.Atoi(r[0]); err == nil && len(r[0]) > 0 && r[0][0] != '+' && r[0][0] != '-' {
				c := 0
				if cur != "" {
					var err error
					if c, err = strconv.Atoi(cur); err != nil {
						return
					}
				}
				if sv.addNeg {
					n = -n
				}
				set(strconv.Itoa(c + n))
				return
			}
		}
	}
	value := ""
	if sv.hasValue {
		value = sv.value.Expand(st)
	}
	switch {
	case value == "":
		set("")
	case value[0] == '+' || value[0] == '-':
		n := 0
		if len(value) > 1 {
			var err error
			n, err = strconv.Atoi(value[1:])
			if err != nil {
				if strings.HasPrefix(value[1:], "tx.") {
					return
				}
				set(value)
				return
			}
		}
		c := 0
		if cur != "" {
			var err error
			if c, err = strconv.Atoi(cur); err != nil {
				return
			}
		}
		if value[0] == '-' {
			n = -n
		}
		set(strconv.Itoa(c + n))
	default:
		set(value)
	}
}

// bind takes what a native transaction needs from the compiled lean
// instance: the values a fresh transaction's variables hold, and the
// engine's settings; false when it does not fit (response bodies
// inspected, case-sensitive argument names).
func (rp *runProg) bind(lean coraza.WAF) (string, bool) {
	tx := lean.NewTransaction()
	defer tx.Close()
	st, ok := tx.(plugintypes.TransactionState)
	if !ok {
		return "no transaction state", false
	}
	rp.reqBodyAccess = tx.IsRequestBodyAccessible()
	rp.respBodyAccess = tx.IsResponseBodyAccessible()
	// TX as a fresh transaction holds it (the captures), then the folded
	// values (fpProgram.initTX).
	b := &runTXBase{idx: map[string]int{}}
	for _, m := range st.Variables().TX().FindAll() {
		k := strings.ToLower(m.Key())
		if k != m.Key() {
			return "TX name " + m.Key(), false
		}
		if j, ok := b.idx[k]; ok {
			b.vals[j] = append(b.vals[j], m.Value())
			continue
		}
		b.idx[k] = len(b.keys)
		b.keys, b.vals = append(b.keys, k), append(b.vals, []string{m.Value()})
	}
	for i, k := range rp.txInit {
		k = strings.ToLower(k)
		if j, ok := b.idx[k]; ok {
			b.vals[j] = rp.txVals[i]
			continue
		}
		b.idx[k] = len(b.keys)
		b.keys, b.vals = append(b.keys, k), append(b.vals, rp.txVals[i])
	}
	rp.tx = b
	tx.ProcessURI("/?A=1", "GET", "HTTP/1.1")
	if k, ok := st.Collection(variables.ArgsGet).(collection.Keyed); !ok || len(k.Get("a")) != 1 {
		return "case-sensitive argument names", false
	}
	rp.defaults = runStateDefaults{single: map[variables.RuleVariable]string{}, none: map[variables.RuleVariable]bool{},
		noop: map[variables.RuleVariable]bool{}}
	for name := range supportedVars {
		rv, err := variables.Parse(name)
		if err != nil {
			continue
		}
		switch c := st.Collection(rv).(type) {
		case nil:
			rp.defaults.none[rv] = true
		case collection.Single:
			if !runSingleVars[rv] {
				rp.defaults.single[rv] = c.Get()
			}
		case collection.Keyed:
		default:
			if c.Name() == "" && len(c.FindAll()) == 0 && rv != variables.ArgsCombinedSize {
				rp.defaults.noop[rv] = true
			}
		}
	}
	k := newRunState(rp)
	for rv := range rp.kinds {
		rp.kinds[rv] = k.collectionKind(variables.RuleVariable(rv))
	}
	// Steps whose setvars read only TX: their outcome on the starting TX,
	// computed once.
	for ph := range rp.steps {
		for i := range rp.steps[ph] {
			st := &rp.steps[ph][i]
			if !st.always || len(st.sets) == 0 || !st.txOnly {
				continue
			}
			s := newRunState(rp)
			for j := range st.sets {
				st.sets[j].apply(s)
			}
			idx, extra := s.tx.writes()
			pre := &runPre{idx: idx, extra: slices.Clone(extra)}
			for _, i := range idx {
				var v []string
				if !s.tx.gone[i] {
					v = slices.Clone(s.tx.vals[i])
				}
				pre.vals = append(pre.vals, v)
			}
			st.pre = pre
		}
	}
	return "", true
}

// apply makes t what the step's setvars would (t is as it started).
func (p *runPre) apply(t *runTX) {
	for k, i := range p.idx {
		if p.vals[k] == nil {
			t.gone[i], t.vals[i] = true, nil
			continue
		}
		t.vals[i] = p.vals[k]
	}
	t.extra = append(t.extra, p.extra...)
	t.dirty = true
}

func (rp *runProg) get(id string) *runState {
	s, _ := rp.pool.Get().(*runState)
	if s == nil {
		s = newRunState(rp)
	}
	s.reset(id)
	return s
}

func (rp *runProg) put(s *runState) {
	s.reset("")
	rp.pool.Put(s)
}

// run follows phase's lean rules on the native state (e: the fast path's
// memo bound to it); false: a rule's outcome or effect is not known here.
func (rp *runProg) run(s *runState, e *fpEval, phase int) bool {
	s.phase = types.RulePhase(phase)
	// The checks' memo is made to forget what may have changed (the
	// phase's new variables, TX after a setvar) only before a check needs
	// it: noMatch forgets again before the detection checks.
	stale := true
	for i := range rp.steps[phase] {
		st := &rp.steps[phase][i]
		if s.skipAfter != "" {
			if st.marker == s.skipAfter {
				s.skipAfter = ""
			}
			continue
		}
		if s.skip > 0 {
			s.skip--
			continue
		}
		if st.marker != "" {
			continue
		}
		var match bool
		switch {
		case st.guard != nil:
			match = st.guard.holds(s)
		case st.check != nil && st.checkNo(e, &stale):
			match = false
		case st.always:
			match = true
		case st.cmp != nil && st.cmp.decide(s, &match):
		case st.inert:
			continue
		default:
			s.declined = st.id
			return false
		}
		if !match {
			continue
		}
		if st.pre != nil && !s.tx.dirty {
			st.pre.apply(&s.tx)
		} else {
			for j := range st.sets {
				st.sets[j].apply(s)
			}
		}
		if len(st.sets) > 0 {
			stale = true
		}
		if st.jump != "" {
			s.skipAfter = st.jump
		}
		if st.skipN > 0 {
			s.skip = st.skipN
		}
	}
	s.skip = 0
	return true
}

// checkNo reports whether the step's rule certainly does not match.
func (st *runStep) checkNo(e *fpEval, stale *bool) bool {
	if *stale {
		e.beginPhase()
		*stale = false
	}
	return st.check.certainlyNoMatch(e)
}

// runCmp is a single-link rule comparing one TX value (or how many it
// has) with a number, as Coraza's numeric operators do: both sides
// through strconv.Atoi (0 when not a number).
type runCmp struct {
	key   string // lower case
	count bool
	op    string
	neg   bool
	arg   macro.Macro
	tfs   []string
}

func runCmpOf(r *slRule) *runCmp {
	if r.chain != nil || len(r.vars) != 1 || r.multi {
		return nil
	}
	v := r.vars[0]
	if v.name != "TX" || v.key == "" || v.keyRx || v.exclude || v.count && len(r.tfs) > 0 {
		return nil
	}
	switch r.op {
	case "eq", "ge", "gt", "le", "lt":
	default:
		return nil
	}
	for _, m := range macroRef.FindAllStringSubmatch(r.opArg, -1) {
		if c, _, _ := strings.Cut(strings.ToLower(m[1]), "."); c != "tx" {
			return nil
		}
	}
	for _, t := range r.tfs {
		if _, ok := tfApply(t, ""); !ok && tfNames[t] == nil {
			return nil
		}
	}
	arg, err := macro.NewMacro(r.opArg)
	if err != nil {
		return nil
	}
	return &runCmp{key: strings.ToLower(v.key), count: v.count, op: r.op, neg: r.neg, arg: arg, tfs: r.tfs}
}

// decide sets match; false when it cannot tell (a value a transformation
// is not known for, several values).
func (c *runCmp) decide(s *runState, match *bool) bool {
	b, _ := strconv.Atoi(c.arg.Expand(s))
	vs := s.tx.Get(c.key)
	if c.count {
		*match = compareInt(c.op, len(vs), b) != c.neg
		return true
	}
	switch len(vs) {
	case 0:
		*match = false // nothing to compare, negated or not
		return true
	case 1:
	default:
		return false
	}
	v := vs[0]
	for _, t := range c.tfs {
		var ok bool
		if v, ok = tfApply(t, v); !ok {
			return false
		}
	}
	a, _ := strconv.Atoi(v)
	*match = compareInt(c.op, a, b) != c.neg
	return true
}

// wantsResponseBody is Coraza's IsResponseBodyAccessible and
// IsResponseBodyProcessable for s (no rule here forces the response body
// variable: such a ctl is not inert).
func (rp *runProg) wantsResponseBody(s *runState) bool {
	return rp.respBodyAccess && slices.Contains(rp.respMimes, s.respCT)
}
