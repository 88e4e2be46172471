package waf

import (
	"fmt"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/corazawaf/coraza/v3/collection"
	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
	"github.com/corazawaf/coraza/v3/types"
	"github.com/corazawaf/coraza/v3/types/variables"

	v1 "github.com/meridian-platform/meridian/api/v1"
)

// The native state (runstate.go, runlean.go) against Coraza's: the same
// request goes through a lean Coraza transaction and through the native
// state, and after every phase each variable the checks can read must
// hold the same values (every lookup the checks make: all values, by key,
// by key regex, Get). A request the native state declines is fine (the
// transaction goes to the lean instance); one it takes must agree.

// runNoResp is the CRS suite's paranoia level and body settings without
// response body inspection (which keeps a configuration off the native
// path), in blocking mode.
func runNoResp() v1.AppFirewallSpec {
	s := crsSuiteSpec()
	s.ResponseInspection = v1.WAFResponseInspection{}
	s.Mode = v1.AppFirewallBlock
	return s
}

// edgeRequests are requests at the corners of Coraza's parsing: argument
// decoding, empty and repeated names, fragments, backslashes, cookies,
// repeated and empty header fields, IPv6.
func edgeRequests() []fpRequest {
	uris := []string{
		"/a/b/c.php?x=1&y=%27&&z&=v&k=%zz&p=a+b&e=%4", "/path%20with%20space/file.txt?q=%E2%82%AC",
		`/a\b\c.txt`, "/?a=1#frag", "/#frag?x=1", "//double//slash?x", "/?", "/x?a=1&a=2&A=3&a=",
		"/%2e%2e/%2e%2e/etc/passwd", "http://example.com/abs/p?x=1", "*", "/%", "/a%2fb/", "/;jsessionid=1?x=%2B+%2b",
		"/ü/ä?ö=ü&%C3%A4=1", "/dir/", "/file.", "/?%00=%00", "/?a%3Db=c%26d", "/x?q=1;2;3&r=<script>",
		"/api/users?id=42&name=alice", "/index.html?utm_source=news&utm_medium=email&UTM_campaign=Spring+Sale",
	}
	hdrSets := [][][2]string{
		{{"Host", "shop.example.com"}, {"User-Agent", "Mozilla/5.0"}, {"Accept", "*/*"}},
		{{"Host", "[2001:db8::1]:8443"}, {"X-A", "1"}, {"x-a", "2"}, {"X-Empty", ""}, {"", "nameless"}},
		{{"Host", "shop.example.com:8080"}, {"Cookie", "a=1; b=2; a=3; =x; y;  ; z= 4 "}, {"COOKIE", "Session=ABC"}},
		{{"Host", ""}, {"Referer", "https://x.example/?q=1"}, {"Accept-Language", "en-US,en;q=0.9"}},
		{{"host", "localhost"}, {"User-Agent", "Apache (internal dummy connection)"}},
		{{"Host", "h"}, {"Cookie", "\x01a=\x7f1\x02; b"}, {"Range", "bytes=0-1"}, {"Connection", "keep-alive"}},
	}
	methods := []string{"GET", "HEAD", "OPTIONS", "DELETE", "get"}
	var out []fpRequest
	for i, u := range uris {
		for j, h := range hdrSets {
			out = append(out, fpRequest{name: fmt.Sprintf("edge-%d-%d", i, j), method: methods[(i+j)%len(methods)], uri: u,
				proto: []string{"HTTP/1.1", "HTTP/1.0", "HTTP/2.0"}[(i+j)%3], headers: h})
		}
	}
	return out
}

// runStateCase is how one comparison goes: the phases it compared, or
// the reason the native side declined.
type runStateCase struct {
	phases   int
	declined string
}

// compareRunState sends r through a lean Coraza transaction and the
// native state of w phase by phase and reports the first difference.
func compareRunState(w *WAF, r fpRequest, client netip.AddrPort) (runStateCase, error) {
	server := netip.MustParseAddrPort("127.0.0.1:8080")
	lean := &Tx{w: w, id: "diff", tx: newCorazaTx(w.lean, "diff")}
	w.fp.initTX(lean.tx)
	defer lean.tx.Close()
	ls := lean.tx.(plugintypes.TransactionState)
	s := w.native.get("diff")
	defer w.native.put(s)
	e := w.fp.newEval(s)
	defer w.fp.freeEval(e)

	if client.IsValid() {
		lean.doConnection(client, server)
		s.connection(client, server)
	}
	host := ""
	var hdrs []string
	for _, h := range r.headers {
		if h[0] == "Host" {
			host = h[1]
		}
		hdrs = append(hdrs, h[0], h[1])
	}
	proto := r.proto
	if proto == "" {
		proto = "HTTP/1.1"
	}
	lean.doRequestHeaders(r.method, r.uri, proto, host, func(add func(n, v string)) {
		for i := 0; i < len(hdrs); i += 2 {
			add(hdrs[i], hdrs[i+1])
		}
	})
	if !s.request(r.method, r.uri, proto, host, hdrs) {
		return runStateCase{declined: "request"}, nil
	}
	resp := []string{"Content-Type", "text/html; charset=utf-8", "Content-Length", "12", "X-Resp", "a", "x-resp", "b"}
	steps := []func(){
		func() {},
		func() { lean.doRequestBody(nil, true) },
		func() {
			lean.doResponseHeaders(200, "HTTP/1.1", func(add func(n, v string)) {
				for i := 0; i < len(resp); i += 2 {
					add(resp[i], resp[i+1])
				}
			})
			s.response(200, "HTTP/1.1", resp)
		},
		func() { lean.doResponseBody(nil, true) },
		func() { lean.tx.ProcessLogging() },
	}
	for i, step := range steps {
		ph := i + 1
		if ph == 4 && w.native.wantsResponseBody(s) {
			// An inspected response body goes to the lean instance.
			return runStateCase{phases: i, declined: "response body"}, nil
		}
		step()
		if !w.native.run(s, e, ph) {
			return runStateCase{phases: i, declined: fmt.Sprintf("phase %d rule %d", ph, s.declined)}, nil
		}
		if ls.LastPhase() != s.LastPhase() {
			return runStateCase{}, fmt.Errorf("phase %d: last phase %d, Coraza %d", ph, s.LastPhase(), ls.LastPhase())
		}
		if err := sameVariables(s, ls); err != nil {
			return runStateCase{}, fmt.Errorf("after phase %d: %w", ph, err)
		}
	}
	return runStateCase{phases: len(steps)}, nil
}

// sameVariables compares every variable the fast path can read.
func sameVariables(got, want plugintypes.TransactionState) error {
	names := make([]string, 0, len(supportedVars))
	for n := range supportedVars {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		rv, err := variables.Parse(n)
		if err != nil {
			continue
		}
		if err := sameCollection(n, got.Collection(rv), want.Collection(rv)); err != nil {
			return err
		}
	}
	return sameCollection("TX via Variables", got.Variables().TX(), want.Variables().TX())
}

func mdStrings(ms []types.MatchData) []string {
	out := make([]string, 0, len(ms))
	for _, m := range ms {
		out = append(out, m.Variable().Name()+"|"+m.Key()+"|"+m.Value())
	}
	sort.Strings(out)
	return out
}

var probeRegexes = []*regexp.Regexp{regexp.MustCompile("(?i)^a"), regexp.MustCompile("."), regexp.MustCompile("(?i)^x-"),
	regexp.MustCompile("^$"), regexp.MustCompile("(?i)score"), regexp.MustCompile("^[0-9]$"), regexp.MustCompile("(?i)^utm_")}

func sameCollection(name string, got, want collection.Collection) error {
	if (got == nil) != (want == nil) {
		return fmt.Errorf("%s: collection %v, Coraza %v", name, got != nil, want != nil)
	}
	if got == nil {
		return nil
	}
	g, w := mdStrings(got.FindAll()), mdStrings(want.FindAll())
	if !slices.Equal(g, w) {
		return fmt.Errorf("%s: FindAll %q, Coraza %q", name, g, w)
	}
	_, gs := got.(collection.Single)
	_, ws := want.(collection.Single)
	gk, gok := got.(collection.Keyed)
	wk, wok := want.(collection.Keyed)
	if gs != ws || gok != wok {
		return fmt.Errorf("%s: kind single %v keyed %v, Coraza single %v keyed %v", name, gs, gok, ws, wok)
	}
	if gs {
		if a, b := got.(collection.Single).Get(), want.(collection.Single).Get(); a != b {
			return fmt.Errorf("%s: Get %q, Coraza %q", name, a, b)
		}
	}
	if !gok {
		return nil
	}
	keys := []string{"", "nonexistent", "A", "a", "X-A", "x-a", "COOKIE", "0", "Anomaly_Score"}
	for _, m := range want.FindAll() {
		keys = append(keys, m.Key(), strings.ToLower(m.Key()), strings.ToUpper(m.Key()))
	}
	for _, k := range keys {
		if a, b := mdStrings(gk.FindString(k)), mdStrings(wk.FindString(k)); !slices.Equal(a, b) {
			return fmt.Errorf("%s: FindString(%q) %q, Coraza %q", name, k, a, b)
		}
		a, b := slices.Clone(gk.Get(k)), slices.Clone(wk.Get(k))
		sort.Strings(a)
		sort.Strings(b)
		if !slices.Equal(a, b) {
			return fmt.Errorf("%s: Get(%q) %q, Coraza %q", name, k, a, b)
		}
	}
	for _, rx := range probeRegexes {
		if a, b := mdStrings(gk.FindRegex(rx)), mdStrings(wk.FindRegex(rx)); !slices.Equal(a, b) {
			return fmt.Errorf("%s: FindRegex(%s) %q, Coraza %q", name, rx, a, b)
		}
	}
	return nil
}

func nativeWAFs(t testing.TB) map[string]*WAF {
	out := map[string]*WAF{"pl1": mustWAF(t, v1.AppFirewallSpec{})}
	if !raceEnabled { // a second compilation is slow under the race detector
		pl4, err := Compile(runNoResp())
		if err != nil {
			t.Fatal(err)
		}
		out["pl4"] = pl4
		// The CRS suite's settings: the setup's ctl stops the folding, so
		// the initialization's comparisons run natively.
		crs, err := CompileForCRSTests(runNoResp())
		if err != nil {
			t.Fatal(err)
		}
		out["crs-tests-noresp"] = crs
		// The CRS suite's configuration itself (response bodies inspected).
		if crs, err = CompileForCRSTests(crsSuiteSpec()); err != nil {
			t.Fatal(err)
		}
		out["crs-tests"] = crs
		excl, err := Compile(exclusionSpec())
		if err != nil {
			t.Fatal(err)
		}
		out["pl2-exclusions"] = excl
	}
	for name, w := range out {
		if w.native == nil {
			t.Fatalf("%s: no native path: %s (fast path: %s)", name, w.nativeWhy, w.fpWhy)
		}
	}
	return out
}

func TestRunStateMatchesCoraza(t *testing.T) {
	clients := []netip.AddrPort{netip.MustParseAddrPort("198.51.100.7:40000"), netip.MustParseAddrPort("[2001:db8::7]:443"),
		netip.MustParseAddrPort("[::ffff:10.0.0.1]:1"), {}}
	reqs := append(edgeRequests(), benignRequests()...)
	crs := crsRequests(t)
	step := diffEvery(3)
	for i := 0; i < len(crs); i += step {
		reqs = append(reqs, crs[i])
	}
	for name, w := range nativeWAFs(t) {
		compared, partly, declined := 0, 0, map[string]int{}
		every := 1
		if raceEnabled {
			every = 5 // every variable compared by every lookup is slow under the race detector
		}
		for i, r := range reqs {
			if i%every != 0 {
				continue
			}
			c, err := compareRunState(w, r, clients[i%len(clients)])
			if err != nil {
				t.Fatalf("%s %s (%s %s): %v", name, r.name, r.method, r.uri, err)
			}
			if c.declined != "" {
				declined[c.declined]++
				if c.phases >= 3 {
					partly++ // through the response headers
				}
				continue
			}
			compared++
		}
		t.Logf("%s: %d requests compared through every phase, %d through the response headers, declined: %v", name, compared, partly, declined)
		if compared+partly < len(reqs)/every/3 {
			t.Errorf("%s: only %d of %d requests taken natively", name, compared, len(reqs))
		}
	}
}

// TestNativeBenign: the benchmark's GET (and a cookie-carrying browser
// GET) is decided without any Coraza transaction; a body sends it to the
// lean instance.
func TestNativeBenign(t *testing.T) {
	w := mustWAF(t, v1.AppFirewallSpec{})
	get := benignGET()
	cookie := benignGET()
	cookie.headers = append(slices.Clone(cookie.headers), [2]string{"Cookie", "session=abc; theme=dark"})
	for name, r := range map[string]fpRequest{"GET": get, "GET with cookie": cookie} {
		tx, v, hits := runTx(w, r)
		if v != nil || len(hits) > 0 || !tx.Fast() {
			t.Fatalf("%s: verdict %+v hits %v fast %v", name, v, IDs(hits), tx.Fast())
		}
		if tx.leanAt >= 0 {
			t.Errorf("%s: went to the lean instance at phase %d", name, tx.leanAt)
		}
	}
	tx, _, _ := runTx(w, benignPOST())
	if tx.leanAt != types.PhaseRequestHeaders {
		t.Errorf("POST with a Content-Type: lean at phase %d, want 1", tx.leanAt)
	}
}

// FuzzRunState: for any request line and header fields, the native state
// either declines or holds Coraza's variables after every phase.
func FuzzRunState(f *testing.F) {
	for _, r := range edgeRequests()[:40] {
		f.Add(r.method, r.uri, r.headers[0][1], "Cookie", "a=1; b=%41", "X-Y", "z")
	}
	f.Add("GET", "/?a=%&b=%2&c=%zz&+=+", "h", "cookie", ";;=;", "", "")
	w := mustWAF(f, v1.AppFirewallSpec{})
	f.Fuzz(func(t *testing.T, method, uri, host, n1, v1, n2, v2 string) {
		r := fpRequest{method: method, uri: uri, headers: [][2]string{{"Host", host}, {n1, v1}, {n2, v2}}}
		if _, err := compareRunState(w, r, netip.MustParseAddrPort("198.51.100.7:"+strconv.Itoa(len(uri)%65536))); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzSimpleURI: a request target simpleURI takes is one net/url parses
// into the same path and query and prints back unchanged.
func FuzzSimpleURI(f *testing.F) {
	for _, r := range edgeRequests() {
		f.Add(r.uri)
	}
	f.Add("/a:b/c@d;e=f,g+h$i&j?x= y&z=ü")
	f.Fuzz(func(t *testing.T, uri string) {
		path, query, ok := simpleURI(uri)
		if !ok {
			return
		}
		u, err := url.ParseRequestURI(uri)
		if err != nil {
			t.Fatalf("%q taken, net/url: %v", uri, err)
		}
		if u.Path != path || u.RawQuery != query || u.String() != uri {
			t.Fatalf("%q: path %q query %q, net/url %q %q printed %q", uri, path, query, u.Path, u.RawQuery, u.String())
		}
	})
}
