package waf

import (
	"regexp"
	"regexp/syntax"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/corazawaf/coraza/v3/experimental/plugins"
	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
	"rsc.io/binaryregexp"
)

// Meridian replaces Coraza's @rx operator with one that checks, before
// running a regular expression, that the input contains one of the
// literals every match must contain (computed once from the expression's
// syntax tree). Most CRS expressions cannot match a benign value, and this
// check is a few substring searches where the regular expression is a full
// scan with backtracking. The check is sound by construction (it never
// says "no" to an input the expression matches: see requiredLiterals and
// FuzzRequiredLiterals), and the CRS regression suite is run with it.
// Matching itself, flags, captures and the binary-regexp fallback are the
// same as Coraza's operator.
func init() {
	plugins.RegisterOperator("rx", newRX)
}

type rxOp struct {
	re  *regexp.Regexp
	pre *literalSet // nil: no prefilter
}

type binaryRxOp struct{ re *binaryregexp.Regexp }

func newRX(opts plugintypes.OperatorOptions) (plugintypes.Operator, error) {
	// (?s): dot matches newlines; (?m): ^ and $ match at line ends (what
	// Coraza does by default, ModSecurity compatible).
	data := "(?sm)" + opts.Arguments
	if matchesArbitraryBytes(data) {
		v, err := memoize(opts.Memoizer, "mrx-bin:"+opts.Arguments, func() (any, error) { return binaryregexp.Compile(opts.Arguments) })
		if err != nil {
			return nil, err
		}
		return &binaryRxOp{re: v.(*binaryregexp.Regexp)}, nil
	}
	v, err := memoize(opts.Memoizer, "mrx:"+data, func() (any, error) {
		re, err := regexp.Compile(data)
		if err != nil {
			return nil, err
		}
		op := &rxOp{re: re}
		if parsed, err := syntax.Parse(data, syntax.Perl); err == nil {
			op.pre = requiredLiterals(parsed.Simplify())
		}
		return op, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*rxOp), nil
}

func memoize(m plugintypes.Memoizer, key string, fn func() (any, error)) (any, error) {
	if m != nil {
		return m.Do(key, fn)
	}
	return fn()
}

func (o *rxOp) Evaluate(tx plugintypes.TransactionState, value string) bool {
	if o.pre != nil && !o.pre.mayMatch(value) {
		return false
	}
	// Most values do not match: finding that out without tracking
	// submatches is much cheaper, so captures are extracted only after a
	// match.
	if !o.re.MatchString(value) {
		return false
	}
	if !tx.Capturing() {
		return true
	}
	m := o.re.FindStringSubmatchIndex(value)
	if m == nil {
		return false
	}
	for i := 0; i < len(m)/2; i++ {
		if i == 9 {
			return true
		}
		if m[2*i] >= 0 {
			tx.CaptureField(i, value[m[2*i]:m[2*i+1]])
		} else {
			tx.CaptureField(i, "")
		}
	}
	return true
}

func (o *binaryRxOp) Evaluate(tx plugintypes.TransactionState, value string) bool {
	if !tx.Capturing() {
		return o.re.MatchString(value)
	}
	m := o.re.FindStringSubmatch(value)
	if len(m) == 0 {
		return false
	}
	for i, c := range m {
		if i == 9 {
			return true
		}
		tx.CaptureField(i, c)
	}
	return true
}

// matchesArbitraryBytes reports whether the expression's \xNN escapes
// decode to bytes that are not valid UTF-8 (then the binary matcher is
// used, as Coraza does).
func matchesArbitraryBytes(expr string) bool {
	decoded := make([]byte, 0, len(expr))
	for i := 0; i < len(expr); i++ {
		c := expr[i]
		if c != '\\' {
			decoded = append(decoded, c)
			continue
		}
		if i+3 >= len(expr) {
			decoded = append(decoded, expr[i:]...)
			break
		}
		if expr[i+1] != 'x' {
			decoded = append(decoded, c)
			continue
		}
		sub, skip := expr[i:], 3
		if len(sub) >= 6 && sub[2] == '{' {
			if end := strings.IndexByte(sub, '}'); end != -1 {
				sub, skip = `\x`+sub[3:end], end
			}
		}
		v, multibyte, _, err := strconv.UnquoteChar(sub, 0)
		if err != nil || multibyte {
			decoded = append(decoded, c)
			continue
		}
		decoded = append(decoded, byte(v))
		i += skip
	}
	return !utf8.Valid(decoded)
}

// literalSet is a requirement "the input contains one of lits". With fold,
// the literals are lower-case ASCII and compared ignoring ASCII case.
type literalSet struct {
	lits []string
	fold bool
}

const maxLiterals = 32

// requiredLiterals returns literals one of which every match of re
// contains, or nil when there is no such (useful) set.
func requiredLiterals(re *syntax.Regexp) *literalSet {
	switch re.Op {
	case syntax.OpLiteral:
		s := string(re.Rune)
		if s == "" || strings.ContainsRune(s, utf8.RuneError) {
			return nil
		}
		if re.Flags&syntax.FoldCase != 0 {
			for _, r := range re.Rune {
				if r >= utf8.RuneSelf {
					return nil // Unicode case folding: not handled
				}
			}
			return &literalSet{lits: []string{strings.ToLower(s)}, fold: true}
		}
		return &literalSet{lits: []string{s}}
	case syntax.OpCapture:
		return requiredLiterals(re.Sub[0])
	case syntax.OpPlus:
		return requiredLiterals(re.Sub[0])
	case syntax.OpRepeat:
		if re.Min >= 1 {
			return requiredLiterals(re.Sub[0])
		}
		return nil
	case syntax.OpConcat:
		// Every match contains a match of each part: any part's
		// requirement is the whole's; keep the most selective.
		var best *literalSet
		for _, sub := range re.Sub {
			if s := requiredLiterals(sub); s != nil && (best == nil || s.better(best)) {
				best = s
			}
		}
		return best
	case syntax.OpAlternate:
		out := &literalSet{}
		for i, sub := range re.Sub {
			s := requiredLiterals(sub)
			if s == nil {
				return nil
			}
			if i == 0 {
				out.fold = s.fold
			} else if s.fold != out.fold {
				// Mixed: compare everything ignoring case (still sound).
				out.fold = true
			}
			out.lits = append(out.lits, s.lits...)
		}
		if out.fold {
			for i, l := range out.lits {
				out.lits[i] = strings.ToLower(l)
				if !isASCII(l) {
					return nil
				}
			}
		}
		if len(out.lits) > maxLiterals {
			return nil
		}
		return out
	}
	// Character classes, any char, empty matches, anchors, stars and
	// quests require no literal.
	return nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// better prefers sets whose shortest literal is longer (fewer chance
// hits), then smaller sets.
func (s *literalSet) better(o *literalSet) bool {
	a, b := s.minLen(), o.minLen()
	if a != b {
		return a > b
	}
	return len(s.lits) < len(o.lits)
}

func (s *literalSet) minLen() int {
	m := -1
	for _, l := range s.lits {
		if m < 0 || len(l) < m {
			m = len(l)
		}
	}
	return m
}

// mayMatch reports whether v contains one of the literals. It is false
// only when no match is possible.
func (s *literalSet) mayMatch(v string) bool {
	if !s.fold {
		for _, l := range s.lits {
			if strings.Contains(v, l) {
				return true
			}
		}
		return false
	}
	if !isASCII(v) {
		return true // Unicode folds (e.g. K, ſ) need the real matcher
	}
	for _, l := range s.lits {
		if containsFold(v, l) {
			return true
		}
	}
	return false
}

// containsFold reports whether v contains the lower-case ASCII literal l,
// ignoring ASCII case.
func containsFold(v, l string) bool {
	n := len(l)
	if n == 0 {
		return true
	}
	first := l[0]
	upper := first
	if first >= 'a' && first <= 'z' {
		upper = first - 'a' + 'A'
	}
	for i := 0; i+n <= len(v); i++ {
		c := v[i]
		if c != first && c != upper {
			continue
		}
		j := 1
		for ; j < n; j++ {
			c := v[i+j]
			if c >= 'A' && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c != l[j] {
				break
			}
		}
		if j == n {
			return true
		}
	}
	return false
}
