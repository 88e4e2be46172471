package waf

import (
	"regexp"
	"strconv"
	"strings"
)

// Folding the lean instance's constant bookkeeping.
//
// Most bookkeeping rules of the CRS compute the same TX values on every
// request: the setup (SecAction setvar), the defaults of the
// initialization (&TX:x "@eq 0" setvar:tx.x=...), the paranoia-level
// guards that never jump at the configured level and the score sums that
// add the detection rules' scores, which are 0 as long as no detection
// rule matched (the lean instance runs none). Coraza spends about a
// microsecond on each. foldLean evaluates the lean rules at compile time
// in execution order (phase by phase, in load order), on what is known of
// TX at each point:
//
//   - a rule whose first link certainly does not match is left out (its
//     actions never run);
//   - at the start of phase 1, as long as only such rules, rules whose
//     first link certainly matches with constant setvars, static jumps and
//     rules that neither read nor write TX nor jump have run, the values
//     the constant setvars leave are what every lean transaction starts
//     with (set in Go before phase 1: a setvar action costs Coraza far
//     more; the rules that read TX all come later, so they see the same
//     values), and those rules are left out; a static jump leaves out the
//     rules it skips;
//   - a rule that certainly matches and whose setvars leave TX as it is
//     (tx.score=+0 on 0) is left out.
//
// Anything else runs in the lean instance as before, and what it may
// write becomes unknown. A rule that a run-time ctl can remove is not
// known to run, so after the first rule that may remove others nothing is
// folded any more and a rule's writes count only when no run-time removal
// can take the rule out. Rules whose targets or actions a directive
// updates are never evaluated here.

// foldIn is what foldLean needs from compileFastPath.
type foldIn struct {
	items     []*fpItem
	inLean    func(it *fpItem) bool // the rule is in the lean instance and not removed at configuration time
	updated   func(r *slRule) bool  // a directive changes its targets or actions
	removable func(r *slRule) bool  // a run-time ctl can remove it
	removes   func(r *slRule) bool  // it carries a run-time removal ctl
	usedID    func(id int) bool     // the id is taken
}

// foldOut: the items to leave out of the lean instance, and the TX values
// a lean transaction starts with (those the rules from item position at on
// would have set).
type foldOut struct {
	skip  map[int]bool
	at    int
	rules int      // rules folded into the initial values
	keys  []string // the TX names the action sets
	vals  []string // and their values
}

// txKnown is what is known of TX at a point: exact values (present or
// absent) for the names in vals; names in unknown (or with a prefix in
// unknownPfx) may hold anything; with all, every name is unknown.
type txKnown struct {
	vals       map[string]txVal
	unknown    map[string]bool
	unknownPfx []string
	all        bool
}

type txVal struct {
	v       string
	present bool
}

func (k *txKnown) get(name string) (txVal, bool) {
	name = strings.ToLower(name)
	if k.all || k.unknown[name] || len(name) == 1 && name[0] >= '0' && name[0] <= '9' {
		return txVal{}, false
	}
	for _, p := range k.unknownPfx {
		if strings.HasPrefix(name, p) {
			return txVal{}, false
		}
	}
	return k.vals[name], true // absent when not in vals
}

func (k *txKnown) set(name string, v txVal) {
	name = strings.ToLower(name)
	k.vals[name] = v
}

// forget makes what a rule that may or may not run may write unknown.
func (k *txKnown) forget(r *slRule) {
	for l := r; l != nil; l = l.chain {
		for _, a := range l.actions {
			switch a.key {
			case "setvar":
				name := strings.TrimPrefix(a.val, "!")
				name, _, _ = strings.Cut(name, "=")
				col, key, ok := strings.Cut(strings.TrimSpace(name), ".")
				if !ok || !strings.EqualFold(col, "tx") {
					continue
				}
				key = strings.ToLower(key)
				if i := strings.Index(key, "%{"); i >= 0 {
					k.unknownPfx = append(k.unknownPfx, key[:i])
					continue
				}
				k.unknown[key] = true
			case "expirevar", "deprecatevar", "setuid", "setsid", "setrsc", "initcol":
				k.all = true
			}
		}
	}
}

// expand expands the TX macros of s from k (false: a macro is unknown or
// names something else).
func (k *txKnown) expand(s string) (string, bool) {
	if !strings.Contains(s, "%{") {
		return s, true
	}
	ok := true
	out := macroRef.ReplaceAllStringFunc(s, func(ref string) string {
		col, key, found := strings.Cut(ref[2:len(ref)-1], ".")
		if !found || !strings.EqualFold(col, "tx") {
			ok = false
			return ""
		}
		v, known := k.get(key)
		if !known || !v.present {
			ok = false
			return ""
		}
		return v.v
	})
	return out, ok
}

// cond evaluates the first link of r: 1 certainly matches, 0 certainly
// does not, -1 unknown.
func (k *txKnown) cond(r *slRule) int {
	if r.op == "unconditionalMatch" && len(r.vars) == 0 {
		return 1
	}
	if len(r.vars) != 1 || r.multi {
		return -1
	}
	v := r.vars[0]
	if v.name != "TX" || v.key == "" || v.keyRx || v.exclude {
		return -1
	}
	switch r.op {
	case "eq", "ge", "gt", "le", "lt":
	default:
		return -1
	}
	if strings.ContainsAny(r.opArg, "\\") {
		return -1
	}
	arg, ok := k.expand(r.opArg)
	if !ok {
		return -1
	}
	tv, known := k.get(v.key)
	if !known {
		return -1
	}
	var val string
	switch {
	case v.count:
		if len(r.tfs) > 0 {
			return -1
		}
		val = "0"
		if tv.present {
			val = "1"
		}
	case !tv.present:
		return 0 // no value: nothing to match, negated or not
	default:
		val = tv.v
		for _, t := range r.tfs {
			if val, ok = tfApply(t, val); !ok {
				return -1
			}
		}
	}
	a, _ := strconv.Atoi(val)
	b, _ := strconv.Atoi(arg)
	if compareInt(r.op, a, b) != r.neg {
		return 1
	}
	return 0
}

// foldActions are the actions that change nothing but TX (setvar) or
// nothing at all when a bookkeeping rule matches.
var foldActions = map[string]bool{"id": true, "phase": true, "pass": true, "nolog": true, "log": true,
	"auditlog": true, "noauditlog": true, "t": true, "tag": true, "ver": true, "rev": true, "msg": true,
	"logdata": true, "severity": true, "maturity": true, "accuracy": true, "setvar": true}

type foldSet struct{ key, val string }

// setvars returns the setvars of a single-link rule that certainly
// matches, with their values computed on k (false: not all constant, or
// the rule does more than set TX).
func (k *txKnown) setvars(r *slRule) ([]foldSet, bool) {
	if r.chain != nil {
		return nil, false
	}
	var out []foldSet
	sim := &txKnown{vals: map[string]txVal{}, unknown: k.unknown, unknownPfx: k.unknownPfx, all: k.all}
	for n, v := range k.vals {
		sim.vals[n] = v
	}
	for _, a := range r.actions {
		if !foldActions[a.key] {
			return nil, false
		}
		if a.key != "setvar" {
			continue
		}
		if strings.HasPrefix(a.val, "!") || strings.ContainsAny(a.val, "'\"\\\n") {
			return nil, false
		}
		name, value, hasValue := strings.Cut(a.val, "=")
		col, key, ok := strings.Cut(name, ".")
		if !hasValue || !ok || !strings.EqualFold(col, "tx") || strings.Contains(key, "%{") || key == "" || strings.ContainsAny(key, " \t") {
			return nil, false
		}
		key = strings.ToLower(key)
		value, ok = sim.expand(value)
		if !ok || strings.Contains(value, "%{") {
			return nil, false
		}
		cur, known := sim.get(key)
		if !known {
			return nil, false
		}
		res := value
		if value != "" && (value[0] == '+' || value[0] == '-') {
			n := 0
			if len(value) > 1 {
				var err error
				if n, err = strconv.Atoi(value[1:]); err != nil {
					return nil, false
				}
			}
			c := 0
			if cur.present && cur.v != "" {
				var err error
				if c, err = strconv.Atoi(cur.v); err != nil {
					return nil, false
				}
			}
			if value[0] == '-' {
				n = -n
			}
			res = strconv.Itoa(c + n)
		}
		sim.set(key, txVal{res, true})
		out = append(out, foldSet{key, res})
	}
	return out, true
}

// readsTX reports whether any link of r reads TX (a TX target or a TX
// macro anywhere).
func readsTX(r *slRule) bool {
	for l := r; l != nil; l = l.chain {
		for _, v := range l.vars {
			if v.name == "TX" {
				return true
			}
		}
		if strings.Contains(strings.ToLower(l.opArg), "%{tx.") {
			return true
		}
		for _, a := range l.actions {
			if strings.Contains(strings.ToLower(a.val), "%{tx.") {
				return true
			}
		}
	}
	return false
}

// passThrough reports whether r neither reads nor writes TX, does not
// jump and does nothing that changes which rules run.
func passThrough(r *slRule) bool {
	if readsTX(r) {
		return false
	}
	for l := r; l != nil; l = l.chain {
		for _, a := range l.actions {
			switch a.key {
			case "setvar", "capture", "skip", "skipafter", "expirevar", "deprecatevar", "initcol", "setuid", "setsid", "setrsc", "exec":
				return false
			case "ctl":
				k, _, _ := strings.Cut(a.val, "=")
				switch strings.ToLower(strings.TrimSpace(k)) {
				case "requestbodyprocessor", "forcerequestbodyvariable", "requestbodyaccess":
				default:
					return false
				}
			}
		}
	}
	return true
}

func foldLean(in foldIn) foldOut {
	out := foldOut{skip: map[int]bool{}, at: -1}
	k := &txKnown{vals: map[string]txVal{}, unknown: map[string]bool{}}
	open := true         // still folding (phase 1, no removal ctl ran yet)
	removalsRan := false // a rule with a run-time removal ctl may have run
	var sets []foldSet   // gathered setvars, in order
	firstSet := map[string]int{}
	for phase := 1; phase <= 5; phase++ {
		maybeSkipped := false // a jump that may or may not happen came earlier in the phase
		for i := 0; i < len(in.items); i++ {
			it := in.items[i]
			if it.rule == nil || it.phase != phase || !in.inLean(it) {
				continue
			}
			r := it.rule
			c := -1
			if !in.updated(r) {
				c = k.cond(r)
			}
			if c == 0 {
				out.skip[it.pos] = true // never matches: no action runs
				continue
			}
			certain := c == 1 && !maybeSkipped && !(removalsRan && in.removable(r))
			if m, ok := r.action("skipafter"); ok && r.chain == nil && certain && open && pureSkip(r) {
				// A jump that always happens: it and the rules it skips
				// are left out.
				out.skip[it.pos] = true
				for j := i + 1; j < len(in.items); j++ {
					x := in.items[j]
					if x.rule == nil {
						if x.marker == m {
							i = j
							break
						}
						continue
					}
					if x.phase != phase {
						continue
					}
					if in.inLean(x) {
						out.skip[x.pos] = true
					}
					i = j
				}
				continue
			}
			if c == 1 && !in.updated(r) {
				if svs, ok := k.setvars(r); ok {
					if certain && open {
						for _, s := range svs {
							k.set(s.key, txVal{s.val, true})
							if _, seen := firstSet[s.key]; !seen {
								firstSet[s.key] = len(sets)
								sets = append(sets, s)
							} else {
								sets[firstSet[s.key]].val = s.val
							}
						}
						if out.at < 0 {
							out.at = it.pos
						}
						out.skip[it.pos] = true
						out.rules++
						continue
					}
					noop := true
					for _, s := range svs {
						if cur, _ := k.get(s.key); !cur.present || cur.v != s.val {
							noop = false
						}
					}
					if noop {
						out.skip[it.pos] = true // changes nothing, whether it runs or not
						continue
					}
					if certain {
						for _, s := range svs {
							k.set(s.key, txVal{s.val, true})
						}
						open = false
						continue
					}
				}
			}
			// Runs as before; what it may write is unknown from here on.
			if !passThrough(r) {
				open = false
			}
			if in.removes(r) {
				open, removalsRan = false, true
			}
			k.forget(r)
			if _, ok := r.action("skipafter"); ok {
				maybeSkipped = true
			}
			if _, ok := r.action("skip"); ok {
				maybeSkipped = true
			}
		}
		open = false
	}
	if len(sets) == 0 {
		out.at, out.rules = -1, 0
		// nothing gathered: the left-out rules are all no-ops
		return out
	}
	for _, s := range sets {
		out.keys = append(out.keys, s.key)
		out.vals = append(out.vals, s.val)
	}
	return out
}

// leanTXNames are the TX names the lean instance's rules can set: exact
// names, and prefixes of names built with macros. Coraza writes TX only
// through setvar and the captures (TX:0-9).
type leanTXNames struct {
	exact    []string
	prefixes []string
}

func (n *leanTXNames) add(keys ...string) {
	for _, k := range keys {
		n.exact = append(n.exact, strings.ToLower(k))
	}
}

func (n *leanTXNames) addRule(r *slRule) {
	for l := r; l != nil; l = l.chain {
		for _, a := range l.actions {
			switch a.key {
			case "capture":
				n.add("0", "1", "2", "3", "4", "5", "6", "7", "8", "9")
			case "setvar":
				if strings.HasPrefix(a.val, "!") {
					continue
				}
				name, _, _ := strings.Cut(a.val, "=")
				col, key, ok := strings.Cut(name, ".")
				if !ok || !strings.EqualFold(col, "tx") {
					continue
				}
				key = strings.ToLower(key)
				if i := strings.Index(key, "%{"); i >= 0 {
					n.prefixes = append(n.prefixes, key[:i])
					continue
				}
				n.add(key)
			}
		}
	}
}

// txNameFilter says which TX names of the lean transaction a key regex
// can select: the exact names it matches, and names with one of the
// prefixes. A name it rules out cannot match.
type txNameFilter struct {
	exact    map[string]bool
	prefixes []string
}

// matching returns the filter for the key regex rx (written as expr);
// nil when every name must be tried.
func (n *leanTXNames) matching(rx *regexp.Regexp, expr string) *txNameFilter {
	f := &txNameFilter{exact: map[string]bool{}}
	for _, k := range n.exact {
		if rx.MatchString(k) {
			f.exact[k] = true
		}
	}
	lit := rxLiteralPrefix(expr)
	anchored := strings.HasPrefix(expr, "^")
	for _, p := range n.prefixes {
		// An anchored literal start rules out the prefixes it disagrees
		// with; anything else may match a name with the prefix.
		if anchored && !strings.HasPrefix(lit, p) && !strings.HasPrefix(p, lit) {
			continue
		}
		f.prefixes = append(f.prefixes, p)
	}
	return f
}

// may reports whether name can be selected.
func (f *txNameFilter) may(name string) bool {
	if f.exact[name] {
		return true
	}
	for _, p := range f.prefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// never reports whether no name can be selected.
func (f *txNameFilter) never() bool { return len(f.exact) == 0 && len(f.prefixes) == 0 }
