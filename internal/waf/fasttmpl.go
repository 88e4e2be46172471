package waf

import (
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"

	"github.com/meridian-platform/meridian/internal/waf/rxdfa"
)

// fpTmpl is a text with macros (a setvar's name or value, an operator
// argument) split once at compile time, so that expanding it per request
// is a concatenation.
type fpTmpl struct {
	parts []fpTmplPart
}

type fpTmplPart struct {
	lit  string // the literal text, or the macro as written (%{...})
	kind uint8  // tmplLit, tmplMatched, tmplCapture, tmplTX
	n    int    // capture index
	key  string // lower-case TX name
}

const (
	tmplLit uint8 = iota
	tmplMatched
	tmplCapture
	tmplTX
)

func compileTmpl(s string) fpTmpl {
	var t fpTmpl
	last := 0
	for _, m := range macroRef.FindAllStringSubmatchIndex(s, -1) {
		if m[0] > last {
			t.parts = append(t.parts, fpTmplPart{lit: s[last:m[0]]})
		}
		ref, inner := s[m[0]:m[1]], s[m[2]:m[3]]
		p := fpTmplPart{lit: ref}
		switch dynamicMacro(inner) {
		case "matched":
			p.kind = tmplMatched
		case "capture":
			p.kind, p.n = tmplCapture, int(inner[3]-'0')
		default:
			_, k, _ := strings.Cut(inner, ".")
			p.kind, p.key = tmplTX, strings.ToLower(k)
		}
		t.parts = append(t.parts, p)
		last = m[1]
	}
	if last < len(s) || len(t.parts) == 0 {
		t.parts = append(t.parts, fpTmplPart{lit: s[last:]})
	}
	return t
}

// expand replaces TX:0-9 with caps (capAll, when set, stands for every
// capture), MATCHED_VAR with matched and other TX names with their value
// in the transaction; an unknown name stays as written.
func (t *fpTmpl) expand(st plugintypes.TransactionState, caps []string, capAll *string, matched string) string {
	if len(t.parts) == 1 && t.parts[0].kind == tmplLit {
		return t.parts[0].lit
	}
	var b strings.Builder
	for i := range t.parts {
		p := &t.parts[i]
		switch p.kind {
		case tmplLit:
			b.WriteString(p.lit)
		case tmplMatched:
			b.WriteString(matched)
		case tmplCapture:
			switch {
			case capAll != nil:
				b.WriteString(*capAll)
			case p.n < len(caps):
				b.WriteString(caps[p.n])
			default:
				b.WriteString(p.lit)
			}
		case tmplTX:
			if vs := st.Variables().TX().Get(p.key); len(vs) > 0 {
				b.WriteString(vs[0])
			} else {
				b.WriteString(p.lit)
			}
		}
	}
	return b.String()
}

// keyMatcher is a case-insensitive key regex with its automaton, which
// answers for ASCII keys without running the regexp.
type keyMatcher struct {
	rx  *regexp.Regexp // "(?i)" + the expression
	dfa *rxdfa.DFA     // nil: not compiled for it
}

func newKeyMatcher(rx *regexp.Regexp) keyMatcher {
	d, err := rxdfa.Compile(rx.String())
	if err != nil {
		d = nil
	}
	return keyMatcher{rx: rx, dfa: d}
}

// match reports whether the expression matches k (or, for a non-ASCII
// key, k lower-cased: Coraza matches the names of case-insensitive
// collections lower-cased).
func (m *keyMatcher) match(k string) bool {
	if m.dfa != nil {
		switch m.dfa.Match(k) {
		case rxdfa.Match:
			return true
		case rxdfa.NoMatch:
			return false
		}
	}
	if m.rx.MatchString(k) {
		return true
	}
	for i := 0; i < len(k); i++ {
		if k[i] >= utf8.RuneSelf {
			return m.rx.MatchString(strings.ToLower(k))
		}
	}
	return false
}
