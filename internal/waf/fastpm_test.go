package waf

import (
	"math/rand/v2"
	"strings"
	"testing"

	v1 "github.com/meridian-platform/meridian/api/v1"

	ahocorasick "github.com/petar-dambovaliev/aho-corasick"
)

// TestPMDFAMatchesAhoCorasick holds the allocation-free @pm automaton to
// the aho-corasick package the fast path used before (and Coraza uses) on
// fixed and random phrase sets and values.
func TestPMDFAMatchesAhoCorasick(t *testing.T) {
	cases := []struct {
		phrases []string
		values  []string
	}{
		{[]string{"select", "union", "from"}, []string{"", "SELECT 1", "uni", "xunionx", "fro", "From", "selec t"}},
		{[]string{"he", "she", "his", "hers"}, []string{"ushers", "h", "hi", "ahishe", "SHE", "xyz"}},
		{[]string{"a", "ab", "abc"}, []string{"b", "c", "bc", "xxA"}},
		{[]string{"<script", "javascript:", "café"}, []string{"CAFÉ", "café", "<SCRIPT>", "java script:", "JavaScript:x"}},
		{[]string{"abcd", "bcx", "cde"}, []string{"abcx", "abcde", "abce", "bcd"}},
	}
	r := rand.New(rand.NewPCG(1, 2))
	alpha := "abcABC<>:é \x00\xff"
	word := func(max int) string {
		var b strings.Builder
		for n := r.IntN(max) + 1; n > 0; n-- {
			b.WriteByte(alpha[r.IntN(len(alpha))])
		}
		return b.String()
	}
	for i := 0; i < 200; i++ {
		var c struct {
			phrases []string
			values  []string
		}
		for n := r.IntN(6) + 1; n > 0; n-- {
			c.phrases = append(c.phrases, strings.ToLower(word(4)))
		}
		for n := 0; n < 30; n++ {
			c.values = append(c.values, word(12))
		}
		cases = append(cases, c)
	}
	for _, c := range cases {
		d := newPMDFA(c.phrases)
		if d == nil {
			t.Fatalf("no automaton for %q", c.phrases)
		}
		b := ahocorasick.NewAhoCorasickBuilder(ahocorasick.Opts{AsciiCaseInsensitive: true, MatchKind: ahocorasick.LeftMostLongestMatch, DFA: true})
		ac := b.Build(c.phrases)
		for _, v := range c.values {
			want := ac.Iter(v).Next() != nil
			if got := d.match(v); got != want {
				t.Errorf("phrases %q, value %q: match %v, aho-corasick says %v", c.phrases, v, got, want)
			}
		}
	}
	if newPMDFA([]string{"a", ""}) != nil {
		t.Error("an empty phrase must leave the set to the aho-corasick package")
	}
}

func TestPMDFAOnCRSDataFiles(t *testing.T) {
	w := mustWAF(t, v1.AppFirewallSpec{})
	if w.fp == nil {
		t.Fatal("no fast path")
	}
	n := 0
	for _, f := range w.fp.flows {
		for _, fl := range f {
			c := fl.check
			if c == nil {
				continue
			}
			for _, l := range c.links {
				if k := l.op.kind; k == "pm" || k == "pmFromFile" || k == "pmf" {
					n++
					if l.op.pm == nil {
						t.Errorf("rule %d: @pm set without automaton", c.id)
					}
				}
			}
		}
	}
	if n == 0 {
		t.Fatal("no @pm link in the fast path")
	}
	if w.fp.litScan == nil {
		t.Fatal("no combined literal scanner for the @rx operators")
	}
	t.Logf("%d @pm links; literal scanner: %d words, %d states, %d classes", n, w.fp.litWords, len(w.fp.litScan.output), w.fp.litScan.n)
}

// TestLitScanner holds the scanner's report to a substring search per
// phrase, ASCII case ignored.
func TestLitScanner(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	alpha := "abAB<;'é\x00"
	word := func(max int) string {
		var b strings.Builder
		for n := r.IntN(max) + 1; n > 0; n-- {
			b.WriteByte(alpha[r.IntN(len(alpha))])
		}
		return b.String()
	}
	for i := 0; i < 300; i++ {
		var lits []string
		for n := r.IntN(70) + 1; n > 0; n-- {
			lits = append(lits, lowerASCII(word(4)))
		}
		d := newLitScanner(lits)
		bits := make([]uint64, (len(lits)+63)/64)
		for j := 0; j < 20; j++ {
			v := word(16)
			clear(bits)
			d.scan(v, bits)
			for id, l := range lits {
				want := strings.Contains(lowerASCII(v), l)
				if got := bits[id>>6]&(1<<(id&63)) != 0; got != want {
					t.Fatalf("literals %q, value %q: literal %q reported %v, want %v", lits, v, l, got, want)
				}
			}
		}
	}
}
