package proxyproto

import (
	"bufio"
	"bytes"
	"io"
	"net/netip"
	"strings"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	cases := []struct{ src, dst string }{
		{"192.0.2.1:51000", "198.51.100.2:443"},
		{"[2001:db8::1]:40000", "[2001:db8::2]:80"},
		{"192.0.2.1:1", "[2001:db8::2]:80"},
	}
	for _, v := range []int{1, 2} {
		for _, c := range cases {
			src, dst := netip.MustParseAddrPort(c.src), netip.MustParseAddrPort(c.dst)
			b := Append(nil, v, src, dst)
			r := bufio.NewReader(io.MultiReader(bytes.NewReader(b), strings.NewReader("GET / HTTP/1.1\r\n")))
			h, err := Read(r)
			if err != nil {
				t.Fatalf("v%d %s: %v (%q)", v, c.src, err, b)
			}
			if h.Version != v || h.Source.Port() != src.Port() || h.Source.Addr().Unmap() != netip.AddrFrom16(src.Addr().As16()).Unmap() && h.Source.Addr() != src.Addr() {
				t.Errorf("v%d: got %+v want src %s", v, h, src)
			}
			rest, _ := io.ReadAll(r)
			if string(rest) != "GET / HTTP/1.1\r\n" {
				t.Errorf("v%d: payload after header = %q", v, rest)
			}
		}
	}
}

func TestParseV1Errors(t *testing.T) {
	bad := []string{
		"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",
		"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",
		"PROXY TCP4 ::1 5.6.7.8 1 2\r\n",
		"PROXY TCP4 1.2.3.4 5.6.7.8 99999 2\r\n",
		"PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n",
		"PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n",
		"PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n",
	}
	for _, s := range bad {
		if _, err := ParseV1([]byte(s)); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
	h, err := ParseV1([]byte("PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n"))
	if err != nil || !h.Local {
		t.Fatalf("UNKNOWN: %+v %v", h, err)
	}
	if _, err := Read(bufio.NewReader(strings.NewReader("GET / HTTP/1.1\r\n"))); err != ErrNoHeader {
		t.Fatalf("plain request: %v", err)
	}
	if _, err := Read(bufio.NewReader(strings.NewReader("PROXY TCP4 " + strings.Repeat("1", 200)))); err == nil {
		t.Fatal("overlong v1 accepted")
	}
}

func TestV2Local(t *testing.T) {
	b := Append(nil, 2, netip.AddrPort{}, netip.AddrPort{})
	h, err := ParseV2(b)
	if err != nil || !h.Local {
		t.Fatalf("%+v %v", h, err)
	}
}

func FuzzRead(f *testing.F) {
	f.Add(Append(nil, 1, netip.MustParseAddrPort("1.2.3.4:5"), netip.MustParseAddrPort("6.7.8.9:10")))
	f.Add(Append(nil, 2, netip.MustParseAddrPort("1.2.3.4:5"), netip.MustParseAddrPort("6.7.8.9:10")))
	f.Add(Append(nil, 2, netip.MustParseAddrPort("[::1]:5"), netip.MustParseAddrPort("[::2]:10")))
	f.Add([]byte("PROXY UNKNOWN\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := Read(bufio.NewReader(bytes.NewReader(b)))
		if err != nil || h.Local {
			return
		}
		// Whatever parses must survive a round trip.
		out := Append(nil, h.Version, h.Source, h.Dest)
		h2, err := Read(bufio.NewReader(bytes.NewReader(out)))
		if err != nil || h2.Source != h.Source || h2.Dest != h.Dest {
			t.Fatalf("round trip of %+v: %+v %v", h, h2, err)
		}
	})
}
