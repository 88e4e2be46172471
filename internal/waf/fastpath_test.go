package waf

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	v1 "github.com/meridian-platform/meridian/api/v1"
)

// fpRequest is one request for the fast path tests.
type fpRequest struct {
	name, method, uri, proto, body string
	headers                        [][2]string
}

// runTx sends r through a transaction of w with a plain 200 response and
// returns it (closed), its verdict and hits.
func runTx(w *WAF, r fpRequest) (*Tx, *Verdict, []Hit) {
	client := netip.MustParseAddrPort("198.51.100.7:40000")
	server := netip.MustParseAddrPort("127.0.0.1:8080")
	tx := w.NewTx("fp-test")
	tx.Connection(client, server)
	host := ""
	for _, h := range r.headers {
		if h[0] == "Host" {
			host = h[1]
		}
	}
	proto := r.proto
	if proto == "" {
		proto = "HTTP/1.1"
	}
	v := tx.RequestHeaders(r.method, r.uri, proto, host, func(add func(n, v string)) {
		for _, h := range r.headers {
			add(h[0], h[1])
		}
	})
	if v == nil {
		v = tx.RequestBody([]byte(r.body), true)
	}
	if v == nil {
		v = tx.ResponseHeaders(200, "HTTP/1.1", func(add func(n, v string)) {
			add("Content-Type", "text/html; charset=utf-8")
			add("Content-Length", "12")
		})
	}
	if v == nil {
		v = tx.ResponseBody([]byte("hello world\n"), true)
	}
	hits := tx.Close()
	return tx, v, hits
}

func benignGET() fpRequest {
	return fpRequest{method: "GET", uri: "/api/users?id=42&name=alice", headers: benignHeaders}
}

func benignPOST() fpRequest {
	h := append([][2]string{}, benignHeaders...)
	body := jsonBody40()
	h = append(h, [2]string{"Content-Type", "application/json"}, [2]string{"Content-Length", fmt.Sprint(len(body))})
	return fpRequest{method: "POST", uri: "/api/users", body: body, headers: h}
}

func TestFastPathBenign(t *testing.T) {
	w := mustWAF(t, v1.AppFirewallSpec{})
	on, why := w.FastPath()
	if !on {
		t.Fatalf("no fast path: %s", why)
	}
	t.Logf("stats %+v", w.fpStats)
	for name, r := range map[string]fpRequest{"GET": benignGET(), "POST": benignPOST()} {
		tx, v, hits := runTx(w, r)
		if v != nil || len(hits) > 0 {
			t.Fatalf("%s: verdict %+v hits %v", name, v, IDs(hits))
		}
		if !tx.Fast() {
			t.Errorf("%s: fell back at rule %d", name, tx.FellBackAt())
		}
	}
}

func TestTfBase64Decode(t *testing.T) {
	for in, want := range map[string]string{"": "", "aGVsbG8=": "hello", "aGVsbG8": "hello", "aGVsbA": "hell", "aGVs\nbG8": "hello", "aGV sbG8": "he", "a": "", "YWJj!ZGVm": "abc"} {
		if got, ok := tfBase64Decode(in); !ok || got != want {
			t.Errorf("base64Decode(%q) = %q, want %q", in, got, want)
		}
	}
}

// raceEnabled is set under the race detector (slower: tests sample less).
var raceEnabled = false

func TestTfUTF8ToUnicode(t *testing.T) {
	for in, want := range map[string]string{"abc": "abc", "café": "caf%u00e9", "€1": "%u20ac1", "\xff": "%ufffd", "😀": "%u1f600"} {
		if got, ok := tfUTF8ToUnicode(in); !ok || got != want {
			t.Errorf("utf8toUnicode(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestFastPathRefusesAddedTargets(t *testing.T) {
	root, err := rootFS(false)
	if err != nil {
		t.Fatal(err)
	}
	rule := "SecRule ARGS \"@rx attack\" \"id:1,phase:2,deny,msg:'x'\"\n"
	if p, why := compileFastPath(rule+"SecRuleUpdateTargetById 1 \"!ARGS:q\"\n", root); p == nil {
		t.Errorf("a removed target: no fast path (%s)", why)
	}
	if p, why := compileFastPath(rule+"SecRuleUpdateTargetById 1 \"REQUEST_HEADERS\"\n", root); p != nil || !strings.Contains(why, "adds a target") {
		t.Errorf("an added target: fast path %v (%q)", p != nil, why)
	}
}
