package proxyproto

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"net/netip"
	"strings"
	"testing"
)

// withTLVs appends TLVs to a v2 header made by Append and fixes its
// length; crc adds a CRC32C TLV (good or, with bad, wrong).
func withTLVs(t *testing.T, tlvs []TLV, crc, bad bool) []byte {
	t.Helper()
	b := Append(nil, 2, netip.MustParseAddrPort("10.0.0.1:1234"), netip.MustParseAddrPort("10.0.0.2:443"))
	for _, v := range tlvs {
		b = append(b, v.Type)
		b = binary.BigEndian.AppendUint16(b, uint16(len(v.Value)))
		b = append(b, v.Value...)
	}
	at := 0
	if crc {
		at = len(b)
		b = append(b, TypeCRC32C, 0, 4, 0, 0, 0, 0)
	}
	binary.BigEndian.PutUint16(b[14:16], uint16(len(b)-16))
	if crc {
		sum := crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli))
		if bad {
			sum++
		}
		binary.BigEndian.PutUint32(b[at+3:], sum)
	}
	return b
}

func TestV2TLVs(t *testing.T) {
	tlvs := []TLV{{TypeAuthority, []byte("shop.example")}, {TypeNoop, nil}, {TypeUniqueID, []byte{1, 2, 3}}}
	for _, crc := range []bool{false, true} {
		b := withTLVs(t, tlvs, crc, false)
		h, err := Read(bufio.NewReader(bytes.NewReader(append(b, "GET / HTTP/1.1\r\n"...))))
		if err != nil {
			t.Fatalf("crc %v: %v", crc, err)
		}
		if h.Source != netip.MustParseAddrPort("10.0.0.1:1234") || h.Authority() != "shop.example" {
			t.Fatalf("crc %v: %+v", crc, h)
		}
		want := len(tlvs)
		if crc {
			want++
		}
		if len(h.TLVs) != want {
			t.Fatalf("crc %v: %d TLVs, want %d", crc, len(h.TLVs), want)
		}
		if v, ok := h.TLV(TypeUniqueID); !ok || !bytes.Equal(v, []byte{1, 2, 3}) {
			t.Fatalf("unique id %v %v", v, ok)
		}
	}
}

func TestV2TLVErrors(t *testing.T) {
	good := withTLVs(t, []TLV{{TypeAuthority, []byte("a.test")}}, false, false)
	truncated := append([]byte(nil), good...)
	binary.BigEndian.PutUint16(truncated[len(truncated)-8:], 200) // the TLV's length overruns
	short := append(append([]byte(nil), good...), 0x02, 0)        // 2 bytes of a TLV head
	binary.BigEndian.PutUint16(short[14:16], uint16(len(short)-16))
	badFamily := append([]byte(nil), good...)
	badFamily[13] = 0x41
	unixShort := append([]byte(nil), good...)
	unixShort[13] = 0x31 // UNIX needs 216 address bytes
	cases := map[string]struct {
		b    []byte
		want string
	}{
		"checksum mismatch": {withTLVs(t, nil, true, true), "checksum"},
		"TLV overruns":      {truncated, "longer than the header"},
		"truncated TLV":     {short, "truncated"},
		"unknown family":    {badFamily, "address family"},
		"short UNIX block":  {unixShort, "addresses longer"},
	}
	for name, c := range cases {
		if _, err := ParseV2(c.b); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error with %q", name, err, c.want)
		}
	}
	// LOCAL discards the address block whatever its family says.
	local := append([]byte(nil), badFamily...)
	local[12] = 0x20
	if h, err := ParseV2(local); err != nil || !h.Local {
		t.Fatalf("LOCAL with an odd family: %+v %v", h, err)
	}
}
