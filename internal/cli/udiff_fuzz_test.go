package cli

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"testing"
)

// applyUnified applies a unified diff made by unifiedDiff to a, checking
// every context and removed line, so that a fuzzed diff is proven right.
func applyUnified(a, diff string) (string, error) {
	al := splitLines(a)
	lines := splitLines(diff)
	if len(lines) < 2 {
		return "", fmt.Errorf("no header")
	}
	var out []string
	pos := 0 // next line of a to copy
	i := 2
	for i < len(lines) {
		h := strings.TrimSuffix(lines[i], "\n")
		var aStart, aLen int
		fields := strings.Fields(h)
		if len(fields) < 4 || fields[0] != "@@" {
			return "", fmt.Errorf("bad hunk header %q", h)
		}
		aStart, aLen = parseRange(fields[1][1:])
		if aLen > 0 {
			aStart--
		}
		for pos < aStart {
			out = append(out, al[pos])
			pos++
		}
		i++
		for i < len(lines) && !strings.HasPrefix(lines[i], "@@") {
			l := lines[i]
			i++
			noNL := i < len(lines) && lines[i] == "\\ No newline at end of file\n"
			text := l[1:]
			if noNL {
				text = strings.TrimSuffix(text, "\n")
				i++
			}
			switch l[0] {
			case ' ':
				if pos >= len(al) || al[pos] != text {
					return "", fmt.Errorf("context mismatch at a line %d", pos+1)
				}
				out = append(out, text)
				pos++
			case '-':
				if pos >= len(al) || al[pos] != text {
					return "", fmt.Errorf("removed line mismatch at a line %d", pos+1)
				}
				pos++
			case '+':
				out = append(out, text)
			default:
				return "", fmt.Errorf("bad line %q", l)
			}
		}
	}
	out = append(out, al[pos:]...)
	return strings.Join(out, ""), nil
}

func parseRange(s string) (int, int) {
	start, n, ok := strings.Cut(s, ",")
	a, _ := strconv.Atoi(start)
	if !ok {
		return a, 1
	}
	b, _ := strconv.Atoi(n)
	return a, b
}

func FuzzUnifiedDiff(f *testing.F) {
	f.Add("a\nb\nc\n", "a\nc\nd\n")
	f.Add("", "x\n")
	f.Add("x", "")
	f.Add("1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\n13\n14\n", "1\nX\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\nY\n14")
	f.Fuzz(func(t *testing.T, a, b string) {
		if len(a) > 4096 || len(b) > 4096 {
			return
		}
		var buf bytes.Buffer
		differ, err := unifiedDiff(&buf, "A", "B", a, b)
		if err != nil {
			t.Fatal(err)
		}
		if differ != (a != b) {
			t.Fatalf("differ=%v for a==b %v", differ, a == b)
		}
		if !differ {
			return
		}
		got, err := applyUnified(a, buf.String())
		if err != nil {
			t.Fatalf("applying the diff: %v\n%s", err, buf.String())
		}
		if got != b {
			t.Fatalf("patched a != b\n a=%q\n b=%q\n got=%q\n%s", a, b, got, buf.String())
		}
	})
}
