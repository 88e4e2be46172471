package waf

import (
	"bytes"
	"io/fs"
	"regexp"
	"strings"
	"sync"
	"testing/fstest"

	coreruleset "github.com/corazawaf/coraza-coreruleset/v4"
)

// The CRS rule files as Meridian loads them: the embedded copy with every
// logdata action removed. Coraza expands a rule's logdata macro (three
// collection lookups and a string build) each time it evaluates the rule,
// match or not, and Meridian never reads it: security events carry the
// rule's message, the matched variable and its (masked) value. Removing
// the action changes no verdict, no score and no message. An in-memory
// file system (testing/fstest's map, a plain map of files) holds the
// rewritten copy; it is built once per process.
var (
	crsOnce sync.Once
	crsFS   fs.FS
	crsErr  error
)

// logdataLine matches a logdata action on a line of its own inside a
// rule's action list (how every CRS rule file writes it).
var logdataLine = regexp.MustCompile(`(?m)^[ \t]*logdata:'(?:[^'\\]|\\.)*',\\\n`)

func rootFS() (fs.FS, error) {
	crsOnce.Do(func() { crsFS, crsErr = stripLogdata(coreruleset.FS) })
	return crsFS, crsErr
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
