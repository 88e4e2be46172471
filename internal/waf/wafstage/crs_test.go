//go:build crs

package wafstage

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	crstests "github.com/corazawaf/coraza-coreruleset/v4/tests"
	"sigs.k8s.io/yaml"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/internal/waf"
)

// The go-ftw test format, as far as the CRS tests use it.
type ftwFile struct {
	RuleID int       `json:"rule_id"`
	Tests  []ftwTest `json:"tests"`
}

type ftwTest struct {
	TestID int        `json:"test_id"`
	Desc   string     `json:"desc"`
	Stages []ftwStage `json:"stages"`
}

type ftwStage struct {
	Input  ftwInput  `json:"input"`
	Output ftwOutput `json:"output"`
}

type ftwInput struct {
	Method              *string           `json:"method"`
	URI                 *string           `json:"uri"`
	Version             *string           `json:"version"`
	Headers             map[string]string `json:"headers"`
	Data                *string           `json:"data"`
	EncodedRequest      string            `json:"encoded_request"`
	AutocompleteHeaders *bool             `json:"autocomplete_headers"`
}

type ftwOutput struct {
	Status json.RawMessage `json:"status"`
	Log    struct {
		ExpectIDs   []int `json:"expect_ids"`
		NoExpectIDs []int `json:"no_expect_ids"`
	} `json:"log"`
}

// crsCase is one test of the suite ("920100-4").
type crsCase struct {
	name string
	test ftwTest
}

func loadCRSTests(t *testing.T) []crsCase {
	var out []crsCase
	err := fs.WalkDir(crstests.FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || path.Ext(p) != ".yaml" {
			return err
		}
		raw, err := fs.ReadFile(crstests.FS, p)
		if err != nil {
			return err
		}
		var f ftwFile
		if err := yaml.Unmarshal(raw, &f); err != nil {
			return fmt.Errorf("parsing %s: %w", p, err)
		}
		for _, tc := range f.Tests {
			out = append(out, crsCase{name: fmt.Sprintf("%d-%d", f.RuleID, tc.TestID), test: tc})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// loadExclusions reads testdata/crs-exclusions.txt: "<rule>-<test>  reason".
func loadExclusions(t *testing.T) map[string]string {
	return loadList(t, "testdata/crs-exclusions.txt")
}

// loadList reads a file of "<rule>-<test> reason" lines.
func loadList(t *testing.T, file string) map[string]string {
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	ex := map[string]string{}
	for i, line := range strings.Split(string(raw), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, reason, _ := strings.Cut(line, " ")
		if strings.TrimSpace(reason) == "" {
			t.Fatalf("%s line %d: %q has no reason", file, i+1, name)
		}
		ex[name] = strings.TrimSpace(reason)
	}
	return ex
}

// rawRequest renders a stage's input as the bytes go-ftw would send.
func rawRequest(in ftwInput) ([]byte, error) {
	if in.EncodedRequest != "" {
		return base64.StdEncoding.DecodeString(strings.ReplaceAll(in.EncodedRequest, "\n", ""))
	}
	str := func(p *string, def string) string {
		if p == nil {
			return def
		}
		return *p
	}
	method, uri, version := str(in.Method, "GET"), str(in.URI, "/"), str(in.Version, "HTTP/1.1")
	data := expandTemplates(str(in.Data, ""))
	var b strings.Builder
	b.WriteString(method + " " + uri + " " + version + "\r\n")
	names := make([]string, 0, len(in.Headers))
	for k := range in.Headers {
		names = append(names, k)
	}
	sort.Strings(names)
	hasCL := false
	for _, k := range names {
		if strings.EqualFold(k, "Content-Length") {
			hasCL = true
		}
		b.WriteString(k + ": " + in.Headers[k] + "\r\n")
	}
	auto := in.AutocompleteHeaders == nil || *in.AutocompleteHeaders
	if auto && data != "" && !hasCL {
		b.WriteString("Content-Length: " + strconv.Itoa(len(data)) + "\r\n")
	}
	b.WriteString("\r\n")
	b.WriteString(data)
	return []byte(b.String()), nil
}

// send sends one raw request on a new connection and returns the status
// (0 when the server closed without an answer).
func send(addr string, req []byte) int {
	c, err := net.DialTimeout("tcp", addr, 3*time.Second)
	if err != nil {
		return 0
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(req); err != nil {
		return 0
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	return resp.StatusCode
}

func statusOK(raw json.RawMessage, got int) bool {
	if len(raw) == 0 {
		return true
	}
	var one int
	if json.Unmarshal(raw, &one) == nil {
		return one == got
	}
	var many []int
	if json.Unmarshal(raw, &many) == nil {
		return slices.Contains(many, got)
	}
	return true
}

// TestCRSRegression replays the CRS regression tests shipped in
// coraza-coreruleset as real HTTP requests through a Meridian data-plane
// listener running the WAF stage (detection only, paranoia level 4, the
// CRS test settings) in front of a reflecting backend.
func TestCRSRegression(t *testing.T) {
	cases := loadCRSTests(t)
	excluded := loadExclusions(t)
	w, err := waf.CompileForCRSTests(v1.AppFirewallSpec{Mode: v1.AppFirewallMonitor, ParanoiaLevel: 4,
		RequestBody:        v1.WAFRequestBody{Limit: v1.MaxWAFBodyLimit, JSONDepthLimit: 1024},
		ResponseInspection: v1.WAFResponseInspection{Enabled: true, MimeTypes: []string{"text/plain", "text/html", "text/xml"}}})
	if err != nil {
		t.Fatal(err)
	}
	backend := reflectBackend(t)
	const workers = 2
	fronts := make([]string, workers)
	for i := range fronts {
		name := fmt.Sprintf("crs%d", i)
		prebuilt.Store(name, w)
		fronts[i] = startFront(t, name, v1.AppFirewallSpec{}, backend)
	}

	type result struct {
		name, why string
	}
	var mu sync.Mutex
	var failures []result
	passed, ran := 0, 0
	only := os.Getenv("CRS_ONLY") // e.g. "942" or "920100-4"
	work := make(chan crsCase)
	var wg sync.WaitGroup
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func(addr, lb string) {
			defer wg.Done()
			for c := range work {
				why := runCase(addr, lb, c)
				mu.Lock()
				ran++
				if why == "" {
					passed++
				} else {
					failures = append(failures, result{c.name, why})
				}
				mu.Unlock()
			}
		}(fronts[i], fmt.Sprintf("t/crs%d", i))
	}
	// Excluded tests still run, after the others (a front's events must
	// belong to one test at a time): one that passes is a stale exclusion,
	// its request no longer refused before the stages.
	nExcluded := 0
	var exCases []crsCase
	for _, c := range cases {
		_, isExcluded := excluded[c.name]
		if isExcluded {
			nExcluded++
			delete(excluded, c.name)
		}
		if only != "" && !strings.HasPrefix(c.name, only) {
			continue
		}
		if isExcluded {
			exCases = append(exCases, c)
			continue
		}
		work <- c
	}
	close(work)
	wg.Wait()
	for _, c := range exCases {
		if runCase(fronts[0], "t/crs0", c) == "" {
			t.Errorf("excluded test %s passes now: remove it from testdata/crs-exclusions.txt", c.name)
		}
	}
	for name := range excluded {
		t.Errorf("testdata/crs-exclusions.txt names %s, which is not a test of the suite", name)
	}
	sort.Slice(failures, func(i, j int) bool { return failures[i].name < failures[j].name })
	known := loadList(t, "testdata/crs-known-failures.txt")
	failed := map[string]bool{}
	for _, f := range failures {
		failed[f.name] = true
		if cause, ok := known[f.name]; ok {
			t.Logf("known failure %s: %s (%s)", f.name, f.why, cause)
		} else {
			t.Errorf("FAIL %s: %s", f.name, f.why)
		}
	}
	for name := range known {
		if !failed[name] && (only == "" || strings.HasPrefix(name, only)) {
			// A stale entry would hide a regression of that test.
			t.Errorf("known failure %s passes now: remove it from testdata/crs-known-failures.txt", name)
		}
	}
	exPct := 100 * float64(nExcluded) / float64(len(cases))
	passPct := 100 * float64(passed) / float64(max(ran, 1))
	t.Logf("CRS regression: %d tests, %d excluded (%.2f%%), %d run, %d passed (%.2f%%), %d failed",
		len(cases), nExcluded, exPct, ran, passed, passPct, len(failures))
	if only == "" && (exPct > 2 || passPct < 99) {
		t.Errorf("goal missed: excluded %.2f%% (max 2%%), passed %.2f%% (min 99%%)", exPct, passPct)
	}
}

// runCase runs the stages of one test and returns why it failed ("" when
// it passed).
func runCase(addr, lb string, c crsCase) string {
	for i, st := range c.test.Stages {
		req, err := rawRequest(st.Input)
		if err != nil {
			return fmt.Sprintf("stage %d: %v", i, err)
		}
		status := send(addr, req)
		var ids []int
		for _, e := range events.takeAll(lb) {
			for _, r := range e.Rules {
				ids = append(ids, r.ID)
			}
		}
		for _, id := range st.Output.Log.ExpectIDs {
			if !slices.Contains(ids, id) {
				return fmt.Sprintf("stage %d: expected rule %d, matched %v (status %d)", i, id, ids, status)
			}
		}
		for _, id := range st.Output.Log.NoExpectIDs {
			if slices.Contains(ids, id) {
				return fmt.Sprintf("stage %d: rule %d matched but must not (status %d)", i, id, status)
			}
		}
		if len(st.Output.Log.ExpectIDs) == 0 && len(st.Output.Log.NoExpectIDs) == 0 && !statusOK(st.Output.Status, status) {
			return fmt.Sprintf("stage %d: status %d, want %s", i, status, st.Output.Status)
		}
	}
	return ""
}

// repeatTemplate is the one go-ftw template function the CRS tests use:
// {{ "x" | repeat N }}.
var repeatTemplate = regexp.MustCompile(`\{\{\s*"([^"]*)"\s*\|\s*repeat\s+([0-9]+)\s*\}\}`)

func expandTemplates(s string) string {
	return repeatTemplate.ReplaceAllStringFunc(s, func(m string) string {
		sub := repeatTemplate.FindStringSubmatch(m)
		n, _ := strconv.Atoi(sub[2])
		return strings.Repeat(sub[1], min(n, 1<<20))
	})
}
