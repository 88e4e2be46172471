package h1

import (
	"strings"
	"testing"
)

func TestChunked(t *testing.T) {
	cases := []struct {
		name, in string
		n        int // bytes of the body (the offending byte's offset when bad)
		done     bool
		bad      bool
	}{
		{"one chunk", "5\r\nhello\r\n0\r\n\r\nNEXT", 15, true, false},
		{"upper hex, leading zeros", "00A\r\n0123456789\r\n000\r\n\r\n", 24, true, false},
		{"partial", "5\r\nhel", 6, false, false},
		{"ext", "5;a=b;c\r\nhello\r\n0;last\r\n\r\n", 26, true, false},
		{"ext ows", "5; a = b;c\r\nhello\r\n0\r\n\r\n", 24, true, false},
		{"ext ows before ;", "5;a=b ;c\r\n", 5, false, true},
		{"ext quoted", "5;a=\"x; \\\"y\\\"\"\r\nhello\r\n0\r\n\r\n", 28, true, false},
		{"trailers", "5\r\nhello\r\n0\r\nX-Sum: 1\r\nX-B:\r\n\r\n", 31, true, false},
		{"empty size", "\r\n", 0, false, true},
		{"0x", "0x5\r\n", 1, false, true},
		{"sign", "+5\r\n", 0, false, true},
		{"leading space", " 5\r\n", 0, false, true},
		{"trailing space", "5 \r\n", 1, false, true},
		{"space before ;", "5 ;a\r\n", 1, false, true},
		{"16 digits", "1000000000000000\r\n", 15, false, true},
		{"empty ext name", "5;\r\n", 2, false, true},
		{"ext =", "5;=b\r\n", 2, false, true},
		{"ext unterminated quote", "5;a=\"b\r\nhello", 6, false, true},
		{"ext ctl", "5;a=b\x00\r\n", 5, false, true},
		{"ext too long", "5;a=" + strings.Repeat("b", MaxChunkLine) + "\r\n", MaxChunkLine + 2, false, true},
		{"size bare lf", "5\nhello", 1, false, true},
		{"size bare cr", "5\rhello", 2, false, true},
		{"data without crlf", "5\r\nhelloX", 8, false, true},
		{"data bare lf", "5\r\nhello\n", 8, false, true},
		{"last bare lf", "0\n", 1, false, true},
		{"end bare lf", "0\r\n\n", 3, false, true},
		{"trailer bad name", "0\r\nX Y: 1\r\n\r\n", 4, false, true},
		{"trailer no colon", "0\r\nXY\r\n\r\n", 5, false, true},
		{"trailer fold", "0\r\nX: 1\r\n 2\r\n\r\n", 9, false, true},
		{"trailer nul", "0\r\nX: 1\x002\r\n\r\n", 7, false, true},
		{"trailer bare lf", "0\r\nX: 1\n\r\n", 7, false, true},
		{"trailer content-length", "0\r\nContent-Length: 5\r\n\r\n", 17, false, true},
		{"trailer host upper", "0\r\nHOST: b\r\n\r\n", 7, false, true},
		{"trailer x-forwarded", "0\r\nX-Forwarded-For-Something-Long: 1\r\n\r\n", 33, false, true},
		{"trailer content-md5", "0\r\nContent-MD5: x\r\n\r\n", 21, true, false},
		{"next request as trailer", "0\r\nGET / HTTP/1.1\r\n", 6, false, true},
	}
	for _, c := range cases {
		// Whole and split at every byte: the verdict does not depend on
		// how the bytes arrive.
		for split := 0; split <= len(c.in); split++ {
			var ch Chunked
			n1, done, err := ch.Feed([]byte(c.in[:split]))
			n := n1
			if err == nil && !done {
				var n2 int
				n2, done, err = ch.Feed([]byte(c.in[split:]))
				n += n2
			}
			if n != c.n || done != c.done || (err != nil) != c.bad {
				t.Fatalf("%s split at %d: %d %v %v, want %d %v bad=%v", c.name, split, n, done, err, c.n, c.done, c.bad)
			}
		}
	}
}

// FuzzChunked checks that the verdict does not depend on how the stream is
// split, and that an accepted body is one a strict reading frames the
// same way.
func FuzzChunked(f *testing.F) {
	for _, s := range []string{
		"5\r\nhello\r\n0\r\nT: v\r\n\r\nrest",
		"3;x\r\nabc\r\n0\r\n\r\n",
		"5; name = value\r\nhello\r\n0\r\n\r\n",
		"5;a=\"b\\\"c\"\r\nhello\r\n0\r\n\r\n",
		"5 \r\nhello\r\n0\r\n\r\n",
		"5\r\nhelloX0\r\n\r\n",
		"0\r\nContent-Length: 5\r\n\r\n",
		"0\r\n\n",
		"ffffffffffffffff\r\n",
	} {
		f.Add([]byte(s), 3)
	}
	f.Fuzz(func(t *testing.T, b []byte, split int) {
		var whole Chunked
		n1, d1, e1 := whole.Feed(b)
		if split <= 0 {
			split = 1
		}
		var parts Chunked
		n2, d2, bad2 := 0, false, false
		for i := 0; i < len(b) && !d2 && !bad2; i += split {
			j := min(i+split, len(b))
			n, d, err := parts.Feed(b[i:j])
			n2 += n
			d2, bad2 = d, err != nil
			if !d && err == nil && n != j-i {
				t.Fatalf("stopped early without a verdict")
			}
		}
		if n1 != n2 || d1 != d2 || (e1 != nil) != bad2 {
			t.Fatalf("whole: %d %v %v; in parts of %d: %d %v %v", n1, d1, e1, split, n2, d2, bad2)
		}
		if d1 {
			// Every line of an accepted body ends in CRLF, and no CR or
			// LF stands alone in the size and trailer lines.
			body := string(b[:n1])
			if !strings.HasSuffix(body, "\r\n\r\n") && !strings.HasSuffix(body, "0\r\n\r\n") {
				t.Fatalf("accepted body does not end in CRLF CRLF: %q", body)
			}
		}
	})
}
