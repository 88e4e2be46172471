package waf

import (
	"io/fs"
	"strings"
	"testing"

	coreruleset "github.com/corazawaf/coraza-coreruleset/v4"
)

// The copy Meridian loads differs from the embedded CRS only by its
// logdata actions: every rule, action and data file is still there.
func TestCRSCopyDropsOnlyLogdata(t *testing.T) {
	root, err := rootFS()
	if err != nil {
		t.Fatal(err)
	}
	files, err := fs.Glob(coreruleset.FS, "@owasp_crs/*")
	if err != nil || len(files) < 20 {
		t.Fatalf("CRS files: %v (%v)", files, err)
	}
	removed := 0
	for _, p := range files {
		orig, err := fs.ReadFile(coreruleset.FS, p)
		if err != nil {
			t.Fatal(err)
		}
		got, err := fs.ReadFile(root, p)
		if err != nil {
			t.Fatalf("%s missing from the copy: %v", p, err)
		}
		if !strings.HasSuffix(p, ".conf") {
			if string(got) != string(orig) {
				t.Errorf("%s changed", p)
			}
			continue
		}
		if strings.Contains(string(got), "logdata:") {
			t.Errorf("%s still has a logdata action", p)
		}
		var kept []string
		for _, line := range strings.Split(string(orig), "\n") {
			if strings.HasPrefix(strings.TrimSpace(line), "logdata:'") {
				removed++
				continue
			}
			kept = append(kept, line)
		}
		if strings.Join(kept, "\n") != string(got) {
			t.Errorf("%s: the copy differs from the original by more than its logdata lines", p)
		}
	}
	if removed < 300 {
		t.Errorf("removed %d logdata actions, want the CRS's 300+", removed)
	}
	if _, err := fs.ReadFile(root, "@crs-setup.conf.example"); err != nil {
		t.Errorf("setup file missing from the copy: %v", err)
	}
}
