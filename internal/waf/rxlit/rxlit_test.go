package rxlit

import (
	"regexp"
	"regexp/syntax"
	"testing"
)

func TestRequired(t *testing.T) {
	tests := []struct {
		re   string
		want []string // nil: no prefilter
		fold bool
		yes  []string // inputs that must pass the prefilter
		no   []string // inputs the prefilter may reject
	}{
		{`union\s+select`, []string{"select"}, false, []string{"1 union  select 2"}, []string{"nothing here"}},
		{`(?i)union\s+select`, []string{"select"}, true, []string{"UNION SeLeCt"}, []string{"uni0n"}},
		{`(?i)(?:sleep|benchmark)\(`, []string{"sleep", "benchmark"}, true, []string{"BENCHMARK("}, []string{"sle ep"}},
		{`a*b?`, nil, false, nil, nil},
		{`^(?:GET|HEAD|x*)$`, nil, false, nil, nil},
		{`(?i)ſ`, []string{"s"}, true, []string{"ſ", "S"}, []string{"x"}},
		{`(?i)kelvin`, []string{"kelvin"}, true, []string{"\u212aelvin", "KELVIN"}, []string{"kelvi"}},
		{`[a-z]+\.php`, []string{".php"}, false, []string{"index.php"}, []string{"index.asp"}},
		{`(?:abc){2,}`, []string{"abc"}, false, []string{"abcabc"}, []string{"ab"}},
	}
	for _, tt := range tests {
		p, err := syntax.Parse("(?sm)"+tt.re, syntax.Perl)
		if err != nil {
			t.Fatal(err)
		}
		s := Required(p.Simplify())
		if tt.want == nil {
			if s != nil {
				t.Errorf("%s: prefilter %+v, want none", tt.re, s)
			}
			continue
		}
		if s == nil || len(s.Lits) != len(tt.want) || s.Fold != tt.fold {
			t.Errorf("%s: prefilter %+v, want %v fold=%v", tt.re, s, tt.want, tt.fold)
			continue
		}
		for i := range tt.want {
			if s.Lits[i] != tt.want[i] {
				t.Errorf("%s: literal %q, want %q", tt.re, s.Lits[i], tt.want[i])
			}
		}
		for _, in := range tt.yes {
			if !s.MayMatch(in) {
				t.Errorf("%s: prefilter rejects %q", tt.re, in)
			}
		}
		for _, in := range tt.no {
			if s.MayMatch(in) {
				t.Errorf("%s: prefilter lets %q through", tt.re, in)
			}
		}
	}
}

// FuzzRequired checks soundness: whenever the expression matches,
// the prefilter must let the input through.
func FuzzRequired(f *testing.F) {
	f.Add(`(?i)union\s+select`, "1 UNION SELECT 2")
	f.Add(`(?i)(?:on(?:load|error)|javascript:)`, "<img OnError=x>")
	f.Add(`(?:\.\./|%2e%2e)`, "a/../b")
	f.Add(`(?i)\bkelvin\b`, "\u212aELVIN")
	f.Add(`[\x80-\xff]abc`, "\xffabc")
	f.Add(`(a|b)+c{2,3}`, "abcc")
	f.Fuzz(func(t *testing.T, pattern, input string) {
		re, err := regexp.Compile("(?sm)" + pattern)
		if err != nil {
			return
		}
		p, err := syntax.Parse("(?sm)"+pattern, syntax.Perl)
		if err != nil {
			return
		}
		s := Required(p.Simplify())
		if s != nil && re.MatchString(input) && !s.MayMatch(input) {
			t.Fatalf("%q matches %q but the prefilter %+v rejects it", pattern, input, s)
		}
	})
}
