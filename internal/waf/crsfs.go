package waf

import (
	"bytes"
	"fmt"
	"io/fs"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing/fstest"

	coreruleset "github.com/corazawaf/coraza-coreruleset/v4"
)

// The CRS rule files as Meridian loads them: the embedded copy with every
// logdata action removed, and (for configurations without custom rules)
// one tag lookup turned into an id range, both described below. Coraza expands a rule's logdata macro (three
// collection lookups and a string build) each time it evaluates the rule,
// match or not, and Meridian never reads it: security events carry the
// rule's message, the matched variable and its (masked) value. Removing
// the action changes no verdict, no score and no message. An in-memory
// file system (testing/fstest's map, a plain map of files) holds the
// rewritten copy; it is built once per process.
var (
	crsOnce sync.Once
	crsFS   fs.FS // logdata removed
	crsFast fs.FS // and 941010's target removal by id range (nil: not possible)
	crsErr  error
)

// logdataLine matches a logdata action on a line of its own inside a
// rule's action list (how every CRS rule file writes it).
var logdataLine = regexp.MustCompile(`(?m)^[ \t]*logdata:'(?:[^'\\]|\\.)*',\\\n`)

// rootFS returns the CRS copy to load; custom is whether the
// configuration adds rules of its own.
func rootFS(custom bool) (fs.FS, error) {
	crsOnce.Do(func() {
		crsFS, crsErr = stripLogdata(coreruleset.FS)
		if crsErr == nil {
			crsFast = xssTargetByRange(crsFS.(fstest.MapFS))
		}
	})
	if crsErr != nil || custom || crsFast == nil {
		return crsFS, crsErr
	}
	return crsFast, nil
}

// Rule 941010 runs on every request whose path is plain (letters, digits,
// "/", "-", ".", "_", space) and removes REQUEST_FILENAME from the rules
// tagged xss-perf-disable with ctl:ruleRemoveTargetByTag, which Coraza
// carries out by comparing the tag with every tag of every loaded rule
// (thousands of string comparisons per request). When the rules so tagged
// are exactly the CRS rules of an id range, ctl:ruleRemoveTargetById over
// that range removes the same target from the same rules with one integer
// comparison per rule. A custom rule could carry the tag, or an id inside
// the range: configurations with custom rules keep the original.
const xssPerfCtl = "ctl:ruleRemoveTargetByTag=xss-perf-disable;REQUEST_FILENAME,"

var (
	ruleStart = regexp.MustCompile(`^Sec(?:Rule|Action)\b`)
	ruleID    = regexp.MustCompile(`\bid:([0-9]+)`)
	ruleTag   = regexp.MustCompile(`\btag:'([^']*)'`)
)

func xssTargetByRange(base fstest.MapFS) fs.FS {
	tagged := map[int]bool{}
	for p, f := range base {
		if !strings.HasPrefix(p, "@owasp_crs/") || !strings.HasSuffix(p, ".conf") {
			continue
		}
		id := -1
		for _, line := range strings.Split(string(f.Data), "\n") {
			if ruleStart.MatchString(line) {
				id = -1
			}
			if m := ruleID.FindStringSubmatch(line); m != nil && id < 0 {
				id, _ = strconv.Atoi(m[1])
				tagged[id] = tagged[id] || false
			}
			for _, m := range ruleTag.FindAllStringSubmatch(line, -1) {
				if id >= 0 && m[1] == "xss-perf-disable" {
					tagged[id] = true
				}
			}
		}
	}
	lo, hi := -1, -1
	for id, t := range tagged {
		if t && (lo < 0 || id < lo) {
			lo = id
		}
		if t && id > hi {
			hi = id
		}
	}
	if lo < 0 {
		return nil
	}
	for id, t := range tagged {
		if !t && id >= lo && id <= hi {
			return nil // an untagged rule inside the range
		}
	}
	const file = "@owasp_crs/REQUEST-941-APPLICATION-ATTACK-XSS.conf"
	f := base[file]
	if f == nil || strings.Count(string(f.Data), xssPerfCtl) != 1 {
		return nil
	}
	out := fstest.MapFS{}
	for p, f := range base {
		out[p] = f
	}
	byRange := fmt.Sprintf("ctl:ruleRemoveTargetById=%d-%d;REQUEST_FILENAME,", lo, hi)
	out[file] = &fstest.MapFile{Data: []byte(strings.Replace(string(f.Data), xssPerfCtl, byRange, 1)), Mode: f.Mode}
	return out
}

func stripLogdata(src fs.FS) (fs.FS, error) {
	out := fstest.MapFS{}
	err := fs.WalkDir(src, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(src, p)
		if err != nil {
			return err
		}
		if strings.HasPrefix(p, "@owasp_crs/") && strings.HasSuffix(p, ".conf") {
			b = logdataLine.ReplaceAll(b, nil)
		}
		out[p] = &fstest.MapFile{Data: bytes.Clone(b), Mode: 0o444}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
