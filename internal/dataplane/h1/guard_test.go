package h1

import (
	"errors"
	"strings"
	"testing"
)

func TestHeadGuard(t *testing.T) {
	cases := []struct {
		name string
		in   string
		bad  int // 1-based head number with a bare LF, 0 none
	}{
		{"crlf", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", 0},
		{"lf request line", "GET / HTTP/1.1\nHost: a\r\n\r\n", 1},
		{"lf only", "GET / HTTP/1.1\nHost: a\n\n", 1},
		{"lf header line", "GET / HTTP/1.1\r\nHost: a\n\r\n", 1},
		{"lf blank line", "GET / HTTP/1.1\r\nHost: a\r\n\n", 1},
		{"leading empty line", "\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 0},
		{"body with lf", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\na\n\nb", 0},
		{"second head", "GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\nHost: a\n\n", 2},
		{"after a body", "POST / HTTP/1.1\r\nHost: a\r\ncontent-length : 3\r\n\r\nx\nyGET /2 HTTP/1.1\r\nHost: a\n\n", 2},
		{"after a body, clean", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nx\nyGET /2 HTTP/1.1\r\nHost: a\r\n\r\n", 0},
		{"after a chunked body", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\na\nb\r\n0\r\n\r\nGET / HTTP/1.1\nx\n\n", 2},
		{"after a chunked body with extensions and trailers", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n" +
			"A;name=" + strings.Repeat("v", 60) + "\r\n0123\n\n6789\r\n0\r\nX-T: 1\r\n\r\nGET / HTTP/1.1\r\nHost: a\n\r\n", 2},
		{"after a chunked body, clean", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\na\nb\r\n0\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 0},
		{"bare LF in a chunk size line: a broken body", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\na\nb\r\n0\r\n\r\nGET / HTTP/1.1\nx\n\n", 0},
		{"other coding: stops looking", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\nGET / HTTP/1.1\nx\n\n", 0},
		{"huge chunk: a broken body", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1000000000000000\r\nGET / HTTP/1.1\nx\n\n", 0},
		{"upgrade: stops looking", "GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n\x81\x02\n\n", 0},
		{"odd length: stops looking", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1x\r\n\r\nGET / HTTP/1.1\nx\n\n", 0},
		{"long header line", "GET / HTTP/1.1\r\nX-" + strings.Repeat("a", 100) + ": b\r\nHost: a\n\r\n", 1},
	}
	for _, c := range cases {
		// Whole, and split at every byte: the answer must not depend on
		// how the bytes arrive.
		for split := 0; split <= len(c.in); split++ {
			var g HeadGuard
			err1 := g.Scan([]byte(c.in[:split]))
			err2 := g.Scan([]byte(c.in[split:]))
			got := 0
			if err1 != nil || err2 != nil {
				chunkErr := errors.Is(err1, ErrBadChunked) || errors.Is(err2, ErrBadChunked)
				if !errors.Is(err1, ErrBareLF) && !errors.Is(err2, ErrBareLF) && chunkErr != strings.Contains(c.name, "broken body") {
					t.Fatalf("%s: unexpected errors %v %v", c.name, err1, err2)
				}
				got = g.Bad
			} else if strings.Contains(c.name, "broken body") {
				t.Fatalf("%s split at %d: the broken chunked body passed", c.name, split)
			}
			if got != c.bad {
				t.Fatalf("%s split at %d: bad head %d, want %d", c.name, split, got, c.bad)
			}
		}
	}
}

func BenchmarkHeadGuard(b *testing.B) {
	in := []byte("GET /plaintext HTTP/1.1\r\nHost: shop.example.com\r\nUser-Agent: wrk\r\nAccept: */*\r\nConnection: keep-alive\r\n\r\n")
	var g HeadGuard
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		if g.Scan(in) != nil {
			b.Fatal("bare LF")
		}
	}
}

// FuzzHeadGuard checks that the guard's verdict does not depend on how
// the bytes are split into reads, and that a head it passes has no bare LF
// before its CRLFCRLF.
func FuzzHeadGuard(f *testing.F) {
	f.Add([]byte("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), 3)
	f.Add([]byte("GET / HTTP/1.1\nHost: a\n\n"), 7)
	f.Add([]byte("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nx\nyGET /2 HTTP/1.1\r\nHost: a\n\n"), 50)
	// Chunked bodies from the conformance table (dataplane TestH1Conformance).
	for _, body := range []string{"5\r\nhelloX0\r\n\r\n", "5 \r\nhello\r\n0\r\n\r\n", "5;a=\"b\r\nhello\r\n0\r\n\r\n",
		"5\r\nhello\r\n0\r\nContent-Length: 50\r\n\r\n", "5\r\nhello\r\n0\r\n\n", "5\r\nhello\r\n0\r\nX-Sum: 1\r\n\r\nGET / HTTP/1.1\nHost: a\n\n"} {
		f.Add([]byte("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"+body), 60)
	}
	f.Fuzz(func(t *testing.T, in []byte, split int) {
		var whole HeadGuard
		errW := whole.Scan(in)
		if split < 0 {
			split = -split
		}
		if len(in) > 0 {
			split %= len(in) + 1
		} else {
			split = 0
		}
		var parts HeadGuard
		errA := parts.Scan(in[:split])
		errB := parts.Scan(in[split:])
		if (errW != nil) != (errA != nil || errB != nil) || whole.Bad != parts.Bad {
			t.Fatalf("split %d changed the verdict: %v/%d vs %v,%v/%d", split, errW, whole.Bad, errA, errB, parts.Bad)
		}
		if errW == nil {
			s := string(in)
			head := s
			if i := strings.Index(s, "\r\n\r\n"); i >= 0 {
				head = s[:i]
			}
			if strings.Contains(strings.ReplaceAll(strings.TrimLeft(head, "\r\n"), "\r\n", ""), "\n") {
				t.Fatalf("bare LF in the first head passed: %q", in)
			}
		}
	})
}

func TestHeadGuardPosition(t *testing.T) {
	tests := []struct {
		reads              []string
		inLine, atBoundary bool
	}{
		{nil, true, true},
		{[]string{"GET /aaaa"}, true, false},
		{[]string{"GET /a", "aaa"}, true, false},
		{[]string{"\r\n", "GET /a"}, true, false}, // an empty line before the request line
		{[]string{"GET / HTTP/1.1\r\n"}, false, false},
		{[]string{"GET / HTTP/1.1\r", "\nHost: a"}, false, false},
		{[]string{"GET / HTTP/1.1\r\nHost: a\r\n\r\n"}, true, true}, // the next head is due
		{[]string{"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /b"}, true, false},
		{[]string{"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nab"}, false, false},
		{[]string{"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"}, true, true},
		{[]string{"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n"}, false, false},
		{[]string{"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"}, true, true},
	}
	for _, tt := range tests {
		var g HeadGuard
		for _, r := range tt.reads {
			if err := g.Scan([]byte(r)); err != nil {
				t.Fatalf("%q: %v", tt.reads, err)
			}
		}
		if got := g.InRequestLine(); got != tt.inLine {
			t.Errorf("%q: InRequestLine() = %v, want %v", tt.reads, got, tt.inLine)
		}
		if got := g.AtBoundary(); got != tt.atBoundary {
			t.Errorf("%q: AtBoundary() = %v, want %v", tt.reads, got, tt.atBoundary)
		}
	}
}
