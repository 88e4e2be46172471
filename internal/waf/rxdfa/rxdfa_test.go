package rxdfa

import (
	"math/rand/v2"
	"regexp"
	"strings"
	"sync"
	"testing"
)

var exprs = []string{
	`(?sm)^abc$`,
	`(?sm)\bfoo\b`,
	`(?sm)\Bar\B`,
	`(?i)union\s+select`,
	`(?sm)^$`,
	`(?sm)a.*b`,
	`(?m)a.b`,
	`(?sm)\Aab|cd\z`,
	`(?sm)(?:^|[/;\x5c])\.{2,3}[/;\x5c]`,
	`(?sm)[\n\r]`,
	`(?sm)x{2,4}y?`,
	`(?sm)(?:a|ab)(?:c|bcd)(?:d*)`,
	`(?smi)k`,
	`(?sm)`,
	`(?sm)\b`,
	`(?sm)^\s*$`,
	`(?sm)[^a]$`,
}

func TestAgainstRegexp(t *testing.T) {
	inputs := []string{"", "abc", "xabc", "abc\n", "foo", "a foo b", "foobar", "bar", "xbarx", "UNION  SeLeCt",
		"a\nb", "a\n\nb", "ab", "cd", "x/../y", "..;", "line\r", "xxy", "abcd", "K", "\n", " \n ", "b\n", "a"}
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := "abcdxyfor/.;\\ \n\r\tKkUNIOselct_-0"
	for range 3000 {
		n := rng.IntN(12)
		var b strings.Builder
		for range n {
			b.WriteByte(alphabet[rng.IntN(len(alphabet))])
		}
		inputs = append(inputs, b.String())
	}
	for _, e := range exprs {
		re := regexp.MustCompile(e)
		d, err := Compile(e)
		if err != nil {
			t.Fatal(err)
		}
		for _, in := range inputs {
			want := NoMatch
			if re.MatchString(in) {
				want = Match
			}
			if got := d.Match(in); got != want {
				t.Errorf("%q on %q: %v, regexp says %v", e, in, got, want)
			}
		}
	}
}

func TestNonASCIIIsUnknown(t *testing.T) {
	d, _ := Compile(`a`)
	if got := d.Match("é a"); got != Unknown {
		t.Fatalf("got %v, want Unknown", got)
	}
}

func TestBudget(t *testing.T) {
	// (a|b)*a(a|b){8}: needs 2^9 states; a budget of 16 runs out.
	re := regexp.MustCompile(`a[ab]{8}c`)
	d, _ := Compile(`a[ab]{8}c`)
	d.maxBytes = 16 * (stateOverhead + 8*d.nclass + 64)
	unknown := 0
	rng := rand.New(rand.NewPCG(3, 4))
	for range 200 {
		var b strings.Builder
		for range 40 {
			b.WriteByte("abc"[rng.IntN(3)])
		}
		s := b.String()
		switch d.Match(s) {
		case Unknown:
			unknown++
		case Match:
			if !re.MatchString(s) {
				t.Fatalf("%q: Match, regexp says no", s)
			}
		case NoMatch:
			if re.MatchString(s) {
				t.Fatalf("%q: NoMatch, regexp says yes", s)
			}
		}
	}
	if unknown == 0 {
		t.Fatal("budget never ran out")
	}
	if _, bytes := d.Size(); bytes > d.maxBytes {
		t.Fatalf("automaton holds %d bytes, budget %d", bytes, d.maxBytes)
	}
}

func TestConcurrent(t *testing.T) {
	re := regexp.MustCompile(`(?i)\b(?:select|union|insert)\b.{0,10}from`)
	d, _ := Compile(re.String())
	d.maxBytes = 64 * (stateOverhead + 8*d.nclass + 64)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 9))
			words := []string{"select", "from", "union", "x", " ", "insert", "\n", "fromage"}
			for range 2000 {
				var b strings.Builder
				for range rng.IntN(8) {
					b.WriteString(words[rng.IntN(len(words))])
				}
				s := b.String()
				got := d.Match(s)
				if got == Unknown {
					continue
				}
				if (got == Match) != re.MatchString(s) {
					t.Errorf("%q: %v", s, got)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func BenchmarkMatch(b *testing.B) {
	d, err := Compile(`(?i)(?:[\n\r;` + "`" + `\{]|\|\|?|&&?)[\s\x0b]*[\s\x0b"'\(,@]*(?:["'\.-9A-Z_a-z]+/|[ "'\.-9A-Z\x5c\^_a-z]*\x5c)?["\^]*(?:a["\^]*(?:c|s["\^]*n["\^]*p)|e["\^]*b["\^]*p)\b`)
	if err != nil {
		b.Fatal(err)
	}
	in := "garden window morning river yellow friendly kitchen and more"
	d.Match(in)
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		if d.Match(in) != NoMatch {
			b.Fatal("match")
		}
	}
}
