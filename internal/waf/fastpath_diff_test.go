package waf

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	crstests "github.com/corazawaf/coraza-coreruleset/v4/tests"
	"sigs.k8s.io/yaml"

	v1 "github.com/meridian-platform/meridian/api/v1"
)

// The differential test of the no-match fast path: every request of the
// CRS regression suite and a corpus of benign requests goes through the
// same compiled configuration twice, with and without the fast path. The
// outcomes (verdict and the rules reported) must be equal, and a request
// the fast path decided alone must be one Coraza finds nothing in: a false
// "no match" would be a missed attack.

type diffFile struct {
	RuleID int `json:"rule_id"`
	Tests  []struct {
		TestID int `json:"test_id"`
		Stages []struct {
			Input struct {
				Method         *string           `json:"method"`
				URI            *string           `json:"uri"`
				Version        *string           `json:"version"`
				Headers        map[string]string `json:"headers"`
				Data           *string           `json:"data"`
				EncodedRequest string            `json:"encoded_request"`
			} `json:"input"`
		} `json:"stages"`
	} `json:"tests"`
}

// crsRequests reads the CRS regression suite's requests.
func crsRequests(t testing.TB) []fpRequest {
	var out []fpRequest
	err := fs.WalkDir(crstests.FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || path.Ext(p) != ".yaml" {
			return err
		}
		raw, err := fs.ReadFile(crstests.FS, p)
		if err != nil {
			return err
		}
		var f diffFile
		if err := yaml.Unmarshal(raw, &f); err != nil {
			return fmt.Errorf("parsing %s: %w", p, err)
		}
		for _, tc := range f.Tests {
			for si, st := range tc.Stages {
				in := st.Input
				name := fmt.Sprintf("%d-%d/%d", f.RuleID, tc.TestID, si)
				if in.EncodedRequest != "" {
					b, err := base64.StdEncoding.DecodeString(strings.ReplaceAll(in.EncodedRequest, "\n", ""))
					if err != nil {
						continue
					}
					req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(b)))
					if err != nil {
						continue
					}
					body, _ := io.ReadAll(io.LimitReader(req.Body, 1<<20))
					r := fpRequest{name: name, method: req.Method, uri: req.RequestURI, proto: req.Proto, body: string(body)}
					r.headers = append(r.headers, [2]string{"Host", req.Host})
					for _, k := range slices.Sorted(func(yield func(string) bool) {
						for k := range req.Header {
							if !yield(k) {
								return
							}
						}
					}) {
						for _, v := range req.Header[k] {
							r.headers = append(r.headers, [2]string{k, v})
						}
					}
					out = append(out, r)
					continue
				}
				str := func(p *string, def string) string {
					if p == nil {
						return def
					}
					return *p
				}
				r := fpRequest{name: name, method: str(in.Method, "GET"), uri: str(in.URI, "/"), proto: str(in.Version, "HTTP/1.1"), body: str(in.Data, "")}
				names := make([]string, 0, len(in.Headers))
				hasLen := false
				for k := range in.Headers {
					names = append(names, k)
					hasLen = hasLen || strings.EqualFold(k, "Content-Length")
				}
				sort.Strings(names)
				for _, k := range names {
					r.headers = append(r.headers, [2]string{k, in.Headers[k]})
				}
				if r.body != "" && !hasLen {
					r.headers = append(r.headers, [2]string{"Content-Length", strconv.Itoa(len(r.body))})
				}
				out = append(out, r)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// benignRequests is a corpus of ordinary requests: browsers and API
// clients, query strings, cookies, form and JSON bodies.
func benignRequests() []fpRequest {
	uas := []string{
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_2) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Safari/605.1.15",
		"Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
		"okhttp/4.12.0",
		"Go-http-client/1.1",
	}
	words := []string{"garden", "window", "morning", "river", "yellow", "friendly", "kitchen", "travel", "simple", "number", "alice", "bob", "order", "blue sky", "New York", "café"}
	paths := []string{"/", "/index.html", "/api/users", "/api/orders/17", "/static/app.js", "/images/logo.png", "/search", "/shop/cart", "/docs/getting-started"}
	var out []fpRequest
	for i := 0; i < 240; i++ {
		w := func(k int) string { return words[(i*7+k*3)%len(words)] }
		p := paths[i%len(paths)]
		uri := p
		if i%2 == 0 {
			uri += fmt.Sprintf("?id=%d&name=%s", i, strings.ReplaceAll(w(1), " ", "+"))
		}
		if i%5 == 0 {
			uri += fmt.Sprintf("&q=%s&page=%d", strings.ReplaceAll(w(2), " ", "%20"), i%9)
		}
		h := [][2]string{
			{"Host", "shop.example.com"},
			{"User-Agent", uas[i%len(uas)]},
			{"Accept", []string{"application/json, text/plain, */*", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", "*/*"}[i%3]},
		}
		if i%3 == 0 {
			h = append(h, [2]string{"Accept-Language", "en-US,en;q=0.9"}, [2]string{"Accept-Encoding", "gzip, deflate, br"})
		}
		if i%4 == 0 {
			h = append(h, [2]string{"Cookie", fmt.Sprintf("session=abc%d; theme=%s", i, w(3))})
		}
		if i%6 == 0 {
			h = append(h, [2]string{"Referer", "https://shop.example.com/search?q=" + w(4)})
		}
		r := fpRequest{name: fmt.Sprintf("benign-%d", i), method: "GET", uri: uri, headers: h}
		switch i % 8 {
		case 3:
			body := fmt.Sprintf(`{"name":%q,"note":%q,"count":%d,"tags":[%q,%q]}`, w(5), w(6)+" and "+w(7), i, w(8), w(9))
			r.method, r.body = "POST", body
			r.headers = append(r.headers, [2]string{"Content-Type", "application/json"}, [2]string{"Content-Length", strconv.Itoa(len(body))})
		case 5:
			body := fmt.Sprintf("name=%s&city=%s&zip=%d", strings.ReplaceAll(w(5), " ", "+"), strings.ReplaceAll(w(6), " ", "+"), 10000+i)
			r.method, r.body = "POST", body
			r.headers = append(r.headers, [2]string{"Content-Type", "application/x-www-form-urlencoded"}, [2]string{"Content-Length", strconv.Itoa(len(body))})
		}
		out = append(out, r)
	}
	out = append(out, benignGET(), benignPOST())
	return out
}

type diffOutcome struct {
	verdict string
	hits    []int
	fast    bool
}

func outcome(w *WAF, r fpRequest) diffOutcome {
	tx, v, hits := runTx(w, r)
	o := diffOutcome{hits: IDs(hits), fast: tx.Fast()}
	if v != nil {
		o.verdict = fmt.Sprintf("%d by %d", v.Status, v.RuleID)
	}
	return o
}

func diffEvery(def int) int {
	if s := os.Getenv("FASTPATH_EVERY"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n > 0 {
			return n
		}
	}
	if raceEnabled {
		return def * 30
	}
	return def
}

func TestFastPathDifferential(t *testing.T) {
	pl1 := mustWAF(t, v1.AppFirewallSpec{})
	// The CRS suite's configuration (wafstage's TestCRSRegression).
	crs, err := CompileForCRSTests(crsSuiteSpec())
	if err != nil {
		t.Fatal(err)
	}
	// Paranoia level 2 with exclusions (configuration-time removals and
	// target updates, run-time ctl rules for a path and a host).
	excl := pl1
	if !raceEnabled {
		if excl, err = Compile(exclusionSpec()); err != nil {
			t.Fatal(err)
		}
	}
	// Paranoia level 4 without response inspection: transactions start
	// natively (runstate.go) and go to the lean instance where a lean
	// rule may match.
	pl4, crsNative := pl1, pl1
	if !raceEnabled {
		if pl4, err = Compile(runNoResp()); err != nil {
			t.Fatal(err)
		}
		// The CRS suite's settings without response inspection: the
		// initialization's comparisons run natively.
		if crsNative, err = CompileForCRSTests(runNoResp()); err != nil {
			t.Fatal(err)
		}
	}
	crsReqs := crsRequests(t)
	benign := benignRequests()
	every := diffEvery(5)
	for _, cfg := range []struct {
		name string
		w    *WAF
	}{{"pl1", pl1}, {"crs-tests", crs}, {"pl2-exclusions", excl}, {"pl4-native", pl4}, {"crs-tests-native", crsNative}} {
		if raceEnabled && (cfg.name == "pl2-exclusions" || cfg.name == "pl4-native" || cfg.name == "crs-tests-native") {
			continue // the race detector makes the three compilations slow
		}
		if on, why := cfg.w.FastPath(); !on {
			t.Fatalf("%s: no fast path: %s", cfg.name, why)
		}
		slow := cfg.w.WithoutFastPath()
		for _, set := range []struct {
			name string
			reqs []fpRequest
			step int
		}{{"crs", crsReqs, every}, {"benign", benign, diffEvery(1)}} {
			n, fast := 0, 0
			for i := 0; i < len(set.reqs); i += set.step {
				r := set.reqs[i]
				want := outcome(slow, r)
				got := outcome(cfg.w, r)
				n++
				if got.fast {
					fast++
					if want.verdict != "" || len(want.hits) > 0 {
						t.Errorf("%s %s: fast path said no match; Coraza: verdict %q, rules %v", cfg.name, r.name, want.verdict, want.hits)
					}
				}
				if got.verdict != want.verdict || !slices.Equal(got.hits, want.hits) {
					t.Errorf("%s %s: with the fast path %q %v, without %q %v", cfg.name, r.name, got.verdict, got.hits, want.verdict, want.hits)
				}
			}
			t.Logf("%s/%s: %d requests, %d decided by the fast path alone", cfg.name, set.name, n, fast)
		}
	}
}

func crsSuiteSpec() v1.AppFirewallSpec {
	return v1.AppFirewallSpec{Mode: v1.AppFirewallMonitor, ParanoiaLevel: 4,
		RequestBody:        v1.WAFRequestBody{Limit: v1.MaxWAFBodyLimit, JSONDepthLimit: 1024},
		ResponseInspection: v1.WAFResponseInspection{Enabled: true, MimeTypes: []string{"text/plain", "text/html", "text/xml"}}}
}

func exclusionSpec() v1.AppFirewallSpec {
	return v1.AppFirewallSpec{ParanoiaLevel: 2, DetectionParanoiaLevel: 3, Exclusions: []v1.WAFExclusion{
		{RuleIDs: []int{942100}, ArgName: "q"},
		{RuleIDs: []int{920350}},
		{Tags: []string{"attack-xss"}, Path: "/api/"},
		{RuleIDs: []int{932235, 942200}, Host: "shop.example.com"},
		{Tags: []string{"attack-rce"}, ArgName: "cmd"},
	}}
}

// FuzzFastPath: for any request, the fast path's outcome is Coraza's, and
// a request it decides alone is one Coraza finds nothing in.
func FuzzFastPath(f *testing.F) {
	for _, r := range benignRequests()[:20] {
		f.Add(r.method, r.uri, r.headers[1][1], "", r.body)
	}
	f.Add("GET", "/?q=1%27%20or%201=1--", "curl/8", "", "")
	f.Add("POST", "/api/x", "Mozilla/5.0", "application/json", `{"a":"<script>alert(1)</script>"}`)
	f.Add("GET", "/../../etc/passwd", "Mozilla/5.0", "", "")
	f.Add("POST", "/f", "Mozilla/5.0", "application/x-www-form-urlencoded", "cmd=;cat+/etc/passwd&x=%u0041")
	w := mustWAF(f, v1.AppFirewallSpec{})
	slow := w.WithoutFastPath()
	f.Fuzz(func(t *testing.T, method, uri, ua, ctype, body string) {
		if method == "" || strings.ContainsAny(method, " \r\n") || !strings.HasPrefix(uri, "/") || strings.ContainsAny(uri, " \r\n") {
			return
		}
		h := [][2]string{{"Host", "shop.example.com"}, {"User-Agent", ua}, {"Accept", "*/*"}}
		if ctype != "" {
			h = append(h, [2]string{"Content-Type", ctype})
		}
		if body != "" {
			h = append(h, [2]string{"Content-Length", strconv.Itoa(len(body))})
		}
		r := fpRequest{name: "fuzz", method: method, uri: uri, body: body, headers: h}
		want, got := outcome(slow, r), outcome(w, r)
		if got.fast && (want.verdict != "" || len(want.hits) > 0) {
			t.Fatalf("fast path said no match; Coraza: verdict %q, rules %v", want.verdict, want.hits)
		}
		if got.verdict != want.verdict || !slices.Equal(got.hits, want.hits) {
			t.Fatalf("with the fast path %q %v, without %q %v", got.verdict, got.hits, want.verdict, want.hits)
		}
	})
}
