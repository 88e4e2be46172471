package evloop

import (
	"bytes"
	"testing"

	"github.com/meridian-platform/meridian/internal/dataplane/h1"
)

func TestParseRequest(t *testing.T) {
	tests := []struct {
		name, head string
		status     int // 0: accepted
		cl         int64
		chunked    bool
		close      bool
	}{
		{"get", "GET /a?b HTTP/1.1\r\nHost: x\r\n\r\n", 0, 0, false, false},
		{"leading empty line", "\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n", 0, 0, false, false},
		{"post", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n\r\n", 0, 12, false, false},
		{"chunked", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n", 0, 0, true, false},
		{"close", "GET / HTTP/1.1\r\nHost: x\r\nConnection: foo, Close\r\n\r\n", 0, 0, false, true},
		{"http/1.0", "GET / HTTP/1.0\r\n\r\n", 0, 0, false, true},
		{"no version", "GET /\r\nHost: x\r\n\r\n", 400, 0, false, false},
		{"http/1.2", "GET / HTTP/1.2\r\nHost: x\r\n\r\n", 505, 0, false, false},
		{"lower-case version", "GET / http/1.1\r\nHost: x\r\n\r\n", 400, 0, false, false},
		{"bad method", "G(T / HTTP/1.1\r\nHost: x\r\n\r\n", 400, 0, false, false},
		{"control in target", "GET /\x01 HTTP/1.1\r\nHost: x\r\n\r\n", 400, 0, false, false},
		{"cl te", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", 400, 0, false, false},
		{"te gzip", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501, 0, false, false},
		{"cl list", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1, 1\r\n\r\n", 400, 0, false, false},
		{"nul in value", "GET / HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\n\r\n", 400, 0, false, false},
	}
	for _, tt := range tests {
		rh, p := parseRequest([]byte(tt.head), h1.DefaultLimits)
		switch {
		case tt.status != 0:
			if p == nil || p.Status != tt.status {
				t.Errorf("%s: got %v, want status %d", tt.name, p, tt.status)
			}
		case p != nil:
			t.Errorf("%s: rejected: %v", tt.name, p)
		case rh.contentLength != tt.cl || rh.chunked != tt.chunked || rh.close != tt.close:
			t.Errorf("%s: got cl=%d chunked=%v close=%v", tt.name, rh.contentLength, rh.chunked, rh.close)
		}
	}
}

func TestParseResponse(t *testing.T) {
	tests := []struct {
		head    string
		bad     bool
		status  int
		cl      int64
		chunked bool
		close   bool
	}{
		{"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", false, 200, 5, false, false},
		{"HTTP/1.1 200\r\n\r\n", false, 200, -1, false, false},
		{"HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\n", false, 200, 5, false, true},
		{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", false, 200, -1, true, false},
		{"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", false, 200, -1, false, true},
		{"HTTP/1.1 200 OK\r\nConnection: Close\r\n\r\n", false, 200, -1, false, true},
		{"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", true, 0, 0, false, false},
		{"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", true, 0, 0, false, false},
		{"HTTP/1.1 20 OK\r\n\r\n", true, 0, 0, false, false},
		{"HTTP/2.0 200 OK\r\n\r\n", true, 0, 0, false, false},
		{"HTTP/1.1 200 OK\r\nX: a\x01\r\n\r\n", true, 0, 0, false, false},
		{"HTTP/1.1 200 OK\r\nX: a\nSet-Cookie: b\r\n\r\n", true, 0, 0, false, false},
		{"HTTP/1.1 200 OK\r\nX: a\r\n folded\r\n\r\n", true, 0, 0, false, false},
		{"HTTP/1.1 200 OK\r\nX\rY: a\r\n\r\n", true, 0, 0, false, false},
		{"HTTP/1.1 200 OK\r\nBad Name: a\r\n\r\n", true, 0, 0, false, false},
	}
	for _, tt := range tests {
		rh, p := parseResponse([]byte(tt.head))
		if tt.bad {
			if p == nil {
				t.Errorf("%q: accepted", tt.head)
			}
			continue
		}
		if p != nil || rh.status != tt.status || rh.contentLength != tt.cl || rh.chunked != tt.chunked || rh.close != tt.close {
			t.Errorf("%q: got %+v %v", tt.head, rh, p)
		}
	}
}

func TestChunkFramer(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		done bool
		bad  bool
	}{
		{"5\r\nhello\r\n0\r\n\r\nNEXT", 15, true, false},
		{"5;a=b\r\nhello\r\n0\r\nX: y\r\n\r\n", 25, true, false},
		{"A\r\n0123456789\r\n0\r\n\r\n", 20, true, false},
		{"5\r\nhel", 6, false, false},
		{"\r\n", 0, false, true},
		{"5\r\nhelloX", 8, false, true},
		{"g\r\n", 0, false, true},
		{"1000000000000000\r\n", 15, false, true},
		{"5\n", 1, false, true},
	}
	for _, tt := range tests {
		var f chunkFramer
		n, done, bad := f.feed([]byte(tt.in))
		if n != tt.n || done != tt.done || bad != tt.bad {
			t.Errorf("%q: got %d %v %v, want %d %v %v", tt.in, n, done, bad, tt.n, tt.done, tt.bad)
		}
	}
}

// FuzzParseRequest checks that the request parser never panics, agrees
// with h1's checks on what it accepts and gives one framing.
func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nConnection: close, X-A\r\n\r\n",
		"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
		"\r\nGET / HTTP/1.0\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
		// From the conformance table (dataplane TestH1Conformance).
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 005\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
		"POST / HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
		"GET http://u:p@a/ HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET * HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET / HTTP/1.2\r\nHost: a\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: u@a\r\n\r\n",
		"GET / HTTP/1.1\r\nConnection: X-Drop, keep-alive\r\nX-Drop: 1\r\nHost: a\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		end := findHeadEnd(b, 0)
		if end < 0 {
			return
		}
		head := b[:end]
		rh, p := parseRequest(head, h1.DefaultLimits)
		if p != nil {
			return
		}
		if rh.chunked && rh.contentLength != 0 {
			t.Fatalf("both chunked and Content-Length %d accepted", rh.contentLength)
		}
		if rh.contentLength < 0 {
			t.Fatalf("negative Content-Length %d accepted", rh.contentLength)
		}
		if h1.CheckRequestLine(rh.method, rh.target, h1.DefaultLimits) != nil {
			t.Fatal("request line accepted that h1 rejects")
		}
		out := appendRequestHead(nil, &rh, []byte("192.0.2.1"), nil)
		if !bytes.HasSuffix(out, []byte("\r\n\r\n")) || findHeadEnd(out, 0) != len(out) {
			t.Fatalf("forwarded head is not one head: %q", out)
		}
		if _, p := parseRequest(out, h1.Limits{MaxURI: 1 << 20, MaxHeaderBytes: 1 << 20}); p != nil && p.Status != 400 {
			t.Fatalf("forwarded head rejected: %v: %q", p, out)
		}
	})
}

// FuzzChunkFramer checks that the framer gives the same answer whatever
// way the stream is split.
func FuzzChunkFramer(f *testing.F) {
	f.Add([]byte("5\r\nhello\r\n0\r\nT: v\r\n\r\nrest"), 3)
	f.Add([]byte("3;x\r\nabc\r\n0\r\n\r\n"), 1)
	f.Add([]byte("5; a = \"b;\\\"c\"\r\nhello\r\n0\r\nX-Sum: 1\r\n\r\n"), 4)
	f.Add([]byte("5\r\nhelloX0\r\n\r\n"), 2)
	f.Add([]byte("5\r\nhello\r\n0\r\nTransfer-Encoding: chunked\r\n\r\n"), 5)
	f.Fuzz(func(t *testing.T, b []byte, split int) {
		var whole chunkFramer
		n1, d1, bad1 := whole.feed(b)
		var parts chunkFramer
		if split <= 0 {
			split = 1
		}
		n2, d2, bad2 := 0, false, false
		for i := 0; i < len(b) && !d2 && !bad2; i += split {
			j := min(i+split, len(b))
			n, d, bad := parts.feed(b[i:j])
			n2 += n
			d2, bad2 = d, bad
			if !d && !bad && n != j-i {
				t.Fatalf("framer stopped early without a verdict")
			}
		}
		if n1 != n2 || d1 != d2 || bad1 != bad2 {
			t.Fatalf("whole: %d %v %v; in parts of %d: %d %v %v", n1, d1, bad1, split, n2, d2, bad2)
		}
	})
}
