package cli

import (
	"bytes"
	"strings"
	"testing"
)

func TestUnifiedDiff(t *testing.T) {
	lines := func(n int, change map[int]string) string {
		var b strings.Builder
		for i := 1; i <= n; i++ {
			if s, ok := change[i]; ok {
				if s != "" {
					b.WriteString(s + "\n")
				}
				continue
			}
			b.WriteString("l" + string(rune('a'+i-1)) + "\n")
		}
		return b.String()
	}
	cases := []struct {
		name string
		a, b string
		want string
	}{
		{"equal", "x\ny\n", "x\ny\n", ""},
		{"both empty", "", "", ""},
		{"created", "", "a\nb\n", "--- A\n+++ B\n@@ -0,0 +1,2 @@\n+a\n+b\n"},
		{"deleted", "a\n", "", "--- A\n+++ B\n@@ -1 +0,0 @@\n-a\n"},
		{
			"one change in the middle",
			lines(10, nil), lines(10, map[int]string{5: "NEW"}),
			"--- A\n+++ B\n@@ -2,7 +2,7 @@\n lb\n lc\n ld\n-le\n+NEW\n lf\n lg\n lh\n",
		},
		{
			"two distant changes make two hunks",
			lines(20, nil), lines(20, map[int]string{2: "X", 18: ""}),
			"--- A\n+++ B\n@@ -1,5 +1,5 @@\n la\n-lb\n+X\n lc\n ld\n le\n@@ -15,6 +15,5 @@\n lo\n lp\n lq\n-lr\n ls\n lt\n",
		},
		{
			"close changes share a hunk",
			lines(12, nil), lines(12, map[int]string{3: "X", 9: "Y"}),
			"--- A\n+++ B\n@@ -1,12 +1,12 @@\n la\n lb\n-lc\n+X\n ld\n le\n lf\n lg\n lh\n-li\n+Y\n lj\n lk\n ll\n",
		},
		{"missing final newline", "a\nb", "a\nc", "--- A\n+++ B\n@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n+c\n\\ No newline at end of file\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			differ, err := unifiedDiff(&buf, "A", "B", tc.a, tc.b)
			if err != nil {
				t.Fatal(err)
			}
			if differ != (tc.want != "") {
				t.Fatalf("differ = %v", differ)
			}
			if buf.String() != tc.want {
				t.Fatalf("diff\n got:\n%s\nwant:\n%s", buf.String(), tc.want)
			}
		})
	}
}
