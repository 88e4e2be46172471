package waf

import (
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing/fstest"

	ahocorasick "github.com/petar-dambovaliev/aho-corasick"

	"github.com/corazawaf/coraza/v3/experimental/plugins/macro"
	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
	"github.com/corazawaf/coraza/v3/types/variables"
)

// The no-match fast path.
//
// Most requests match no CRS detection rule, yet Coraza spends about 1.3 µs
// of bookkeeping on every rule it evaluates. At compile time Meridian reads
// the loaded rules (fastparse.go) and splits them in two:
//
//   - bookkeeping rules: no msg, no disruptive action but pass (the CRS
//     initialization, paranoia-level guards, exception ctl rules, the
//     score sums). They run in a lean Coraza instance that has only them,
//     with the same engine settings: it parses the request exactly as the
//     full instance does (arguments, cookies, body processors) and keeps
//     the TX collection exactly as the full instance would, as long as no
//     detection rule matches.
//   - detection rules (with msg, or deny/block/drop/redirect/allow): for
//     each of them, after each phase of the lean transaction, Meridian
//     decides from the lean transaction's variables whether it certainly
//     cannot match (operators and transformations re-implemented where that
//     is exact, anything else "unknown").
//
// If every detection rule of every phase certainly cannot match, Coraza's
// verdict is known: no interruption and no matched rule with a message,
// which is what the lean transaction reports. Otherwise the request is
// replayed into a transaction of the full instance, which decides. See
// doc.go for the safety argument.

// fpProgram is the compiled fast path of one configuration.
type fpProgram struct {
	lean    string      // directives of the lean instance
	leanFS  fs.FS       // root FS of the lean instance
	flows   [6][]fpFlow // by phase, in load order: markers, skip rules, detection rules
	markers int
	slots   int
	chains  int // distinct transformation lists
	// stable[slot]: the variable's values do not change after phase 1
	// (request line, headers, cookies, query arguments), so what was
	// extracted and transformed in one phase holds for the later ones.
	stable []bool
	guards int // distinct guards (memoized per phase)
	// txInit are the TX names a lean transaction starts with (the folded
	// constant bookkeeping, fastfold.go), txInitVals their values.
	txInit     []string
	txInitVals [][]string
	// memoSlot[i] is the slot of memo index i (fpVar.memo: one per
	// variable slot and transformation list that some link uses).
	memoSlot []int
	pool     sync.Pool // *fpEval
	// litScan finds the literals of the @rx operators in a value
	// (fastpm.go); litWords is the size of its bit sets.
	litScan  *pmDFA
	litWords int
	stats    fpStats
	// native follows the lean rules without a Coraza transaction for the
	// common request shape (runlean.go); nil: nativeWhy.
	native    *runProg
	nativeWhy string
	// vc remembers across transactions which links were proved not to
	// match a value (valcache.go); vcLinks links have a bit in it.
	vc      *valCache
	vcLinks int
	// links: every compiled link (flows and native checks).
	links []*fpLink
}

type fpStats struct {
	Bookkeeping, LeanDropped, Folded, Detection, Guards, StaticUnknown int
}

// fpFlow is one step of a phase's control flow.
type fpFlow struct {
	marker  int      // >= 0: a SecMarker
	check   *fpCheck // a detection rule
	covered bool     // check.covered (read in the walk without loading the check)
	// A bookkeeping rule with skipAfter (jump: marker index, -1: the end
	// of the phase): it jumps when its guard holds, maybe when it has none.
	rule   *slRule
	jump   int
	guard  *fpGuard
	skipN  int  // skip:N
	giveUp bool // a skip:N that can skip a marker or a skip rule: the flow is not followed past it
}

// fpCheck is one detection rule (a chain).
type fpCheck struct {
	id      int
	links   []*fpLink
	covered bool   // every run-time removal of a skip rule removes this rule too
	unknown string // non-empty: never decided here (why)
}

// fpGuard is a paranoia-level style guard: the rule is skipped when the
// TX variable compares true.
type fpGuard struct {
	idx    int // memo index, shared by equal guards
	key    string
	op     string
	arg    int
	argKey string // the argument is %{tx.argKey}
}

type fpLink struct {
	chain   int32      // id of the transformation list (memoization)
	needCtx bool       // a later link reads what this one matched
	capture bool       // the link captures (TX:0-9)
	side    bool       // when it matches, it changes state the lean instance cannot see
	private []fpSetvar // setvars only later links of the chain read
	vars    []fpVar
	tfs     []string
	tfFns   []func(string) (string, bool) // tfs, looked up
	tfIDs   []int32                       // their ids (tfID: results shared per value, checkcache.go)
	multi   bool
	neg     bool
	op      fpOp
	unknown string
	// vc: the link's bit in the verdict cache (valcache.go), -1: its
	// result depends on more than the value (macros, chain values).
	vc int32
	// plain: every variable is read from the transaction as is (no chain
	// values, counts, TX names written later in the phase): knownNo can
	// decide the link.
	plain bool
}

type fpVar struct {
	slot    int // index of the values extracted once per phase
	memo    int // index of its transformed values (slot and the link's transformations)
	rv      variables.RuleVariable
	key     string
	all     bool // whole collection (no key, or a key regex: a superset)
	count   bool
	xml     bool
	keyRx   *regexp.Regexp // key regex, case-insensitive (a superset of Coraza's selection)
	keyM    keyMatcher     // the same with its automaton (TX keys)
	txNames *txNameFilter  // TX names the key regex can select in the lean transaction (nil: any)
	synth   bool           // TX read after chain links that set private TX names
	later   []string       // TX names (or "prefix*") written later in the phase
	// txi: for TX by name, 1 + the name's index in the native TX's base
	// names (runTXBase); 0: not one of them.
	txi     int32
	matched bool // MATCHED_VAR(S) of the earlier links
	capture bool // TX:0-9 captured by the earlier links
}

type fpOp struct {
	kind   string
	rx     *rxOp
	brx    *binaryRxOp
	ac     *ahocorasick.AhoCorasick
	pm     *pmDFA        // the same phrases without allocation (nil: use ac)
	lits   *litPrefilter // @rx: its literals in the combined scan (fastpm.go)
	minLen int           // shortest @pm pattern
	bytes  *[256]bool
	str    string
	mac    macro.Macro // non-nil: str holds macros to expand
	dyn    bool        // str holds a MATCHED_VAR or TX:0-9 macro (chain values)
	dynCap bool        // the chain macro is TX:0-9
	tmpl   fpTmpl      // str split at its macros (dyn)
}

var disruptive = map[string]bool{"deny": true, "block": true, "drop": true, "redirect": true, "allow": true, "proxy": true, "exec": true, "pause": true}

// supportedVars are the collections whose values after a phase are what the
// rules of that phase saw (request and response data; TX separately).
var supportedVars = map[string]bool{
	"ARGS": true, "ARGS_GET": true, "ARGS_POST": true, "ARGS_PATH": true, "ARGS_NAMES": true, "ARGS_GET_NAMES": true,
	"ARGS_POST_NAMES": true, "ARGS_COMBINED_SIZE": true, "QUERY_STRING": true, "REQUEST_BASENAME": true,
	"REQUEST_BODY": true, "REQUEST_BODY_LENGTH": true, "REQUEST_COOKIES": true, "REQUEST_COOKIES_NAMES": true,
	"REQUEST_FILENAME": true, "REQUEST_HEADERS": true, "REQUEST_HEADERS_NAMES": true, "REQUEST_LINE": true,
	"REQUEST_METHOD": true, "REQUEST_PROTOCOL": true, "REQUEST_URI": true, "REQUEST_URI_RAW": true,
	"REMOTE_ADDR": true, "REMOTE_PORT": true, "SERVER_NAME": true, "SERVER_ADDR": true, "SERVER_PORT": true,
	"FILES": true, "FILES_NAMES": true, "FILES_SIZES": true, "FILES_COMBINED_SIZE": true,
	"MULTIPART_FILENAME": true, "MULTIPART_NAME": true, "MULTIPART_PART_HEADERS": true, "MULTIPART_STRICT_ERROR": true,
	"MULTIPART_UNMATCHED_BOUNDARY": true,
	"REQBODY_ERROR":                true, "REQBODY_ERROR_MSG": true, "REQBODY_PROCESSOR": true, "REQBODY_PROCESSOR_ERROR": true,
	"RESPONSE_HEADERS": true, "RESPONSE_HEADERS_NAMES": true, "RESPONSE_STATUS": true, "RESPONSE_PROTOCOL": true,
	"RESPONSE_BODY": true, "RESPONSE_CONTENT_TYPE": true, "RESPONSE_CONTENT_LENGTH": true, "STATUS_LINE": true,
	"FULL_REQUEST_LENGTH": true, "INBOUND_DATA_ERROR": true, "OUTBOUND_DATA_ERROR": true, "URLENCODED_ERROR": true,
	"TX": true, "XML": true,
}

// stableVars are the request variables that Coraza sets before phase 1
// and never changes afterwards (the request body adds to ARGS, ARGS_NAMES
// and the body variables, not to these).
var stableVars = map[variables.RuleVariable]bool{
	variables.RequestHeaders: true, variables.RequestHeadersNames: true,
	variables.RequestCookies: true, variables.RequestCookiesNames: true,
	variables.RequestURI: true, variables.RequestURIRaw: true, variables.RequestFilename: true,
	variables.RequestBasename: true, variables.QueryString: true, variables.RequestLine: true,
	variables.RequestMethod: true, variables.RequestProtocol: true,
	variables.ArgsGet: true, variables.ArgsGetNames: true,
	variables.RemoteAddr: true, variables.RemotePort: true,
	variables.ServerName: true, variables.ServerAddr: true, variables.ServerPort: true,
}

type fpItem struct {
	pos    int
	rule   *slRule // chain head (nil for a marker)
	phase  int
	marker string
	detect bool
}

type txWriter struct {
	phase, pos int
	key        string // lower case; "*" unknown
}

// compileFastPath builds the fast path of a configuration; it returns nil
// and the reason when the configuration is not one it can handle.
func compileFastPath(text string, root fs.FS) (*fpProgram, string) {
	ds, err := loadDirectives(text, root)
	if err != nil {
		return nil, err.Error()
	}
	var items []*fpItem
	var others []slDirective // directives kept in the lean instance as they are
	var updates []slDirective
	removedIDs := map[int]bool{}
	var removedTags []string
	var last *slRule
	for _, d := range ds {
		switch strings.ToLower(d.name) {
		case "secrule", "secaction":
			r, err := parseRule(d)
			if err != nil {
				return nil, err.Error()
			}
			if last != nil {
				last.chain = r
				items[len(items)-1].rule.raw += "\n" + d.raw
			} else {
				if r.phase == 0 {
					r.phase = 2
				}
				items = append(items, &fpItem{pos: len(items), rule: r, phase: r.phase})
			}
			last = nil
			if _, ok := r.action("chain"); ok {
				last = r
			}
		case "secmarker":
			if len(d.args) != 1 {
				return nil, "SecMarker without a name"
			}
			items = append(items, &fpItem{pos: len(items), marker: d.args[0]})
		case "secdefaultaction":
			if len(d.args) == 1 {
				for _, a := range splitActions(d.args[0]) {
					switch a.key {
					case "phase", "log", "nolog", "auditlog", "noauditlog", "pass":
					default:
						return nil, "SecDefaultAction with " + a.key
					}
				}
			}
			others = append(others, d)
		case "secruleremovebyid":
			for _, a := range d.args {
				lo, hi, ok := idRange(a)
				if !ok {
					return nil, "SecRuleRemoveById " + a
				}
				for id := lo; id <= hi && hi-lo < 1e6; id++ {
					removedIDs[id] = true
				}
			}
			others = append(others, d)
		case "secruleremovebytag":
			removedTags = append(removedTags, d.args...)
			others = append(others, d)
		case "secruleupdatetargetbyid", "secruleupdatetargetbytag", "secruleremovebymsg", "secruleupdateactionbyid", "secruleupdatetargetbymsg":
			updates = append(updates, d)
		case "include":
			return nil, "nested include"
		default:
			if n := strings.ToLower(d.name); strings.HasPrefix(n, "secruleupdate") || strings.HasPrefix(n, "secruleremove") || n == "secrulescript" {
				return nil, "unsupported directive " + d.name
			}
			others = append(others, d)
		}
	}
	if last != nil {
		return nil, "chain without a last link"
	}

	p := &fpProgram{}
	for _, it := range items {
		if it.rule == nil {
			continue
		}
		if why := readsMatchState(it.rule); why != "" && !isDetection(it.rule) {
			return nil, fmt.Sprintf("bookkeeping rule %d reads %s", it.rule.id, why)
		}
	}
	// Classify, collect TX writers and runtime target/rule removals.
	var writers []txWriter
	runtimeTargetAll := false
	var runtimeTargetIDs [][2]int
	var runtimeTargetTags []string
	var runtimeRemoveIDs [][2]int
	var runtimeRemoveTags []string
	runtimeRemoveMsg := false
	for _, it := range items {
		if it.rule == nil {
			continue
		}
		// A message makes a rule a detection rule, except for the CRS
		// setup and initialization rules, which Close leaves out of the
		// hits.
		setup := it.rule.id >= 900000 && it.rule.id < 902000
		for l := it.rule; l != nil; l = l.chain {
			for _, a := range l.actions {
				if a.key == "msg" && !setup || disruptive[a.key] {
					it.detect = true
				}
			}
		}
		for l := it.rule; l != nil; l = l.chain {
			for _, a := range l.actions {
				switch a.key {
				case "setvar":
					name, del := strings.CutPrefix(a.val, "!")
					name, _, _ = strings.Cut(name, "=")
					name = strings.ToLower(strings.TrimSpace(name))
					if del {
						name = "!" + name
					}
					if col, k, ok := strings.Cut(strings.TrimPrefix(name, "!"), "."); ok && col == "tx" {
						if del {
							k = "!" + k
						}
						if i := strings.Index(k, "%{"); i >= 0 {
							k = k[:i] + "*" // any name with this prefix
						}
						if !it.detect {
							writers = append(writers, txWriter{phase: it.phase, pos: it.pos, key: k})
						}
					}
				case "ctl":
					k, v, _ := strings.Cut(a.val, "=")
					switch strings.ToLower(k) {
					case "ruleremovetargetbyid":
						ids, _, _ := strings.Cut(v, ";")
						lo, hi, ok := idRange(ids)
						if !ok {
							runtimeTargetAll = true
						}
						runtimeTargetIDs = append(runtimeTargetIDs, [2]int{lo, hi})
					case "ruleremovetargetbytag":
						tag, _, _ := strings.Cut(v, ";")
						runtimeTargetTags = append(runtimeTargetTags, tag)
					case "ruleremovetargetbymsg":
						runtimeTargetAll = true
					case "ruleremovebyid":
						for _, f := range strings.Fields(v) {
							lo, hi, ok := idRange(f)
							if !ok {
								return nil, "ctl:ruleRemoveById=" + v
							}
							runtimeRemoveIDs = append(runtimeRemoveIDs, [2]int{lo, hi})
						}
					case "ruleremovebytag":
						runtimeRemoveTags = append(runtimeRemoveTags, v)
					case "ruleremovebymsg":
						runtimeRemoveMsg = true
					}
				}
			}
		}
	}
	inRanges := func(id int, rs [][2]int) bool {
		for _, r := range rs {
			if id >= r[0] && id <= r[1] {
				return true
			}
		}
		return false
	}
	hasTag := func(r *slRule, tags []string) bool {
		for _, t := range r.tags() {
			for _, u := range tags {
				if strings.EqualFold(t, u) {
					return true
				}
			}
		}
		return false
	}
	// Rules whose targets a configuration-time directive changes.
	updatedIDs := map[int]bool{}
	updatedAll := false
	var updatedTags []string
	for _, d := range updates {
		if n := strings.ToLower(d.name); strings.HasPrefix(n, "secruleupdatetarget") {
			// Only removals ("!VAR") keep the model a superset.
			if len(d.args) < 2 {
				return nil, d.name + " without targets"
			}
			vars, err := splitVars(d.args[1])
			if err != nil {
				return nil, d.name + ": " + err.Error()
			}
			for _, v := range vars {
				if !v.exclude {
					return nil, d.name + " adds a target"
				}
			}
		}
		switch strings.ToLower(d.name) {
		case "secruleupdatetargetbyid", "secruleupdateactionbyid":
			if len(d.args) == 0 {
				return nil, d.name + " without arguments"
			}
			for _, f := range strings.Fields(d.args[0]) {
				lo, hi, ok := idRange(f)
				if !ok || hi-lo > 1e6 {
					return nil, d.name + " " + f
				}
				for id := lo; id <= hi; id++ {
					updatedIDs[id] = true
				}
			}
		case "secruleupdatetargetbytag":
			if len(d.args) == 0 {
				return nil, d.name + " without arguments"
			}
			updatedTags = append(updatedTags, d.args[0])
		default:
			updatedAll = true
		}
	}
	if strings.Contains(strings.ToLower(text), "secruleupdateactionbyid") {
		return nil, "SecRuleUpdateActionById"
	}

	// The lean configuration: everything but detection rules. A directive
	// that updates targets is kept when it names a bookkeeping rule.
	// Rules keep the directory they came from (relative data files are
	// found there): text from another directory than the root goes into
	// an included file beside the original.
	var lean strings.Builder
	overlay := map[string]string{}
	curDir, curText := ".", &strings.Builder{}
	flush := func() {
		if curText.Len() == 0 {
			return
		}
		if curDir == "." {
			lean.WriteString(curText.String())
		} else {
			name := path.Join(curDir, fmt.Sprintf("meridian-lean-%d.conf", len(overlay)))
			overlay[name] = curText.String()
			fmt.Fprintf(&lean, "Include %s\n", name)
		}
		curText.Reset()
	}
	emit := func(dir, text string) {
		if dir != curDir {
			flush()
			curDir = dir
		}
		curText.WriteString(text)
		curText.WriteByte('\n')
	}
	for _, d := range others {
		emit(d.dir, d.raw)
	}
	// Skip rules whose range (up to their marker, in their phase) holds
	// only detection rules and other such skip rules change nothing in the
	// lean instance: they stay out of it (the fast path follows them).
	dropped := map[int]bool{}
	for changed := true; changed; {
		changed = false
		for _, it := range items {
			if it.rule == nil || it.detect || dropped[it.pos] || !pureSkip(it.rule) {
				continue
			}
			m, _ := it.rule.action("skipafter")
			ok := true
			for j := it.pos + 1; j < len(items) && ok; j++ {
				x := items[j]
				switch {
				case x.rule == nil:
					if x.marker == m {
						j = len(items)
					}
				case x.phase != it.phase || x.detect:
				default:
					ok = dropped[j]
				}
			}
			if ok {
				dropped[it.pos], changed = true, true
			}
		}
	}
	// Constant bookkeeping is folded (fastfold.go).
	engineCtl := false
	for _, it := range items {
		if it.rule != nil {
			engineCtl = engineCtl || ctlOf(it.rule, "ruleengine")
		}
	}
	fold := foldLean(foldIn{
		items: items,
		inLean: func(it *fpItem) bool {
			return it.rule != nil && !it.detect && !dropped[it.pos] && !removedIDs[it.rule.id] && !hasTag(it.rule, removedTags)
		},
		updated: func(r *slRule) bool { return updatedAll || updatedIDs[r.id] || hasTag(r, updatedTags) },
		removable: func(r *slRule) bool {
			return engineCtl || runtimeRemoveMsg || runtimeTargetAll || inRanges(r.id, runtimeRemoveIDs) || hasTag(r, runtimeRemoveTags) ||
				inRanges(r.id, runtimeTargetIDs) || hasTag(r, runtimeTargetTags)
		},
		removes: func(r *slRule) bool {
			for _, k := range []string{"ruleremovebyid", "ruleremovebytag", "ruleremovebymsg", "ruleremovetargetbyid", "ruleremovetargetbytag", "ruleremovetargetbymsg", "ruleengine"} {
				if ctlOf(r, k) {
					return true
				}
			}
			return false
		},
	})
	// The TX names the lean transaction can hold: what its rules set.
	var leanTX leanTXNames
	leanTX.add(fold.keys...)
	for _, it := range items {
		if it.rule == nil || it.detect || dropped[it.pos] || fold.skip[it.pos] || removedIDs[it.rule.id] || hasTag(it.rule, removedTags) {
			continue
		}
		leanTX.addRule(it.rule)
	}
	for i, k := range fold.keys {
		p.txInit = append(p.txInit, k)
		p.txInitVals = append(p.txInitVals, []string{fold.vals[i]})
	}
	keepMarker := leanMarkers(items, func(it *fpItem) bool {
		return !it.detect && !dropped[it.pos] && !fold.skip[it.pos] && !removedIDs[it.rule.id] && !hasTag(it.rule, removedTags)
	})
	bookIDs := map[int]bool{}
	bookTags := map[string]bool{}
	for _, it := range items {
		switch {
		case it.rule == nil && !keepMarker[it.pos]:
		case it.rule == nil:
			emit(curDir, fmt.Sprintf("SecMarker %q", it.marker))
		case dropped[it.pos]:
			p.stats.LeanDropped++
		case !it.detect && fold.skip[it.pos]:
			p.stats.Folded++
		case !it.detect && (removedIDs[it.rule.id] || hasTag(it.rule, removedTags)):
			// Removed by the configuration after the CRS is loaded; the
			// lean instance's removal directives come before its rules, so
			// the rule is left out of it here.
		case !it.detect:
			p.stats.Bookkeeping++
			bookIDs[it.rule.id] = true
			for _, t := range it.rule.tags() {
				bookTags[strings.ToLower(t)] = true
			}
			emit(it.rule.dir, it.rule.raw)
		}
	}
	for _, d := range updates {
		keep := false
		if strings.EqualFold(d.name, "SecRuleUpdateTargetByTag") {
			keep = bookTags[strings.ToLower(d.args[0])]
		} else if strings.EqualFold(d.name, "SecRuleUpdateTargetById") {
			for _, f := range strings.Fields(d.args[0]) {
				lo, hi, _ := idRange(f)
				for id := lo; id <= hi; id++ {
					keep = keep || bookIDs[id]
				}
			}
		} else {
			keep = true
		}
		if keep {
			emit(d.dir, d.raw)
		}
	}
	flush()
	p.lean = lean.String()
	mfs := fstest.MapFS{}
	if err := fs.WalkDir(root, ".", func(pth string, de fs.DirEntry, err error) error {
		if err != nil || de.IsDir() {
			return err
		}
		b, err := fs.ReadFile(root, pth)
		if err != nil {
			return err
		}
		mfs[pth] = &fstest.MapFile{Data: b, Mode: 0o444}
		return nil
	}); err != nil {
		return nil, "copying the rule files: " + err.Error()
	}
	for name, text := range overlay {
		mfs[name] = &fstest.MapFile{Data: []byte(text), Mode: 0o444}
	}
	p.leanFS = mfs

	// Every read of a TX name, by the position of its rule.
	type txReader struct {
		pos      int
		prefix   string
		exact    bool
		rx       *regexp.Regexp // key regex
		anchored bool
	}
	var readers []txReader
	for _, it := range items {
		if it.rule == nil {
			continue
		}
		for l := it.rule; l != nil; l = l.chain {
			for _, v := range l.vars {
				if v.name != "TX" {
					continue
				}
				switch {
				case v.key == "":
					readers = append(readers, txReader{pos: it.pos})
				case v.keyRx:
					rx, err := regexp.Compile("(?i)" + v.key)
					if err != nil {
						readers = append(readers, txReader{pos: it.pos})
						continue
					}
					readers = append(readers, txReader{pos: it.pos, prefix: rxLiteralPrefix(v.key), rx: rx, anchored: strings.HasPrefix(v.key, "^")})
				default:
					readers = append(readers, txReader{pos: it.pos, prefix: strings.ToLower(v.key), exact: true})
				}
			}
			texts := []string{l.opArg}
			for _, a := range l.actions {
				texts = append(texts, a.val)
			}
			for _, t := range texts {
				for _, m := range macroRef.FindAllStringSubmatch(t, -1) {
					if c, k, ok := strings.Cut(strings.ToLower(m[1]), "."); ok && c == "tx" {
						if i := strings.Index(k, "%{"); i >= 0 {
							readers = append(readers, txReader{pos: it.pos, prefix: k[:i]})
						} else {
							readers = append(readers, txReader{pos: it.pos, prefix: k, exact: true})
						}
					}
				}
			}
		}
	}
	// private reports whether TX names starting with prefix are read
	// only by the rule at pos, apart from readers by key regex, which are
	// returned to be checked against the names at run time.
	private := func(prefix string, exact bool, pos int) ([]*regexp.Regexp, bool) {
		var dyn []*regexp.Regexp
		for _, r := range readers {
			if r.pos == pos {
				continue
			}
			if exact {
				// One known name.
				if r.rx != nil && r.rx.MatchString(prefix) || r.exact && r.prefix == prefix || !r.exact && r.rx == nil && strings.HasPrefix(prefix, r.prefix) {
					return nil, false
				}
				continue
			}
			switch {
			case r.rx != nil:
				if r.anchored && !strings.HasPrefix(r.prefix, prefix) && !strings.HasPrefix(prefix, r.prefix) {
					continue
				}
				dyn = append(dyn, r.rx)
			case r.exact && strings.HasPrefix(r.prefix, prefix):
				return nil, false
			case !r.exact && (strings.HasPrefix(r.prefix, prefix) || strings.HasPrefix(prefix, r.prefix)):
				return nil, false
			}
		}
		return dyn, true
	}
	laterWriters := func(phase, pos int) []string {
		var out []string
		for _, w := range writers {
			if w.phase == phase && w.pos > pos {
				out = append(out, w.key)
			}
		}
		return out
	}
	stable := func(key string, phase, pos int) bool {
		for _, w := range writers {
			if w.phase == phase && w.pos > pos && keysOverlap(w.key, key) {
				return false
			}
		}
		return true
	}

	// Guards: bookkeeping rules of the form
	//   SecRule TX:x "@lt N" "id,phase,pass,nolog,...,skipAfter:M"
	guardOf := func(it *fpItem) (fpGuard, string, bool) {
		r := it.rule
		if r == nil || it.detect || r.chain != nil || len(r.vars) != 1 || r.neg || r.multi || len(r.tfs) != 0 {
			return fpGuard{}, "", false
		}
		v := r.vars[0]
		if v.name != "TX" || v.count || v.keyRx || v.exclude || v.key == "" {
			return fpGuard{}, "", false
		}
		switch r.op {
		case "lt", "le", "gt", "ge", "eq":
		default:
			return fpGuard{}, "", false
		}
		g := fpGuard{key: strings.ToLower(v.key), op: r.op}
		if m := macroRef.FindStringSubmatch(r.opArg); m != nil && m[0] == r.opArg {
			c, k, ok := strings.Cut(strings.ToLower(m[1]), ".")
			if !ok || c != "tx" || !stable(k, it.phase, it.pos) {
				return fpGuard{}, "", false
			}
			g.argKey = k
		} else if n, err := strconv.Atoi(r.opArg); err == nil {
			g.arg = n
		} else {
			return fpGuard{}, "", false
		}
		if !stable(g.key, it.phase, it.pos) {
			return fpGuard{}, "", false
		}
		marker := ""
		for _, a := range r.actions {
			switch a.key {
			case "id", "phase", "pass", "nolog", "noauditlog", "t", "tag", "ver", "rev", "severity":
			case "skipafter":
				marker = a.val
			default:
				return fpGuard{}, "", false
			}
		}
		if marker == "" || removedIDs[r.id] || hasTag(r, removedTags) {
			return fpGuard{}, "", false
		}
		return g, marker, true
	}
	markerIdx := map[string]int{}
	for _, it := range items {
		if it.rule == nil {
			if _, ok := markerIdx[it.marker]; !ok {
				markerIdx[it.marker] = len(markerIdx)
			}
		}
	}
	p.markers = len(markerIdx)
	// removableBy reports whether a run-time removal can take g out
	// without taking r out too.
	removableBy := func(g, r *slRule) bool {
		if runtimeRemoveMsg {
			return true
		}
		for _, rg := range runtimeRemoveIDs {
			if g.id >= rg[0] && g.id <= rg[1] && !(r.id >= rg[0] && r.id <= rg[1]) {
				return true
			}
		}
		for _, tag := range runtimeRemoveTags {
			if hasTag(g, []string{tag}) && !hasTag(r, []string{tag}) {
				return true
			}
		}
		return false
	}
	var skipRules []*fpItem
	chainIDs := map[string]int32{}
	slotIDs := map[string]int{}
	guardIDs := map[fpGuard]int{}
	memoIDs := map[[2]int]int{} // (slot, transformation list) -> memo index
	defer func() { p.slots, p.chains, p.guards = len(slotIDs), len(chainIDs), len(guardIDs) }()
	// compileCheck compiles a rule's links into a check (covered set).
	compileCheck := func(it *fpItem) *fpCheck {
		r := it.rule
		c := &fpCheck{id: r.id, covered: true}
		targetsChanged := updatedAll || runtimeTargetAll || updatedIDs[r.id] || hasTag(r, updatedTags) ||
			inRanges(r.id, runtimeTargetIDs) || hasTag(r, runtimeTargetTags)
		captured := false
		for l, i := r, 0; l != nil; l, i = l.chain, i+1 {
			fl := compileLink(l, linkEnv{root: root, it: it, index: i, captured: captured,
				targetsChanged: targetsChanged, stable: stable, private: private, laterWriters: laterWriters, leanTX: &leanTX})
			fl.needCtx = l.chain != nil
			p.links = append(p.links, fl)
			fl.vc = -1
			if fl.unknown == "" && !fl.op.dyn && fl.op.mac == nil {
				fl.vc = int32(p.vcLinks)
				p.vcLinks++
				fl.plain = true
				for _, v := range fl.vars {
					if v.matched || v.capture || v.synth || v.count || len(v.later) > 0 {
						fl.plain = false
					}
				}
			}
			tk := strings.Join(fl.tfs, ",")
			if _, ok := chainIDs[tk]; !ok {
				chainIDs[tk] = int32(len(chainIDs))
			}
			fl.chain = chainIDs[tk]
			for vi := range fl.vars {
				v := &fl.vars[vi]
				rx := ""
				if v.keyRx != nil {
					rx = v.keyRx.String()
				}
				sk := fmt.Sprintf("%d|%s|%s|%v", v.rv, v.key, rx, v.all)
				if _, ok := slotIDs[sk]; !ok {
					slotIDs[sk] = len(slotIDs)
					p.stable = append(p.stable, stableVars[v.rv])
				}
				v.slot = slotIDs[sk]
				mk := [2]int{v.slot, int(fl.chain)}
				if _, ok := memoIDs[mk]; !ok {
					memoIDs[mk] = len(memoIDs)
					p.memoSlot = append(p.memoSlot, v.slot)
				}
				v.memo = memoIDs[mk]
			}
			c.links = append(c.links, fl)
			if _, ok := l.action("capture"); ok {
				captured = true
			}
		}
		allUnknown := true
		for _, l := range c.links {
			if l.unknown == "" {
				allUnknown = false
			}
		}
		if allUnknown {
			c.unknown = c.links[0].unknown
		}
		return c
	}
	for _, it := range items {
		if it.rule == nil {
			for ph := 1; ph <= 5; ph++ {
				p.flows[ph] = append(p.flows[ph], fpFlow{marker: markerIdx[it.marker]})
			}
			continue
		}
		if !it.detect {
			if removedIDs[it.rule.id] || hasTag(it.rule, removedTags) {
				continue
			}
			if v, ok := it.rule.action("skip"); ok {
				n, err := strconv.Atoi(v)
				if err != nil || n < 1 {
					n = 1 << 20
				}
				// Coraza skips the next n rules of the phase (markers
				// count; rules removed at run time do not).
				f := fpFlow{marker: -1, skipN: n}
				seen := 0
				for j := it.pos + 1; j < len(items) && seen < n; j++ {
					nx := items[j]
					if nx.rule != nil && nx.phase != it.phase {
						continue
					}
					seen++
					if nx.rule == nil || removableBy(nx.rule, it.rule) {
						f.giveUp = true
						break
					}
					if _, ok := nx.rule.action("skipafter"); ok && !nx.detect {
						f.giveUp = true
					}
					if _, ok := nx.rule.action("skip"); ok {
						f.giveUp = true
					}
				}
				p.flows[it.phase] = append(p.flows[it.phase], f)
				continue
			}
			m, ok := it.rule.action("skipafter")
			if !ok {
				continue
			}
			f := fpFlow{marker: -1, jump: markerIdx[m], rule: it.rule}
			if _, known := markerIdx[m]; !known {
				f.jump = -1 // skips the rest of the phase
			}
			if g, gm, ok := guardOf(it); ok && gm == m {
				if _, ok := guardIDs[g]; !ok {
					guardIDs[g] = len(guardIDs)
				}
				g.idx = guardIDs[g]
				f.guard = &g
				p.stats.Guards++
			}
			skipRules = append(skipRules, it)
			p.flows[it.phase] = append(p.flows[it.phase], f)
			continue
		}
		r := it.rule
		if removedIDs[r.id] || hasTag(r, removedTags) {
			continue // removed at configuration time: never runs
		}
		p.stats.Detection++
		c := compileCheck(it)
		for _, g := range skipRules {
			if removableBy(g.rule, r) {
				c.covered = false
			}
		}
		if c.unknown != "" {
			p.stats.StaticUnknown++
		}
		p.flows[it.phase] = append(p.flows[it.phase], fpFlow{marker: -1, check: c, covered: c.covered})
	}
	// The native side (runlean.go): the lean instance's rules and markers
	// as the lean instance holds them.
	{
		in := runProgIn{check: compileCheck, guard: guardOf, leanIDs: map[int]bool{}, leanTags: map[string]bool{},
			txInit: p.txInit, txVals: p.txInitVals, lean: p.lean}
		for _, it := range items {
			switch {
			case it.rule == nil:
				if keepMarker[it.pos] {
					in.items = append(in.items, it)
				}
			case it.detect || dropped[it.pos] || fold.skip[it.pos] || removedIDs[it.rule.id] || hasTag(it.rule, removedTags):
			default:
				in.items = append(in.items, it)
				in.leanIDs[it.rule.id] = true
				for _, t := range it.rule.tags() {
					in.leanTags[strings.ToLower(t)] = true
				}
			}
		}
		p.native, p.nativeWhy = buildRunProg(in)
		p.resolveTXNames()
	}
	p.buildLitScan()
	p.vc = newValCache(p.vcLinks)
	return p, ""
}

// idRange parses "123" or "100-200".
func idRange(s string) (int, int, bool) {
	a, b, isRange := strings.Cut(strings.TrimSpace(s), "-")
	lo, err := strconv.Atoi(a)
	if err != nil {
		return 0, 0, false
	}
	if !isRange {
		return lo, lo, true
	}
	hi, err := strconv.Atoi(b)
	if err != nil || hi < lo {
		return 0, 0, false
	}
	return lo, hi, true
}

var macroRef = regexp.MustCompile(`%\{([^}]*)\}`)

// linkEnv is what compileLink needs to know about the configuration.
type linkEnv struct {
	root           fs.FS
	it             *fpItem
	index          int  // link index in the chain
	captured       bool // an earlier link of the chain captures
	targetsChanged bool
	stable         func(key string, phase, pos int) bool
	laterWriters   func(phase, pos int) []string
	private        func(prefix string, exact bool, pos int) ([]*regexp.Regexp, bool)
	leanTX         *leanTXNames
}

func compileLink(l *slRule, e linkEnv) *fpLink {
	fl := &fpLink{tfs: l.tfs, multi: l.multi, neg: l.neg}
	if _, ok := l.action("capture"); ok {
		fl.capture = true
	}
	if _, ok := l.action("chain"); ok {
		// Non-disruptive actions of a link that matches run even when a
		// later link does not: the lean instance does not see them.
		for _, a := range l.actions {
			switch a.key {
			case "setvar":
				sv, ok := privateSetvar(a.val, e)
				if ok && !fl.capture && strings.Contains(strings.ToLower(a.val), "%{tx.") {
					// TX:0-9 would be another rule's captures.
					for _, m := range macroRef.FindAllStringSubmatch(a.val, -1) {
						if dynamicMacro(m[1]) == "capture" {
							ok = false
						}
					}
				}
				if !ok {
					fl.side = true
				} else {
					fl.private = append(fl.private, sv)
				}
			case "ctl", "setenv", "setuid", "setsid", "setrsc", "initcol", "expirevar", "deprecatevar", "exec":
				fl.side = true
			}
		}
	}
	for _, t := range l.tfs {
		f := tfNames[t]
		if f == nil {
			fl.unknown = "transformation " + t
			return fl
		}
		fl.tfFns = append(fl.tfFns, f)
		fl.tfIDs = append(fl.tfIDs, tfID[t])
	}
	hasExclusion := map[string]bool{}
	for _, v := range l.vars {
		if v.exclude {
			hasExclusion[v.name] = true
		}
	}
	for _, v := range l.vars {
		if v.exclude {
			continue
		}
		isDigit := v.name == "TX" && len(v.key) == 1 && v.key[0] >= '0' && v.key[0] <= '9'
		switch {
		case e.index > 0 && (v.name == "MATCHED_VAR" || v.name == "MATCHED_VARS") && !v.count:
			fl.vars = append(fl.vars, fpVar{matched: true})
			continue
		case isDigit && e.index > 0 && e.captured && !v.count:
			fl.vars = append(fl.vars, fpVar{capture: true})
			continue
		case isDigit:
			fl.unknown = "capture variable"
			return fl
		}
		if !supportedVars[v.name] {
			fl.unknown = "variable " + v.name
			return fl
		}
		rv, err := variables.Parse(v.name)
		if err != nil {
			fl.unknown = "variable " + v.name
			return fl
		}
		fv := fpVar{rv: rv, key: v.key, all: v.key == "", count: v.count, xml: v.name == "XML"}
		switch rv {
		case variables.Args, variables.ArgsGet, variables.ArgsPost, variables.ArgsPath:
			// Case-sensitive keys in Coraza built with "casesensitive".
		default:
			// Coraza's maps lower-case the key of every lookup: done once
			// here, the lookup allocates nothing.
			fv.key = strings.ToLower(fv.key)
		}
		if v.keyRx && !v.count {
			rx, err := regexp.Compile("(?i)" + v.key)
			if err != nil {
				fl.unknown = "key regex: " + err.Error()
				return fl
			}
			fv.keyRx = rx
			if v.name == "TX" {
				fv.keyM = newKeyMatcher(rx)
				if e.leanTX != nil {
					fv.txNames = e.leanTX.matching(rx, v.key)
				}
			}
		}
		if v.count && (v.keyRx || hasExclusion[v.name] || e.targetsChanged) {
			fl.unknown = "count with exclusions"
			return fl
		}
		if v.name == "TX" {
			key := strings.ToLower(v.key)
			if v.keyRx {
				key = rxLiteralPrefix(v.key) + "*"
				if !strings.HasPrefix(v.key, "^") {
					key = "*"
				}
			} else if fv.all {
				key = "*"
			}
			if v.keyRx || fv.all {
				// Names written later in the phase are checked at run
				// time, name by name; deletions make it unknown.
				fv.later = e.laterWriters(e.it.phase, e.it.pos)
				for _, w := range fv.later {
					if strings.HasPrefix(w, "!") {
						fl.unknown = "TX names deleted later in the phase"
						return fl
					}
				}
			} else if !e.stable(key, e.it.phase, e.it.pos) {
				fl.unknown = "TX:" + key + " written later in the phase"
				return fl
			}
			fv.synth = e.index > 0
		}
		fl.vars = append(fl.vars, fv)
	}
	if l.op == "unconditionalMatch" && len(l.vars) == 0 {
		fl.unknown = "SecAction"
		return fl
	}
	op, why := compileOp(l, e)
	if why != "" {
		fl.unknown = why
		return fl
	}
	fl.op = op
	return fl
}

// rxLiteralPrefix returns the literal text an anchored key regex starts
// with ("" if it is not anchored or starts with a metacharacter).
func rxLiteralPrefix(re string) string {
	if !strings.HasPrefix(re, "^") {
		return ""
	}
	re = re[1:]
	i := 0
	for i < len(re) && (re[i] == '_' || re[i] == '-' || re[i] >= 'a' && re[i] <= 'z' || re[i] >= 'A' && re[i] <= 'Z' || re[i] >= '0' && re[i] <= '9') {
		i++
	}
	// A quantifier after the last literal makes it optional.
	if i < len(re) && i > 0 && strings.IndexByte("*?{", re[i]) >= 0 {
		i--
	}
	return strings.ToLower(re[:i])
}

// fpSetvar is a setvar of a chain link into TX names that only later links
// of the same chain read.
type fpSetvar struct {
	key, value string       // with macros
	readers    []keyMatcher // key regexes of other rules that the name must not match
	keyT       fpTmpl
	valueT     fpTmpl
}

func privateSetvar(val string, e linkEnv) (fpSetvar, bool) {
	name, value, ok := strings.Cut(val, "=")
	if !ok || strings.HasPrefix(name, "!") || strings.HasPrefix(value, "+") || strings.HasPrefix(value, "-") {
		return fpSetvar{}, false
	}
	col, key, ok := strings.Cut(strings.ToLower(strings.TrimSpace(name)), ".")
	if !ok || col != "tx" {
		return fpSetvar{}, false
	}
	prefix, exact := key, true
	if i := strings.Index(key, "%{"); i >= 0 {
		prefix, exact = key[:i], false
	}
	if prefix == "" {
		return fpSetvar{}, false
	}
	readers, ok := e.private(prefix, exact, e.it.pos)
	if !ok {
		return fpSetvar{}, false
	}
	for _, m := range macroRef.FindAllStringSubmatch(key+value, -1) {
		if dynamicMacro(m[1]) == "" {
			c, _, _ := strings.Cut(strings.ToLower(m[1]), ".")
			if c != "tx" {
				return fpSetvar{}, false
			}
		}
	}
	sv := fpSetvar{key: key, value: value, keyT: compileTmpl(key), valueT: compileTmpl(value)}
	for _, rx := range readers {
		sv.readers = append(sv.readers, newKeyMatcher(rx))
	}
	return sv, true
}

// dynamicMacro names a macro whose value comes from the earlier links of
// a chain ("matched" or "capture"), or "".
func dynamicMacro(ref string) string {
	n := strings.ToLower(ref)
	switch {
	case n == "matched_var":
		return "matched"
	case len(n) == 4 && strings.HasPrefix(n, "tx.") && n[3] >= '0' && n[3] <= '9':
		return "capture"
	}
	return ""
}

func compileOp(l *slRule, e linkEnv) (fpOp, string) {
	arg := l.opArg
	op := fpOp{kind: l.op}
	root := e.root
	withMacros := func() string {
		op.str = arg
		if !strings.Contains(arg, "%{") {
			return ""
		}
		dyn := 0
		for _, m := range macroRef.FindAllStringSubmatch(arg, -1) {
			switch dynamicMacro(m[1]) {
			case "matched":
				if e.index == 0 {
					return "macro " + m[0]
				}
				dyn++
				continue
			case "capture":
				if e.index == 0 || !e.captured {
					return "macro " + m[0]
				}
				dyn++
				continue
			}
			col, key, ok := strings.Cut(strings.ToLower(m[1]), ".")
			if !ok || col != "tx" || !e.stable(key, e.it.phase, e.it.pos) {
				return "macro " + m[0]
			}
		}
		if dyn > 1 {
			return "several chain macros"
		}
		op.dyn = dyn > 0
		if op.dyn {
			op.tmpl = compileTmpl(arg)
			for _, m := range macroRef.FindAllStringSubmatch(arg, -1) {
				if dynamicMacro(m[1]) == "capture" {
					op.dynCap = true
				}
			}
		}
		mac, err := macro.NewMacro(arg)
		if err != nil {
			return "macro: " + err.Error()
		}
		op.mac = mac
		return ""
	}
	switch l.op {
	case "rx":
		o, err := newRX(plugintypes.OperatorOptions{Arguments: arg})
		if err != nil {
			return op, "rx: " + err.Error()
		}
		switch o := o.(type) {
		case *rxOp:
			op.rx = o
		case *binaryRxOp:
			op.brx = o
		}
	case "pm", "pmFromFile", "pmf":
		var dict []string
		if l.op == "pm" {
			dict = strings.Split(strings.ToLower(arg), " ")
		} else {
			if strings.ContainsAny(arg, " \\") {
				return op, "pmFromFile with several files"
			}
			b, err := fs.ReadFile(root, path.Join(l.dir, arg))
			if err != nil {
				return op, "pmFromFile: " + err.Error()
			}
			for _, line := range strings.Split(string(b), "\n") {
				line = strings.TrimSpace(line)
				if line == "" || line[0] == '#' {
					continue
				}
				dict = append(dict, strings.ToLower(line))
			}
		}
		op.pm = newPMDFA(dict)
		if op.pm == nil {
			// The library's automaton (about 0.8 s of a CRS compilation
			// when built for every @pm) only where ours does not fit.
			b := ahocorasick.NewAhoCorasickBuilder(ahocorasick.Opts{AsciiCaseInsensitive: true, MatchKind: ahocorasick.LeftMostLongestMatch, DFA: true})
			ac := b.Build(dict)
			op.ac = &ac
		}
		op.minLen = -1
		for _, d := range dict {
			if op.minLen < 0 || len(d) < op.minLen {
				op.minLen = len(d)
			}
		}
		if op.minLen < 0 {
			op.minLen = 0
		}
	case "detectSQLi", "detectXSS", "validateUtf8Encoding", "validateUrlEncoding", "unconditionalMatch", "noMatch":
	case "validateByteRange":
		var t [256]bool
		for _, br := range strings.Split(arg, ",") {
			lo, hi, ok := idRange(strings.TrimSpace(br))
			if !ok || hi > 255 {
				return op, "validateByteRange " + arg
			}
			for i := lo; i <= hi; i++ {
				t[i] = true
			}
		}
		if strings.TrimSpace(arg) == "" {
			op.kind = "unconditionalMatch"
		}
		op.bytes = &t
	case "eq", "ge", "gt", "le", "lt", "within", "streq", "beginsWith", "endsWith", "contains":
		if strings.Contains(arg, "\\") {
			return op, "operator argument with a backslash"
		}
		if why := withMacros(); why != "" {
			return op, why
		}
	default:
		return op, "operator @" + l.op
	}
	return op, ""
}

func isDetection(r *slRule) bool {
	setup := r.id >= 900000 && r.id < 902000
	for l := r; l != nil; l = l.chain {
		for _, a := range l.actions {
			if a.key == "msg" && !setup || disruptive[a.key] {
				return true
			}
		}
	}
	return false
}

// readsMatchState names what in the first link of r depends on the state
// earlier rules' (partial) matches leave behind: the matched variables,
// captures, the RULE collection, the highest severity.
func readsMatchState(r *slRule) string {
	for _, v := range r.vars {
		switch {
		case strings.HasPrefix(v.name, "MATCHED_VAR"), v.name == "RULE", v.name == "HIGHEST_SEVERITY":
			return v.name
		case v.name == "TX" && len(v.key) == 1 && v.key[0] >= '0' && v.key[0] <= '9':
			return "TX:" + v.key
		case v.name == "TX" && (v.key == "" || v.keyRx):
			return "TX"
		}
	}
	for _, m := range macroRef.FindAllStringSubmatch(r.opArg, -1) {
		n := strings.ToLower(m[1])
		if strings.HasPrefix(n, "matched_var") || strings.HasPrefix(n, "rule.") || strings.HasPrefix(n, "highest_severity") ||
			len(n) == 4 && strings.HasPrefix(n, "tx.") && n[3] >= '0' && n[3] <= '9' {
			return m[0]
		}
	}
	return ""
}

// keysOverlap reports whether two TX names, each exact or a "prefix*"
// pattern, can name the same variable.
func keysOverlap(a, b string) bool {
	a, b = strings.TrimPrefix(a, "!"), strings.TrimPrefix(b, "!")
	pa, wa := strings.CutSuffix(a, "*")
	pb, wb := strings.CutSuffix(b, "*")
	switch {
	case wa && wb:
		return strings.HasPrefix(pa, pb) || strings.HasPrefix(pb, pa)
	case wa:
		return strings.HasPrefix(pb, pa)
	case wb:
		return strings.HasPrefix(pa, pb)
	}
	return pa == pb
}

// leanMarkers returns the markers the lean instance needs (by item
// position): those a lean rule's skipAfter names, and those a lean rule's
// skip:N counts (Coraza counts markers, which belong to every phase).
// Coraza evaluates every marker in every phase like a SecAction, so the
// others are left out.
func leanMarkers(items []*fpItem, inLean func(it *fpItem) bool) map[int]bool {
	var seq []*fpItem
	refs := map[string]bool{}
	for _, it := range items {
		switch {
		case it.rule == nil:
			seq = append(seq, it)
		case inLean(it):
			seq = append(seq, it)
			if m, ok := it.rule.action("skipafter"); ok {
				refs[m] = true
			}
		}
	}
	keep := map[int]bool{}
	for i, it := range seq {
		if it.rule == nil {
			if refs[it.marker] {
				keep[it.pos] = true
			}
			continue
		}
		v, ok := it.rule.action("skip")
		if !ok {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			n = len(seq)
		}
		for j, counted := i+1, 0; j < len(seq) && counted < n; j++ {
			switch x := seq[j]; {
			case x.rule == nil:
				keep[x.pos] = true
				counted++
			case x.phase == it.phase:
				counted++
			}
		}
	}
	return keep
}

// initTX gives a new lean transaction the TX values of the folded
// bookkeeping. A transaction that is not a TransactionState is never
// decided by the fast path (Tx.check replays it).
func (p *fpProgram) initTX(tx any) {
	st, ok := tx.(plugintypes.TransactionState)
	if !ok || len(p.txInit) == 0 {
		return
	}
	col := st.Variables().TX()
	for i, k := range p.txInit {
		col.Set(k, p.txInitVals[i])
	}
}

// ctlOf reports whether a link of r has a ctl action named name (lower
// case).
func ctlOf(r *slRule, name string) bool {
	for l := r; l != nil; l = l.chain {
		for _, a := range l.actions {
			if a.key != "ctl" {
				continue
			}
			k, _, _ := strings.Cut(a.val, "=")
			if strings.EqualFold(strings.TrimSpace(k), name) {
				return true
			}
		}
	}
	return false
}

// pureSkip reports whether r only jumps (a single link whose actions are
// meta data, pass/nolog and skipAfter).
func pureSkip(r *slRule) bool {
	if r.chain != nil {
		return false
	}
	jump := false
	for _, a := range r.actions {
		switch a.key {
		case "id", "phase", "pass", "nolog", "noauditlog", "t", "tag", "ver", "rev", "severity":
		case "skipafter":
			jump = true
		default:
			return false
		}
	}
	return jump
}

// resolveTXNames gives every TX variable read by name the index of the
// name among the native transactions' base TX names (fpEval.txGet).
func (p *fpProgram) resolveTXNames() {
	for _, l := range p.links {
		for i := range l.vars {
			v := &l.vars[i]
			v.txi = 0
			if p.native == nil || p.native.tx == nil || v.rv != variables.TX || v.all || v.keyRx != nil || v.key == "" {
				continue
			}
			if j, ok := p.native.tx.idx[strings.ToLower(v.key)]; ok {
				v.txi = int32(j) + 1
			}
		}
	}
}
