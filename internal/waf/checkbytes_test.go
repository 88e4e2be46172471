package waf

import (
	"math/rand/v2"
	"regexp"
	"regexp/syntax"
	"strings"
	"testing"

	libinjection "github.com/corazawaf/libinjection-go"
	"rsc.io/binaryregexp"
	bsyntax "rsc.io/binaryregexp/syntax"
)

func setOf(s string) byteSet {
	var b byteSet
	for i := 0; i < len(s); i++ {
		b.add(s[i])
	}
	return b
}

func needOf(t testing.TB, expr string) []byteSet {
	t.Helper()
	re, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		t.Fatal(err)
	}
	return needBytes(re.Simplify())
}

func highBytes() byteSet { return byteSet{0, 0, ^uint64(0), ^uint64(0)} }

// TestNeedBytesClauses pins the derivation on small expressions.
func TestNeedBytesClauses(t *testing.T) {
	hi := highBytes()
	withHigh := func(s string) byteSet { b := setOf(s); b.union(&hi); return b }
	cases := []struct {
		expr string
		want []byteSet // in order, smallest first
	}{
		{`abc`, []byteSet{setOf("a"), setOf("b"), setOf("c")}},
		{`a|bc`, []byteSet{setOf("ab")}},
		{`a*`, nil},
		{`x?y`, []byteSet{setOf("y")}},
		{`[x-z]+;`, []byteSet{setOf(";"), setOf("xyz")}},
		{`(?:a|)b`, []byteSet{setOf("b")}},
		{`a{0,3}`, nil},
		{`(a){2,}`, []byteSet{setOf("a")}},
		{`^\s*$`, nil},
		{`.`, nil},
		{`(?i)k`, []byteSet{withHigh("kK")}}, // K also folds to U+212A
		{`(?i)ab`, []byteSet{setOf("aA"), setOf("bB")}},
		{`é`, []byteSet{hi}},
		{`[^a]`, nil}, // too common to tell
		{`(?:<|on)x`, []byteSet{setOf("<o"), setOf("x")}},
	}
	for _, c := range cases {
		got := needOf(t, c.expr)
		if len(got) != len(c.want) {
			t.Errorf("%s: %d clauses, want %d", c.expr, len(got), len(c.want))
			continue
		}
		// Equal counts may come in either order.
		for _, w := range c.want {
			found := false
			for _, g := range got {
				if g == w {
					found = true
				}
			}
			if !found {
				t.Errorf("%s: clause %v missing from %v", c.expr, w, got)
			}
		}
	}
}

// checkNeed fails when the expression matches v although v misses one of
// the clauses (the shortcut would have said "no match").
func checkNeed(t *testing.T, expr string, match func(string) bool, need []byteSet, v string) {
	t.Helper()
	vb := setOf(v)
	if missesClause(&vb, need) && match(v) {
		t.Fatalf("expression %q matches %q, whose bytes miss a necessary clause", expr, v)
	}
}

// TestNeedBytesCRS holds the clauses of every CRS @rx expression to the
// matcher, on the CRS regression payloads, their matched parts and
// mutations of them (a byte dropped or replaced): a value that misses a
// clause is never matched.
func TestNeedBytesCRS(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	every := 4
	if raceEnabled { // every expression still, on fewer payloads
		every = 64
	}
	payloads := crsPayloads(t, every)
	with, rejected := 0, 0
	for _, p := range crsRxPatterns(t) {
		var match func(string) bool
		var find func(string) string
		var need []byteSet
		if matchesArbitraryBytes("(?sm)" + p) {
			re, err := binaryregexp.Compile(p)
			if err != nil {
				continue
			}
			parsed, err := bsyntax.Parse(p, bsyntax.Perl)
			if err != nil {
				t.Fatal(err)
			}
			match, find, need = re.MatchString, re.FindString, needBytesBinary(parsed)
		} else {
			re, err := regexp.Compile("(?sm)" + p)
			if err != nil {
				continue
			}
			match, find, need = re.MatchString, re.FindString, needOf(t, "(?sm)"+p)
		}
		if need == nil {
			continue
		}
		with++
		for _, v := range payloads {
			vb := setOf(v)
			if missesClause(&vb, need) {
				rejected++
			}
			checkNeed(t, p, match, need, v)
			m := find(v)
			if m == "" && !match(v) {
				continue
			}
			for i := 0; i < 4 && len(m) > 0; i++ {
				j := r.IntN(len(m))
				checkNeed(t, p, match, need, m[:j]+m[j+1:])
				checkNeed(t, p, match, need, m[:j]+string(rune(r.IntN(128)))+m[j+1:])
				checkNeed(t, p, match, need, strings.ToUpper(m[:j])+m[j:])
			}
		}
	}
	if with < 100 {
		t.Fatalf("only %d CRS expressions have necessary bytes", with)
	}
	t.Logf("%d CRS expressions with necessary bytes; %d (expression, payload) pairs decided by bytes alone", with, rejected)
}

// FuzzNeedBytes: for any expression and value, a value that misses a
// clause is not matched (both matchers).
func FuzzNeedBytes(f *testing.F) {
	f.Add(`(?i)(?:on\w+|style)\s*=`, "x onload=1")
	f.Add(`\x{bc}[^>\x{be}]*[>\x{be}]|<[^\x{be}]*\x{be}`, "<\xbe")
	f.Add(`(?:^|[/;\x5c])\.{2,3}[/;\x5c]`, "/../")
	f.Add(`(?i)k|ſ`, "\u212a")
	f.Add(`[^\x00-\x7f]`, "\xff")
	f.Add(`a{2}|(b)+c?`, "bb")
	f.Fuzz(func(t *testing.T, expr, v string) {
		if len(expr) > 200 {
			return
		}
		if parsed, err := syntax.Parse(expr, syntax.Perl); err == nil {
			if re, err := regexp.Compile(expr); err == nil {
				checkNeed(t, expr, re.MatchString, needBytes(parsed.Simplify()), v)
			}
		}
		if parsed, err := bsyntax.Parse(expr, bsyntax.Perl); err == nil {
			if re, err := binaryregexp.Compile(expr); err == nil {
				checkNeed(t, expr, re.MatchString, needBytesBinary(parsed), v)
			}
		}
	})
}

// TestXSSImpossible holds xssImpossible to libinjection: no value without
// '<' and '=' is detected (CRS payloads with those bytes removed or
// replaced, random values), and the condition is not vacuous.
func TestXSSImpossible(t *testing.T) {
	for _, v := range []string{"onerror=alert(1)", "<script>", "x onload=alert(1)", `" onfocus=x`} {
		if !libinjection.IsXSS(v) {
			t.Fatalf("libinjection does not detect %q: the test would prove nothing", v)
		}
		if b := setOf(v); xssImpossible(&b) {
			t.Fatalf("%q is detected, yet xssImpossible", v)
		}
	}
	check := func(v string) {
		if b := setOf(v); xssImpossible(&b) && libinjection.IsXSS(v) {
			t.Fatalf("libinjection detects XSS in %q, which has neither '<' nor '='", v)
		}
	}
	r := rand.New(rand.NewPCG(5, 6))
	repl := strings.NewReplacer("<", "", "=", "")
	swap := strings.NewReplacer("<", " ", "=", "\"")
	for _, v := range crsPayloads(t, 1) {
		check(repl.Replace(v))
		check(swap.Replace(v))
	}
	alpha := []byte("aAjJsSoOnN:/>\"'` \t\n\x00!?%-&;(){}[]#xml")
	for i := 0; i < 20000; i++ {
		b := make([]byte, r.IntN(24))
		for j := range b {
			b[j] = alpha[r.IntN(len(alpha))]
		}
		check(string(b))
	}
}

func FuzzXSSImpossible(f *testing.F) {
	f.Add("onerror alert(1)")
	f.Add(`"/onload"x`)
	f.Add("javascript:alert(1)")
	f.Fuzz(func(t *testing.T, v string) {
		if b := setOf(v); xssImpossible(&b) && libinjection.IsXSS(v) {
			t.Fatalf("libinjection detects XSS in %q, which has neither '<' nor '='", v)
		}
	})
}
