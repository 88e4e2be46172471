package proxyproto

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"net/netip"
	"strconv"
)

// sigV2 starts every v2 header.
var sigV2 = []byte("\r\n\r\n\x00\r\nQUIT\n")

// ErrNoHeader means the connection did not start with a PROXY header.
var ErrNoHeader = errors.New("proxyproto: no PROXY protocol header")

// Header is what a PROXY header says about a connection. Local is true for
// v2 LOCAL and v1 UNKNOWN headers: the addresses are then those of the
// connection itself.
type Header struct {
	Version  int
	Local    bool
	Source   netip.AddrPort
	Dest     netip.AddrPort
	Protocol string // "tcp4" or "tcp6"
	// TLVs are the type-length-value fields after a v2 header's
	// addresses, in order (their values alias the parsed bytes).
	TLVs []TLV
}

// TLV is one type-length-value field of a v2 header.
type TLV struct {
	Type  byte
	Value []byte
}

// v2 TLV types (the PROXY protocol specification, section 2.2).
const (
	TypeALPN      = 0x01
	TypeAuthority = 0x02
	TypeCRC32C    = 0x03
	TypeNoop      = 0x04
	TypeUniqueID  = 0x05
	TypeSSL       = 0x20
	TypeNetNS     = 0x30
)

// TLV returns the value of the first TLV of type t.
func (h Header) TLV(t byte) ([]byte, bool) {
	for _, v := range h.TLVs {
		if v.Type == t {
			return v.Value, true
		}
	}
	return nil, false
}

// Authority is the host name the client asked for (TypeAuthority, the
// SNI of a TLS connection), "" when the header carries none.
func (h Header) Authority() string {
	v, _ := h.TLV(TypeAuthority)
	return string(v)
}

const maxV1 = 107

// Read consumes a PROXY protocol v1 or v2 header from r.
func Read(r *bufio.Reader) (Header, error) {
	b, err := r.Peek(1)
	if err != nil {
		return Header{}, fmt.Errorf("proxyproto: reading header: %w", err)
	}
	switch b[0] {
	case 'P':
		return readV1(r)
	case '\r':
		return readV2(r)
	}
	return Header{}, ErrNoHeader
}

func readV1(r *bufio.Reader) (Header, error) {
	var line []byte
	for len(line) < maxV1 {
		c, err := r.ReadByte()
		if err != nil {
			return Header{}, fmt.Errorf("proxyproto: reading v1 header: %w", err)
		}
		line = append(line, c)
		if c == '\n' {
			break
		}
	}
	if len(line) < 2 || line[len(line)-1] != '\n' || line[len(line)-2] != '\r' {
		return Header{}, errors.New("proxyproto: v1 header not terminated by CRLF within 107 bytes")
	}
	return ParseV1(line)
}

// ParseV1 parses one v1 line including its CRLF.
func ParseV1(line []byte) (Header, error) {
	if !bytes.HasSuffix(line, []byte("\r\n")) {
		return Header{}, errors.New("proxyproto: v1 header must end with CRLF")
	}
	f := bytes.Split(line[:len(line)-2], []byte(" "))
	if len(f) < 2 || string(f[0]) != "PROXY" {
		return Header{}, ErrNoHeader
	}
	h := Header{Version: 1}
	switch string(f[1]) {
	case "UNKNOWN":
		h.Local = true
		return h, nil
	case "TCP4":
		h.Protocol = "tcp4"
	case "TCP6":
		h.Protocol = "tcp6"
	default:
		return Header{}, fmt.Errorf("proxyproto: unsupported v1 protocol %q", f[1])
	}
	if len(f) != 6 {
		return Header{}, errors.New("proxyproto: v1 header needs 6 fields")
	}
	src, err1 := netip.ParseAddr(string(f[2]))
	dst, err2 := netip.ParseAddr(string(f[3]))
	sp, err3 := parsePort(f[4])
	dp, err4 := parsePort(f[5])
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return Header{}, fmt.Errorf("proxyproto: bad v1 address: %w", err)
	}
	if (h.Protocol == "tcp4") != (src.Is4() && dst.Is4()) || src.Zone() != "" || dst.Zone() != "" {
		return Header{}, errors.New("proxyproto: v1 address family mismatch")
	}
	h.Source, h.Dest = netip.AddrPortFrom(src, sp), netip.AddrPortFrom(dst, dp)
	return h, nil
}

func parsePort(b []byte) (uint16, error) {
	if len(b) == 0 || len(b) > 5 || (len(b) > 1 && b[0] == '0') {
		return 0, fmt.Errorf("bad port %q", b)
	}
	n, err := strconv.ParseUint(string(b), 10, 16)
	return uint16(n), err
}

func readV2(r *bufio.Reader) (Header, error) {
	hdr, err := r.Peek(16)
	if err != nil {
		return Header{}, fmt.Errorf("proxyproto: reading v2 header: %w", err)
	}
	if !bytes.Equal(hdr[:12], sigV2) {
		return Header{}, ErrNoHeader
	}
	n := int(binary.BigEndian.Uint16(hdr[14:16]))
	buf := make([]byte, 16+n)
	if _, err := ioReadFull(r, buf); err != nil {
		return Header{}, fmt.Errorf("proxyproto: reading v2 header: %w", err)
	}
	return ParseV2(buf)
}

func ioReadFull(r *bufio.Reader, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := r.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// ParseV2 parses a complete v2 header (signature through TLVs).
func ParseV2(b []byte) (Header, error) {
	if len(b) < 16 || !bytes.Equal(b[:12], sigV2) {
		return Header{}, ErrNoHeader
	}
	if b[12]>>4 != 2 {
		return Header{}, fmt.Errorf("proxyproto: unsupported v2 version %d", b[12]>>4)
	}
	n := int(binary.BigEndian.Uint16(b[14:16]))
	if len(b) != 16+n {
		return Header{}, errors.New("proxyproto: v2 length mismatch")
	}
	body := b[16:]
	h := Header{Version: 2}
	local := false
	switch b[12] & 0xf {
	case 0: // LOCAL
		local = true
	case 1: // PROXY
	default:
		return Header{}, fmt.Errorf("proxyproto: unsupported v2 command %d", b[12]&0xf)
	}
	// The address block's size follows from the family (high nibble).
	addrLen := -1
	switch b[13] >> 4 {
	case 0: // UNSPEC
		addrLen = 0
	case 1: // INET
		addrLen = 12
	case 2: // INET6
		addrLen = 36
	case 3: // UNIX
		addrLen = 216
	}
	if addrLen < 0 || len(body) < addrLen {
		if local {
			// LOCAL: the receiver discards the address block, whatever
			// its family says.
			h.Local = true
			return h, nil
		}
		if addrLen < 0 {
			return Header{}, fmt.Errorf("proxyproto: unknown v2 address family %d", b[13]>>4)
		}
		return Header{}, errors.New("proxyproto: v2 addresses longer than the header")
	}
	tlvs, err := parseTLVs(b, 16+addrLen)
	if err != nil {
		return Header{}, err
	}
	h.TLVs = tlvs
	if local {
		h.Local = true
		return h, nil
	}
	switch b[13] {
	case 0x11: // TCP over IPv4
		h.Protocol = "tcp4"
		h.Source = netip.AddrPortFrom(netip.AddrFrom4([4]byte(body[0:4])), binary.BigEndian.Uint16(body[8:10]))
		h.Dest = netip.AddrPortFrom(netip.AddrFrom4([4]byte(body[4:8])), binary.BigEndian.Uint16(body[10:12]))
	case 0x21: // TCP over IPv6
		h.Protocol = "tcp6"
		h.Source = netip.AddrPortFrom(netip.AddrFrom16([16]byte(body[0:16])), binary.BigEndian.Uint16(body[32:34]))
		h.Dest = netip.AddrPortFrom(netip.AddrFrom16([16]byte(body[16:32])), binary.BigEndian.Uint16(body[34:36]))
	default:
		// UNSPEC or a family we do not carry (UDP, UNIX): keep the
		// connection's own addresses.
		h.Local = true
	}
	return h, nil
}

// parseTLVs reads the TLVs of the whole v2 header b from off to its end.
// A TLV that overruns the header is an error, and so is a CRC32C TLV
// whose checksum (over the header with the checksum zeroed) differs.
func parseTLVs(b []byte, off int) ([]TLV, error) {
	var out []TLV
	for p := off; p < len(b); {
		if len(b)-p < 3 {
			return nil, errors.New("proxyproto: truncated v2 TLV")
		}
		t, n := b[p], int(binary.BigEndian.Uint16(b[p+1:p+3]))
		if len(b)-p-3 < n {
			return nil, fmt.Errorf("proxyproto: v2 TLV 0x%02x longer than the header", t)
		}
		v := b[p+3 : p+3+n]
		if t == TypeCRC32C {
			if n != 4 {
				return nil, errors.New("proxyproto: v2 CRC32C TLV is not 4 bytes")
			}
			want := binary.BigEndian.Uint32(v)
			c := crc32.New(castagnoli)
			c.Write(b[:p+3])
			c.Write([]byte{0, 0, 0, 0})
			c.Write(b[p+7:])
			if c.Sum32() != want {
				return nil, errors.New("proxyproto: v2 header checksum mismatch")
			}
		}
		out = append(out, TLV{Type: t, Value: v})
		p += 3 + n
	}
	return out, nil
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Append appends a header of the given version (1 or 2) for a connection
// from src to dst.
func Append(b []byte, version int, src, dst netip.AddrPort) []byte {
	s, d := src.Addr().WithZone(""), dst.Addr().WithZone("")
	if s.Is4() != d.Is4() {
		// Mixed families cannot be expressed; widen both to IPv6.
		s, d = netip.AddrFrom16(s.As16()), netip.AddrFrom16(d.As16())
	}
	if version == 1 {
		if !s.IsValid() || !d.IsValid() {
			return append(b, "PROXY UNKNOWN\r\n"...)
		}
		fam := "TCP6"
		if s.Is4() {
			fam = "TCP4"
		}
		b = append(b, "PROXY "+fam+" "...)
		b = append(b, s.String()...)
		b = append(b, ' ')
		b = append(b, d.String()...)
		b = append(b, ' ')
		b = strconv.AppendUint(b, uint64(src.Port()), 10)
		b = append(b, ' ')
		b = strconv.AppendUint(b, uint64(dst.Port()), 10)
		return append(b, '\r', '\n')
	}
	b = append(b, sigV2...)
	if !s.IsValid() || !d.IsValid() {
		return append(b, 0x20, 0x00, 0, 0)
	}
	if s.Is4() {
		b = append(b, 0x21, 0x11, 0, 12)
		a4, d4 := s.As4(), d.As4()
		b = append(b, a4[:]...)
		b = append(b, d4[:]...)
	} else {
		b = append(b, 0x21, 0x21, 0, 36)
		a6, d6 := s.As16(), d.As16()
		b = append(b, a6[:]...)
		b = append(b, d6[:]...)
	}
	b = binary.BigEndian.AppendUint16(b, src.Port())
	return binary.BigEndian.AppendUint16(b, dst.Port())
}
