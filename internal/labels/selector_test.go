package labels

import (
	"errors"
	"strings"
	"testing"
)

func TestParseAndMatch(t *testing.T) {
	set := map[string]string{"region": "eu", "tier": "edge", "example.com/owner": "ops"}
	tests := []struct {
		sel   string
		want  bool
		canon string
		nReqs int
	}{
		{"", true, "", 0},
		{"region=eu", true, "region=eu", 1},
		{"region==eu", true, "region=eu", 1},
		{"region = eu", true, "region=eu", 1},
		{"region!=eu", false, "region!=eu", 1},
		{"missing!=x", true, "missing!=x", 1},
		{"region in (us, eu)", true, "region in (eu,us)", 1},
		{"region in (us)", false, "region in (us)", 1},
		{"region notin (us)", true, "region notin (us)", 1},
		{"missing notin (us)", true, "missing notin (us)", 1},
		{"region notin (eu,us)", false, "region notin (eu,us)", 1},
		{"tier", true, "tier", 1},
		{"!tier", false, "!tier", 1},
		{"! missing", true, "!missing", 1},
		{"missing", false, "missing", 1},
		{"tier=edge,region=eu", true, "region=eu,tier=edge", 2},
		{"tier=edge, region=us", false, "region=us,tier=edge", 2},
		{"example.com/owner=ops", true, "example.com/owner=ops", 1},
		{"region=", false, "region=", 1},
		{"missing in ()", false, "missing in ()", 1},
		{"tier in (,edge)", true, "tier in (,edge)", 1},
	}
	for _, tt := range tests {
		s, err := Parse(tt.sel)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.sel, err)
			continue
		}
		if got := s.Matches(set); got != tt.want {
			t.Errorf("Parse(%q).Matches = %v, want %v", tt.sel, got, tt.want)
		}
		if got := s.String(); got != tt.canon {
			t.Errorf("Parse(%q).String() = %q, want %q", tt.sel, got, tt.canon)
		}
		if got := len(s.Requirements()); got != tt.nReqs {
			t.Errorf("Parse(%q) has %d requirements, want %d", tt.sel, got, tt.nReqs)
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		sel  string
		pos  int
		frag string
	}{
		{"=eu", 0, "expected a label key"},
		{"region=eu,", 10, "expected a label key, found end"},
		{"region eu", 7, "expected an operator"},
		{"region in eu", 10, "expected '('"},
		{"region in (eu", 13, "expected a value, ',' or ')'"},
		{"region in (eu us)", 14, `found "us"`},
		{"region=eu)", 9, "expected ',' or end"},
		{"-bad=x", 0, "must start and end"},
		{"region=bad value", 11, `found "value"`},
		{"region=-x", 7, "label value"},
		{"Bad_Prefix.com/x=y", 0, "prefix"},
		{"!", 1, "expected a label key"},
		{"!a=b", 2, "expected ',' or end"},
		{"a,,b", 2, "expected a label key"},
		{"a=" + strings.Repeat("v", 64), 2, "at most 63"},
	}
	for _, tt := range tests {
		_, err := Parse(tt.sel)
		var pe *ParseError
		if !errors.As(err, &pe) {
			t.Errorf("Parse(%q) error = %v, want *ParseError", tt.sel, err)
			continue
		}
		if pe.Pos != tt.pos || !strings.Contains(pe.Error(), tt.frag) {
			t.Errorf("Parse(%q) = %v (pos %d), want pos %d containing %q", tt.sel, err, pe.Pos, tt.pos, tt.frag)
		}
	}
}

func TestNewRequirementAndFromSet(t *testing.T) {
	if _, err := NewRequirement("a", In, nil); err == nil {
		t.Error("In without values accepted")
	}
	if _, err := NewRequirement("a", Exists, []string{"x"}); err == nil {
		t.Error("Exists with values accepted")
	}
	if _, err := NewRequirement("a", Equals, []string{"x", "y"}); err == nil {
		t.Error("Equals with two values accepted")
	}
	if _, err := NewRequirement("a", Operator("~"), nil); err == nil {
		t.Error("unknown operator accepted")
	}
	if _, err := NewRequirement("a b", Exists, nil); err == nil {
		t.Error("bad key accepted")
	}
	r, err := NewRequirement("zone", NotIn, []string{"b", "a", "b"})
	if err != nil {
		t.Fatal(err)
	}
	s, err := FromSet(map[string]string{"region": "eu", "app": "shop"})
	if err != nil {
		t.Fatal(err)
	}
	s = s.Add(r)
	if got, want := s.String(), "app=shop,region=eu,zone notin (a,b)"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if !s.Matches(map[string]string{"app": "shop", "region": "eu", "zone": "c"}) {
		t.Error("expected match")
	}
	if s.Matches(map[string]string{"app": "shop", "region": "eu", "zone": "a"}) {
		t.Error("unexpected match")
	}
	if _, err := FromSet(map[string]string{"k": "bad value"}); err == nil {
		t.Error("FromSet accepted a bad value")
	}
	if (Selector{}).Empty() != true || !(Selector{}).Matches(nil) {
		t.Error("zero selector must be empty and match everything")
	}
}

func TestValidateKeyValue(t *testing.T) {
	good := []string{"a", "app", "A.b-c_d", "example.com/app", "a.b.c/x", strings.Repeat("k", 63)}
	for _, k := range good {
		if err := ValidateKey(k); err != nil {
			t.Errorf("ValidateKey(%q) = %v", k, err)
		}
	}
	bad := []string{"", "/a", "a/", "-a", "a-", "a b", "Example.com/a", "a/b/c", strings.Repeat("k", 64), strings.Repeat("p", 254) + "/a", "ü"}
	for _, k := range bad {
		if err := ValidateKey(k); err == nil {
			t.Errorf("ValidateKey(%q) accepted", k)
		}
	}
	if err := ValidateValue(""); err != nil {
		t.Errorf("empty value rejected: %v", err)
	}
	for _, v := range []string{"-a", "a b", strings.Repeat("v", 64), "a/b"} {
		if err := ValidateValue(v); err == nil {
			t.Errorf("ValidateValue(%q) accepted", v)
		}
	}
	if errs := ValidateSet(map[string]string{"ok": "1", "bad key": "x", "k": "bad value"}); len(errs) != 2 {
		t.Errorf("ValidateSet found %d problems, want 2: %v", len(errs), errs)
	}
}

func FuzzSelectorParse(f *testing.F) {
	for _, s := range []string{"", "a=b", "a==b,c!=d", "x in (a,b)", "x notin ()", "!x", "x,y", "e.com/k in (,v)", "a=b)", "(", "a in (b c)"} {
		f.Add(s)
	}
	probes := []map[string]string{
		nil,
		{"a": "b"},
		{"a": "", "x": "a"},
		{"x": "b", "y": "1", "c": "d"},
	}
	f.Fuzz(func(t *testing.T, in string) {
		s, err := Parse(in)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("Parse(%q) error %v is not a *ParseError", in, err)
			}
			return
		}
		out := s.String()
		s2, err := Parse(out)
		if err != nil {
			t.Fatalf("Parse(%q).String() = %q does not parse: %v", in, out, err)
		}
		if s2.String() != out {
			t.Fatalf("round trip changed %q to %q", out, s2.String())
		}
		// Equivalent selectors agree on every label set, including ones
		// built from the selector's own keys and values.
		sets := append([]map[string]string{}, probes...)
		for _, r := range s.Requirements() {
			for _, v := range append(r.Values, "zz") {
				sets = append(sets, map[string]string{r.Key: v})
			}
		}
		for _, set := range sets {
			if s.Matches(set) != s2.Matches(set) {
				t.Fatalf("%q and %q disagree on %v", in, out, set)
			}
		}
	})
}
