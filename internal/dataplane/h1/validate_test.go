package h1

import (
	"strings"
	"testing"
)

func TestCheckHeaders(t *testing.T) {
	cases := []struct {
		name, raw string
		status    int
	}{
		{"ok", "Host: a\r\nX-A: b\r\n\r\n", 0},
		{"ok te", "Host: a\r\nTransfer-Encoding: chunked\r\n\r\n", 0},
		{"ok cl", "Host: a\r\nContent-Length: 12\r\n\r\n", 0},
		{"ok obs-text", "Host: a\r\nX: caf\xc3\xa9\r\n\r\n", 0},
		{"cl+te", "Host: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
		{"te+cl", "Host: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", 400},
		{"dup cl", "Host: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n", 400},
		{"cl list", "Host: a\r\nContent-Length: 3, 3\r\n\r\n", 400},
		{"cl sign", "Host: a\r\nContent-Length: +3\r\n\r\n", 400},
		{"te gzip", "Host: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501},
		{"dup te", "Host: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
		{"obs-fold", "Host: a\r\nX-A: b\r\n c\r\n\r\n", 400},
		{"space before colon", "Host: a\r\nX-A : b\r\n\r\n", 400},
		{"bad name", "Host: a\r\nX(A): b\r\n\r\n", 400},
		{"empty name", "Host: a\r\n: b\r\n\r\n", 400},
		{"nul in value", "Host: a\r\nX: a\x00b\r\n\r\n", 400},
		{"bare lf", "Host: a\nX: b\r\n\r\n", 400},
		{"bare cr", "Host: a\rX: b\r\n\r\n", 400},
		{"no host", "X: b\r\n\r\n", 400},
		{"two hosts", "Host: a\r\nHost: b\r\n\r\n", 400},
		{"too big", "Host: a\r\nX: " + strings.Repeat("a", 40000) + "\r\n\r\n", 431},
		// RFC 9112 6.3: chunked not last, or twice, is 400 (not 501).
		{"te gzip alone", "Host: a\r\nTransfer-Encoding: gzip\r\n\r\n", 400},
		{"te chunked not last", "Host: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400},
		{"te chunked twice", "Host: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", 400},
		{"te empty", "Host: a\r\nTransfer-Encoding: \r\n\r\n", 400},
		{"te chunked ows", "Host: a\r\nTransfer-Encoding:\tChunked \r\n\r\n", 0},
		// A malformed line is answered before a framing problem above it.
		{"te then fold", "Host: a\r\nTransfer-Encoding:\r\n chunked\r\n\r\n", 400},
		{"te gzip then bad name", "Host: a\r\nTransfer-Encoding: gzip, chunked\r\nX A: b\r\n\r\n", 400},
		// RFC 9110 7.2: Host = uri-host [ ":" port ].
		{"host port", "Host: a.example:8080\r\n\r\n", 0},
		{"host ipv6", "Host: [2001:db8::1]:443\r\n\r\n", 0},
		{"host userinfo", "Host: u@a\r\n\r\n", 400},
		{"host path", "Host: a/b\r\n\r\n", 400},
		{"host bad port", "Host: a:8x\r\n\r\n", 400},
		{"host empty", "Host: \r\n\r\n", 400},
		{"host port only", "Host: :80\r\n\r\n", 400},
		{"host open bracket", "Host: [::1\r\n\r\n", 400},
	}
	for _, c := range cases {
		p := CheckHeaders([]byte(c.raw), true, DefaultLimits)
		got := 0
		if p != nil {
			got = p.Status
		}
		if got != c.status {
			t.Errorf("%s: got %d (%v), want %d", c.name, got, p, c.status)
		}
	}
}

func TestCheckRequestLine(t *testing.T) {
	if p := CheckRequestLine([]byte("GET"), []byte("/"+strings.Repeat("a", 9000)), DefaultLimits); p == nil || p.Status != 414 {
		t.Fatalf("long uri: %v", p)
	}
	if p := CheckRequestLine([]byte("G(T"), []byte("/"), DefaultLimits); p == nil || p.Status != 400 {
		t.Fatalf("bad method: %v", p)
	}
	if p := CheckRequestLine([]byte("GET"), []byte("/a\x7fb"), DefaultLimits); p == nil {
		t.Fatal("DEL in target accepted")
	}
	if p := CheckRequestLine([]byte("GET"), []byte("/a?b=c"), DefaultLimits); p != nil {
		t.Fatal(p)
	}
	for _, target := range []string{"/#fragment", "/get/index.html:80?I=Like#tag"} {
		if p := CheckRequestLine([]byte("GET"), []byte(target), DefaultLimits); p == nil || p.Status != 400 {
			t.Fatalf("%q: %v", target, p)
		}
	}
}

// TestCheckHeadersHTTP10: an HTTP/1.0 request needs no Host, and its
// Transfer-Encoding is faulty framing (RFC 9112 6.1).
func TestCheckHeadersHTTP10(t *testing.T) {
	if p := CheckHeaders([]byte("X: b\r\n\r\n"), false, DefaultLimits); p != nil {
		t.Fatalf("HTTP/1.0 without Host: %v", p)
	}
	if p := CheckHeaders([]byte("Host:\r\n\r\n"), false, DefaultLimits); p != nil {
		t.Fatalf("HTTP/1.0 with an empty Host: %v", p)
	}
	if p := CheckHeaders([]byte("Host: u@a\r\n\r\n"), false, DefaultLimits); p == nil || p.Status != 400 {
		t.Fatalf("HTTP/1.0 with an invalid Host: %v", p)
	}
	if p := CheckHeaders([]byte("Host: a\r\nTransfer-Encoding: chunked\r\n\r\n"), false, DefaultLimits); p == nil || p.Status != 400 {
		t.Fatalf("HTTP/1.0 with Transfer-Encoding: %v", p)
	}
}

// TestCheckTargetForm: the request-target forms of RFC 9112 3.2.
func TestCheckTargetForm(t *testing.T) {
	cases := []struct {
		method, target string
		ok             bool
	}{
		{"GET", "/a?b", true},
		{"OPTIONS", "*", true},
		{"GET", "*", false},
		{"OPTIONS", "*x", false},
		{"GET", "http://a.example/x", true},
		{"GET", "HTTPS://a.example:8443", true},
		{"GET", "http://a.example?q", true},
		{"GET", "http://[::1]:80/", true},
		{"GET", "http:///x", false},        // no host
		{"GET", "http://u:p@a/", false},    // userinfo: RFC 9110 4.2.4
		{"GET", "ftp://a/", false},         // not http(s)
		{"GET", "a.example:80", false},     // authority-form, not CONNECT
		{"CONNECT", "a.example:443", true}, // judged by the engines
		{"GET", "x/y", false},
		{"GET", "/caf\xc3\xa9", true}, // not ASCII, let through as nginx does
	}
	for _, c := range cases {
		p := CheckRequestLine([]byte(c.method), []byte(c.target), DefaultLimits)
		if (p == nil) != c.ok {
			t.Errorf("%s %q: %v, want ok %v", c.method, c.target, p, c.ok)
		}
	}
}

func TestCheckVersion(t *testing.T) {
	cases := []struct {
		proto  string
		status int // 0: accepted
	}{
		{"HTTP/1.1", 0}, {"HTTP/1.0", 0},
		{"HTTP/1.2", 505}, {"HTTP/2.0", 505}, {"HTTP/4.0", 505},
		{"HTTP/0.9", 400}, {"HTTP/0.8", 400}, {"HTTP/1", 400}, {"http/1.1", 400}, {"HTTP/1.x", 400}, {"", 400},
	}
	for _, c := range cases {
		p := CheckVersion([]byte(c.proto))
		got := 0
		if p != nil {
			got = p.Status
		}
		if got != c.status {
			t.Errorf("%q: status %d, want %d", c.proto, got, c.status)
		}
	}
}

func BenchmarkCheckHeaders(b *testing.B) {
	raw := []byte("Host: shop.example.com\r\nUser-Agent: wrk\r\nAccept: */*\r\nContent-Length: 0\r\nX-Request-Id: 123\r\n\r\n")
	b.ReportAllocs()
	for b.Loop() {
		if CheckHeaders(raw, true, DefaultLimits) != nil {
			b.Fatal("rejected")
		}
	}
}

func FuzzCheckHeaders(f *testing.F) {
	f.Add([]byte("Host: a\r\nContent-Length: 3\r\n\r\n"))
	f.Add([]byte("Host: a\r\nTransfer-Encoding: chunked\r\n\r\n"))
	f.Add([]byte("Host: a\r\nX: b\r\n c\r\n\r\n"))
	// From the conformance table (dataplane TestH1Conformance).
	for _, s := range []string{
		"Host: a\r\nContent-Length: 5, 5\r\n\r\n", "Host: a\r\nContent-Length: 005\r\n\r\n",
		"Host: a\r\nContent-Length: \t5 \r\n\r\n", "Host: a\r\nContent-Length : 5\r\n\r\n",
		"Host: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n", "Host: a\r\nTransfer-Encoding: xchunked\r\n\r\n",
		"Host: a\r\nTransfer-Encoding: \x0bchunked\r\nContent-Length: 5\r\n\r\n",
		"Host: a\r\nContent-Length: 5\r\nTransfer-Encoding:\r\n chunked\r\n\r\n",
		"Host: u@a\r\n\r\n", "Host: [::1]:80\r\n\r\n", "Host: a:b\r\n\r\n", "Host:\r\n\r\n",
		"Host: a\r\nX\x00A: 1\r\n\r\n", "Host: a\r\nX-A: caf\xc3\xa9\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		p := CheckHeaders(raw, true, DefaultLimits)
		if p != nil {
			return
		}
		// Accepted heads have at most one framing header and no bare CR/LF.
		s := strings.ToLower(string(raw))
		if strings.Count(s, "\ncontent-length:")+boolInt(strings.HasPrefix(s, "content-length:")) > 1 {
			t.Fatalf("duplicate content-length accepted: %q", raw)
		}
		hasCL := strings.Contains(s, "content-length:")
		hasTE := strings.Contains(s, "transfer-encoding:")
		if hasCL && hasTE && strings.Count(s, "\r\n") > 1 && !strings.Contains(s, "\r\n\r\n") {
			t.Fatalf("CL and TE accepted: %q", raw)
		}
	})
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestAppendEscapedPath: a prefix rewrite's path (decoded bytes) goes out
// escaped where a path may not hold a byte as it is.
func TestAppendEscapedPath(t *testing.T) {
	for in, want := range map[string]string{
		"/a/b":             "/a/b",
		"/a b":             "/a%20b",
		"/caf\xc3\xa9":     "/caf%C3%A9",
		"/x?y#z%":          "/x%3Fy%23z%25",
		"/~u/-._!$&'()*+,": "/~u/-._!$&'()*+,",
		"/;=:@":            "/;=:@",
	} {
		if got := string(AppendEscapedPath(nil, []byte(in))); got != want {
			t.Errorf("%q: %q, want %q", in, got, want)
		}
	}
}
