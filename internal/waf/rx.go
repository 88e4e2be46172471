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
	bsyntax "rsc.io/binaryregexp/syntax"

	"github.com/meridian-platform/meridian/internal/waf/rxdfa"
	"github.com/meridian-platform/meridian/internal/waf/rxlit"
)

// Meridian replaces Coraza's @rx operator with one that checks, before
// running a regular expression, that the input contains one of the
// literals every match must contain (computed once from the expression's
// syntax tree). Most CRS expressions cannot match a benign value, and this
// check is a few substring searches where the regular expression is a full
// scan with backtracking. The check is sound by construction (it never
// says "no" to an input the expression matches: see requiredLiterals and
// rxlit's fuzz target), and the CRS regression suite is run with it.
// Matching itself, flags, captures and the binary-regexp fallback are the
// same as Coraza's operator.
func init() {
	plugins.RegisterOperator("rx", newRX)
}

type rxOp struct {
	re  *regexp.Regexp
	pre *rxlit.Set // nil: no prefilter
	dfa *rxdfa.DFA // nil: the expression does not compile for it
	// need: byte sets every match holds a byte of (checkbytes.go; the
	// fast path's checks test them on a value's bytes).
	need []byteSet
}

type binaryRxOp struct {
	re   *binaryregexp.Regexp
	need []byteSet
}

func newRX(opts plugintypes.OperatorOptions) (plugintypes.Operator, error) {
	// (?s): dot matches newlines; (?m): ^ and $ match at line ends (what
	// Coraza does by default, ModSecurity compatible).
	data := "(?sm)" + opts.Arguments
	if matchesArbitraryBytes(data) {
		v, err := memoize(opts.Memoizer, "mrx-bin:"+opts.Arguments, func() (any, error) {
			re, err := binaryregexp.Compile(opts.Arguments)
			if err != nil {
				return nil, err
			}
			op := &binaryRxOp{re: re}
			if parsed, err := bsyntax.Parse(opts.Arguments, bsyntax.Perl); err == nil {
				op.need = needBytesBinary(parsed)
			}
			return op, nil
		})
		if err != nil {
			return nil, err
		}
		return v.(*binaryRxOp), nil
	}
	v, err := memoize(opts.Memoizer, "mrx:"+data, func() (any, error) {
		re, err := regexp.Compile(data)
		if err != nil {
			return nil, err
		}
		op := &rxOp{re: re}
		if parsed, err := syntax.Parse(data, syntax.Perl); err == nil {
			simple := parsed.Simplify()
			op.pre = rxlit.Required(simple)
			op.need = needBytes(simple)
			if prog, err := syntax.Compile(simple); err == nil {
				op.dfa = rxdfa.New(prog, 0)
			}
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
	// A single case-sensitive literal is one vectorized substring search:
	// cheaper than anything else, so it goes first. Sets of literals and
	// case-insensitive ones cost more than the automaton, which decides
	// exactly, so they only guard the regexp engine when the automaton
	// cannot tell (non-ASCII input, state budget spent).
	cheap := o.pre != nil && !o.pre.Fold && len(o.pre.Lits) == 1
	if cheap && !strings.Contains(value, o.pre.Lits[0]) {
		return false
	}
	switch o.dfaMatch(value) {
	case rxdfa.NoMatch:
		return false
	case rxdfa.Unknown:
		if o.pre != nil && !cheap && !o.pre.MayMatch(value) {
			return false
		}
		// Without submatch tracking: much cheaper, and most values do
		// not match.
		if !o.re.MatchString(value) {
			return false
		}
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

func (o *rxOp) dfaMatch(value string) rxdfa.Result {
	if o.dfa == nil {
		return rxdfa.Unknown
	}
	return o.dfa.Match(value)
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
