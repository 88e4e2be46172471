package cli

import (
	"fmt"
	"io"
	"strings"
)

// diffContext is the number of unchanged lines around each change.
const diffContext = 3

// unifiedDiff writes the unified diff of a and b (as `diff -u` does) and
// reports whether they differ. Lines are compared whole.
func unifiedDiff(w io.Writer, nameA, nameB, a, b string) (bool, error) {
	la, lb := splitLines(a), splitLines(b)
	ops := diffLines(la, lb)
	changed := false
	for _, op := range ops {
		if op.kind != ' ' {
			changed = true
			break
		}
	}
	if !changed {
		return false, nil
	}
	if _, err := fmt.Fprintf(w, "--- %s\n+++ %s\n", nameA, nameB); err != nil {
		return true, err
	}
	for _, h := range hunks(ops) {
		if _, err := io.WriteString(w, h); err != nil {
			return true, err
		}
	}
	return true, nil
}

func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	lines := strings.SplitAfter(s, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	return lines
}

// diffOp is one line of an edit script: ' ' kept, '-' removed, '+' added.
type diffOp struct {
	kind byte
	line string
	// ai, bi are the 0-based line numbers in a and b before this op.
	ai, bi int
}

// diffLines computes a shortest edit script with a longest-common-
// subsequence table; manifests are small, so O(n*m) is fine.
func diffLines(a, b []string) []diffOp {
	n, m := len(a), len(b)
	lcs := make([][]int32, n+1)
	for i := range lcs {
		lcs[i] = make([]int32, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else if lcs[i+1][j] >= lcs[i][j+1] {
				lcs[i][j] = lcs[i+1][j]
			} else {
				lcs[i][j] = lcs[i][j+1]
			}
		}
	}
	var ops []diffOp
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && a[i] == b[j]:
			ops = append(ops, diffOp{' ', a[i], i, j})
			i++
			j++
		case j < m && (i == n || lcs[i][j+1] > lcs[i+1][j]):
			ops = append(ops, diffOp{'+', b[j], i, j})
			j++
		default:
			ops = append(ops, diffOp{'-', a[i], i, j})
			i++
		}
	}
	return ops
}

// hunks groups an edit script into unified-diff hunks.
func hunks(ops []diffOp) []string {
	var out []string
	for start := 0; start < len(ops); {
		// find the next change
		c := start
		for c < len(ops) && ops[c].kind == ' ' {
			c++
		}
		if c == len(ops) {
			break
		}
		lo := max(c-diffContext, 0)
		// extend while changes are within 2*context of each other
		hi := c
		for {
			for hi < len(ops) && ops[hi].kind != ' ' {
				hi++
			}
			k := hi
			for k < len(ops) && ops[k].kind == ' ' && k-hi < 2*diffContext {
				k++
			}
			if k < len(ops) && ops[k].kind != ' ' {
				hi = k
				continue
			}
			break
		}
		end := min(hi+diffContext, len(ops))
		var b strings.Builder
		aStart, bStart := ops[lo].ai, ops[lo].bi
		aLen, bLen := 0, 0
		for _, op := range ops[lo:end] {
			switch op.kind {
			case ' ':
				aLen++
				bLen++
			case '-':
				aLen++
			case '+':
				bLen++
			}
			b.WriteByte(op.kind)
			b.WriteString(op.line)
			if !strings.HasSuffix(op.line, "\n") {
				b.WriteString("\n\\ No newline at end of file\n")
			}
		}
		out = append(out, fmt.Sprintf("@@ -%s +%s @@\n", hunkRange(aStart, aLen), hunkRange(bStart, bLen))+b.String())
		start = end
	}
	return out
}

func hunkRange(start, n int) string {
	if n == 0 {
		return fmt.Sprintf("%d,0", start)
	}
	if n == 1 {
		return fmt.Sprintf("%d", start+1)
	}
	return fmt.Sprintf("%d,%d", start+1, n)
}
