package waf

import (
	"net/netip"
	"strings"
	"sync"
	"testing"

	v1 "github.com/meridian-platform/meridian/api/v1"
)

// shared compiles each spec once for the whole test binary (compiling CRS
// takes about a second).
var shared = NewCache(8)

func mustWAF(t testing.TB, spec v1.AppFirewallSpec) *WAF {
	t.Helper()
	w, err := shared.Get(spec)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

type request struct {
	method, uri, ctype, body string
	headers                  map[string]string
}

func run(w *WAF, r request) (*Verdict, []Hit) {
	tx := w.NewTx("rid")
	tx.Connection(netip.MustParseAddrPort("198.51.100.7:40000"), netip.MustParseAddrPort("127.0.0.1:8080"))
	hdr := map[string]string{"Host": "shop.example.com", "User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0",
		"Accept": "text/html,application/json;q=0.9,*/*;q=0.8"}
	if r.ctype != "" {
		hdr["Content-Type"] = r.ctype
	}
	for k, v := range r.headers {
		hdr[k] = v
	}
	if r.method == "" {
		r.method = "GET"
	}
	v := tx.RequestHeaders(r.method, r.uri, "HTTP/1.1", "shop.example.com", func(add func(n, v string)) {
		for k, val := range hdr {
			add(k, val)
		}
	})
	if v == nil {
		v = tx.RequestBody([]byte(r.body), true)
	}
	return v, tx.Close()
}

func hasID(hits []Hit, id int) bool {
	for _, h := range hits {
		if h.ID == id {
			return true
		}
	}
	return false
}

func TestBlockAndMonitor(t *testing.T) {
	block := mustWAF(t, v1.AppFirewallSpec{})
	v, hits := run(block, request{uri: "/api/users?id=42&name=alice"})
	if v != nil || len(hits) != 0 {
		t.Fatalf("benign GET: verdict %+v, hits %+v", v, hits)
	}
	v, hits = run(block, request{uri: "/search?q=1%27%20UNION%20SELECT%20password%20FROM%20users--"})
	if v == nil || v.Status != 403 || v.RuleID != 949110 || !hasID(hits, 942100) {
		t.Fatalf("SQLi GET: verdict %+v, hits %v", v, IDs(hits))
	}
	monitor := mustWAF(t, v1.AppFirewallSpec{Mode: v1.AppFirewallMonitor})
	v, hits = run(monitor, request{uri: "/search?q=1%27%20UNION%20SELECT%20password%20FROM%20users--"})
	if v != nil || !hasID(hits, 942100) {
		t.Fatalf("monitor: verdict %+v hits %v", v, IDs(hits))
	}
	for _, h := range hits {
		if h.ID == 942100 && (h.Variable == "" || h.Message == "") {
			t.Errorf("hit without details: %+v", h)
		}
	}
}

func TestBodies(t *testing.T) {
	w := mustWAF(t, v1.AppFirewallSpec{RequestBody: v1.WAFRequestBody{Limit: 4096}})
	tests := []struct {
		name   string
		req    request
		status int
	}{
		{"json attack", request{method: "POST", uri: "/api", ctype: "application/json", body: `{"q":"<script>alert(document.cookie)</script>"}`}, 403},
		{"benign json", request{method: "POST", uri: "/api", ctype: "application/json", body: `{"name":"alice","city":"paris"}`}, 0},
		{"form attack", request{method: "POST", uri: "/login", ctype: "application/x-www-form-urlencoded", body: "user=admin'--&p=x%27%20or%20%271%27%3D%271"}, 403},
		{"broken json", request{method: "POST", uri: "/api", ctype: "application/json", body: `{"a":`}, 400},
		{"deep json", request{method: "POST", uri: "/api", ctype: "application/json", body: strings.Repeat("[", 300) + strings.Repeat("]", 300)}, 400},
		{"broken multipart", request{method: "POST", uri: "/up", ctype: "multipart/form-data; boundary=xyz", body: "--xyz\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nb\r\n--xy"}, 400},
		{"too large", request{method: "POST", uri: "/api", ctype: "text/plain", body: strings.Repeat("a", 5000)}, 413},
		{"xml attack", request{method: "POST", uri: "/soap", ctype: "text/xml", body: `<a><b>' or 1=1 union select * from users --</b></a>`}, 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, hits := run(w, tt.req)
			got := 0
			if v != nil {
				got = v.Status
			}
			if got != tt.status {
				t.Errorf("status %d, want %d (verdict %+v, hits %v)", got, tt.status, v, IDs(hits))
			}
		})
	}
}

func TestExclusionsAndCustomRules(t *testing.T) {
	attack := "/search?q=1%27%20UNION%20SELECT%20password%20FROM%20users--"
	tests := []struct {
		name    string
		ex      []v1.WAFExclusion
		uri     string
		host    string
		blocked bool
	}{
		{"no exclusion", nil, attack, "", true},
		{"tag everywhere", []v1.WAFExclusion{{Tags: []string{"attack-sqli"}}}, attack, "", false},
		{"tag on path", []v1.WAFExclusion{{Tags: []string{"attack-sqli"}, Path: "/search"}}, attack, "", false},
		{"tag on other path", []v1.WAFExclusion{{Tags: []string{"attack-sqli"}, Path: "/other"}}, attack, "", true},
		{"tag for arg", []v1.WAFExclusion{{Tags: []string{"attack-sqli"}, ArgName: "q"}}, attack, "", false},
		{"tag for other arg", []v1.WAFExclusion{{Tags: []string{"attack-sqli"}, ArgName: "z"}}, attack, "", true},
		{"tag on host", []v1.WAFExclusion{{Tags: []string{"attack-sqli"}, Host: "*.example.com"}}, attack, "", false},
		{"tag on other host", []v1.WAFExclusion{{Tags: []string{"attack-sqli"}, Host: "other.example.org"}}, attack, "", true},
		{"tag on path and arg", []v1.WAFExclusion{{Tags: []string{"attack-sqli"}, Path: "/search", ArgName: "q"}}, attack, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := mustWAF(t, v1.AppFirewallSpec{Exclusions: tt.ex})
			v, hits := run(w, request{uri: tt.uri})
			if (v != nil) != tt.blocked {
				t.Errorf("blocked=%v, want %v (hits %v)", v != nil, tt.blocked, IDs(hits))
			}
		})
	}
	w := mustWAF(t, v1.AppFirewallSpec{CustomRules: `SecRule REQUEST_HEADERS:X-Forbidden "@streq yes" "id:10001,phase:1,deny,status:418,log,msg:'forbidden header'"`,
		BlockResponse: v1.WAFBlockResponse{Status: 451, Body: "nope", ContentType: "text/plain"}})
	v, hits := run(w, request{uri: "/", headers: map[string]string{"X-Forbidden": "yes"}})
	if v == nil || v.Status != 451 || v.RuleID != 10001 || !hasID(hits, 10001) {
		t.Fatalf("custom rule: %+v %v", v, IDs(hits))
	}
	if ct, body := w.BlockPage("r1"); ct != "text/plain" || string(body) != "nope" {
		t.Errorf("block page %q %q", ct, body)
	}
	if _, body := mustWAF(t, v1.AppFirewallSpec{}).BlockPage("<r1>"); !strings.Contains(string(body), "&lt;r1&gt;") {
		t.Errorf("default page does not escape the id: %s", body)
	}
}

func TestCompileErrors(t *testing.T) {
	for _, spec := range []v1.AppFirewallSpec{
		{ParanoiaLevel: 7},
		{CustomRules: "SecRule ARGS"},
		{Exclusions: []v1.WAFExclusion{{RuleIDs: []int{942100}, Path: `/x"y`}}},
		{Exclusions: []v1.WAFExclusion{{RuleIDs: []int{942100}, ArgName: "a,b"}}},
	} {
		if _, err := NewCache(1).Get(spec); err == nil {
			t.Errorf("%+v compiled", spec)
		}
	}
}

func TestCacheSharesInstances(t *testing.T) {
	c := NewCache(2)
	var wg sync.WaitGroup
	got := make([]*WAF, 4)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w, err := c.Get(v1.AppFirewallSpec{ParanoiaLevel: 2})
			if err != nil {
				t.Error(err)
			}
			got[i] = w
		}()
	}
	wg.Wait()
	for _, w := range got[1:] {
		if w != got[0] {
			t.Fatal("one spec compiled twice")
		}
	}
	// Defaults do not change the key.
	w, _ := c.Get(v1.AppFirewallSpec{ParanoiaLevel: 2, Mode: "block", AnomalyThreshold: v1.AnomalyThreshold{Inbound: 5, Outbound: 4}})
	if w != got[0] {
		t.Error("an equal effective spec compiled again")
	}
	if c.Len() != 1 {
		t.Errorf("len %d", c.Len())
	}
}

// FinishRequest runs phase 2 (where CRS blocks on the anomaly score) when
// no body was fed, and only then.
func TestFinishRequest(t *testing.T) {
	w := mustWAF(t, v1.AppFirewallSpec{})
	headers := func(add func(n, v string)) {
		add("Host", "shop.example.com")
		add("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0")
		add("Accept", "text/html")
	}
	tx := w.NewTx("")
	if v := tx.RequestHeaders("GET", "/search?q=1%27%20UNION%20SELECT%20password%20FROM%20users--", "HTTP/2.0", "shop.example.com", headers); v != nil {
		t.Fatalf("phase 1 blocked already (rule %d): the test needs the phase-2 evaluation", v.RuleID)
	}
	v := tx.FinishRequest()
	if v == nil || v.Status != 403 {
		t.Fatalf("FinishRequest: %+v, want a 403 verdict", v)
	}
	if again := tx.FinishRequest(); again != v {
		t.Errorf("second FinishRequest: %+v", again)
	}
	tx.Close()

	// After a body was fed, FinishRequest does not run phase 2 again.
	tx = w.NewTx("")
	if v := tx.RequestHeaders("POST", "/api", "HTTP/2.0", "shop.example.com", func(add func(n, v string)) {
		headers(add)
		add("Content-Type", "application/x-www-form-urlencoded")
		add("Content-Length", "3")
	}); v != nil {
		t.Fatal(v)
	}
	if v := tx.RequestBody([]byte("a=1"), false); v != nil {
		t.Fatal(v)
	}
	if v := tx.FinishRequest(); v != nil {
		t.Errorf("FinishRequest after a body chunk: %+v", v)
	}
	if v := tx.RequestBody(nil, true); v != nil {
		t.Errorf("end of a benign body: %+v", v)
	}
	tx.Close()
}
