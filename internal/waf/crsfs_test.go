package waf

import (
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"testing"

	coreruleset "github.com/corazawaf/coraza-coreruleset/v4"
)

// The copy Meridian loads differs from the embedded CRS only by its
// logdata actions: every rule, action and data file is still there.
func TestCRSCopyDropsOnlyLogdata(t *testing.T) {
	root, err := rootFS(true)
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

// Without custom rules, 941010 removes REQUEST_FILENAME from an id range
// that holds exactly the rules tagged xss-perf-disable; nothing else
// differs.
func TestCRSCopyXSSTargetRange(t *testing.T) {
	base, err := rootFS(true)
	if err != nil {
		t.Fatal(err)
	}
	fast, err := rootFS(false)
	if err != nil {
		t.Fatal(err)
	}
	const file = "@owasp_crs/REQUEST-941-APPLICATION-ATTACK-XSS.conf"
	b, _ := fs.ReadFile(base, file)
	f, _ := fs.ReadFile(fast, file)
	bl, fl := strings.Split(string(b), "\n"), strings.Split(string(f), "\n")
	if len(bl) != len(fl) {
		t.Fatalf("line counts differ: %d vs %d", len(bl), len(fl))
	}
	var lo, hi int
	changed := 0
	for i := range bl {
		if bl[i] == fl[i] {
			continue
		}
		changed++
		if strings.TrimSuffix(strings.TrimSpace(bl[i]), `\`) != xssPerfCtl {
			t.Fatalf("line %d changed: %q -> %q", i+1, bl[i], fl[i])
		}
		if _, err := fmt.Sscanf(strings.TrimSpace(fl[i]), "ctl:ruleRemoveTargetById=%d-%d;REQUEST_FILENAME,\\", &lo, &hi); err != nil {
			t.Fatalf("line %d: %q: %v", i+1, fl[i], err)
		}
	}
	if changed != 1 {
		t.Fatalf("%d lines changed, want 1", changed)
	}
	// Every CRS rule with an id in [lo, hi] carries the tag, and every
	// rule with the tag is in the range.
	inRange, tagged := 0, 0
	files, _ := fs.Glob(base, "@owasp_crs/*.conf")
	for _, p := range files {
		data, _ := fs.ReadFile(base, p)
		for _, block := range strings.Split(string(data), "\nSec") {
			m := ruleID.FindStringSubmatch(block)
			if m == nil {
				continue
			}
			id, _ := strconv.Atoi(m[1])
			has := strings.Contains(block, "tag:'xss-perf-disable'")
			if has {
				tagged++
				if id < lo || id > hi {
					t.Errorf("rule %d is tagged but outside %d-%d", id, lo, hi)
				}
			}
			if id >= lo && id <= hi {
				inRange++
				if !has {
					t.Errorf("rule %d is inside %d-%d but not tagged", id, lo, hi)
				}
			}
		}
	}
	if tagged < 10 || tagged != inRange {
		t.Errorf("%d tagged rules, %d in range", tagged, inRange)
	}
	// Configurations with custom rules load the original ctl.
	if !strings.Contains(string(b), xssPerfCtl) {
		t.Error("the copy for custom rules lost the tag-based ctl")
	}
}
