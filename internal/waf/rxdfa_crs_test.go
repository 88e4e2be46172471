package waf

import (
	"io/fs"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	coreruleset "github.com/corazawaf/coraza-coreruleset/v4"
	crstests "github.com/corazawaf/coraza-coreruleset/v4/tests"
	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"

	"github.com/meridian-platform/meridian/internal/waf/rxdfa"
)

// crsRxPatterns returns the arguments of every @rx operator in the CRS
// rule files.
func crsRxPatterns(t testing.TB) []string {
	t.Helper()
	arg := regexp.MustCompile(`"@rx ((?:[^"\\]|\\.)*)"`)
	var out []string
	err := fs.WalkDir(coreruleset.FS, "@owasp_crs", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".conf") {
			return err
		}
		b, err := fs.ReadFile(coreruleset.FS, p)
		if err != nil {
			return err
		}
		for _, m := range arg.FindAllStringSubmatch(string(b), -1) {
			out = append(out, strings.ReplaceAll(m[1], `\"`, `"`))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) < 200 {
		t.Fatalf("found %d @rx patterns in the CRS, want hundreds", len(out))
	}
	return out
}

// crsPayloads returns request lines, bodies and header values of the CRS
// regression tests (as written and URL-decoded), and benign values.
func crsPayloads(t testing.TB, every int) []string {
	t.Helper()
	field := regexp.MustCompile(`^\s*(?:data|uri|User-Agent|Referer|Cookie|Content-Type|Accept):\s*(.+)$`)
	seen := map[string]bool{}
	var out []string
	add := func(s string) {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	for _, s := range []string{"", "42", "alice", "id", "name", "garden window morning river and more",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
		"application/json, text/plain, */*", "json.field01", "time and more", "busybox ls", ";ls -la", "a\nb", "x\r\ny"} {
		add(s)
	}
	n := 0
	err := fs.WalkDir(crstests.FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".yaml") {
			return err
		}
		b, err := fs.ReadFile(crstests.FS, p)
		if err != nil {
			return err
		}
		for _, line := range strings.Split(string(b), "\n") {
			m := field.FindStringSubmatch(line)
			if m == nil {
				continue
			}
			if n++; n%every != 0 {
				continue
			}
			v := strings.Trim(strings.TrimSpace(m[1]), `"'`)
			add(v)
			if u, err := url.QueryUnescape(v); err == nil {
				add(u)
				add(strings.ToLower(u))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestRxDFAAgreesWithRegexpOnCRS checks the automaton in front of every CRS
// expression against Go's regexp on the CRS regression payloads: it must
// never say NoMatch where the expression matches, nor Match where it does
// not.
func TestRxDFAAgreesWithRegexpOnCRS(t *testing.T) {
	// Every n-th payload line of the CRS tests (RXDFA_EVERY=1: all of
	// them, 1.8 million comparisons; too slow for every run).
	every := 40
	if testing.Short() {
		every = 100
	}
	if v, err := strconv.Atoi(os.Getenv("RXDFA_EVERY")); err == nil && v > 0 {
		every = v
	}
	patterns := crsRxPatterns(t)
	inputs := crsPayloads(t, every)
	decided, matches, states, bytes, maxBytes := 0, 0, 0, 0, 0
	for _, p := range patterns {
		op, err := newRX(plugintypes.OperatorOptions{Arguments: p})
		if err != nil {
			t.Fatalf("%q: %v", p, err)
		}
		rx, ok := op.(*rxOp)
		if !ok || rx.dfa == nil {
			continue
		}
		for _, in := range inputs {
			got := rx.dfa.Match(in)
			if got == rxdfa.Unknown {
				continue
			}
			decided++
			want := rx.re.MatchString(in)
			if want {
				matches++
			}
			if (got == rxdfa.Match) != want {
				t.Errorf("@rx %.80q on %.80q: automaton %v, regexp match=%v", p, in, got, want)
			}
		}
		n, b := rx.dfa.Size()
		states, bytes, maxBytes = states+n, bytes+b, max(maxBytes, b)
	}
	t.Logf("%d patterns, %d inputs, %d decided by the automaton (%d matches); %d states, %d KiB in all, %d KiB at most",
		len(patterns), len(inputs), decided, matches, states, bytes>>10, maxBytes>>10)
	if matches == 0 || decided < len(patterns)*len(inputs)/2 {
		t.Fatalf("the automaton decided %d of %d evaluations (%d matches): too few to judge", decided, len(patterns)*len(inputs), matches)
	}
}
