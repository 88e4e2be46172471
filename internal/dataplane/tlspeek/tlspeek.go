package tlspeek

import (
	"bufio"
	"encoding/binary"
	"errors"
)

// ErrNotTLS means the connection does not start with a TLS handshake.
var ErrNotTLS = errors.New("tlspeek: not a TLS ClientHello")

// ServerName peeks at the first TLS record in r and returns the SNI host
// name ("" when the ClientHello carries none). The bytes stay in r.
func ServerName(r *bufio.Reader) (string, error) {
	hdr, err := r.Peek(5)
	if err != nil {
		return "", err
	}
	if hdr[0] != 0x16 || hdr[1] != 3 {
		return "", ErrNotTLS
	}
	n := int(binary.BigEndian.Uint16(hdr[3:5]))
	if n == 0 || n > 16384+2048 {
		return "", ErrNotTLS
	}
	rec, err := r.Peek(5 + n)
	if err != nil {
		return "", err
	}
	return ParseClientHello(rec[5:])
}

// ParseClientHello extracts the SNI from a handshake message (the payload
// of the first handshake record).
func ParseClientHello(b []byte) (string, error) {
	bad := errors.New("tlspeek: malformed ClientHello")
	if len(b) < 4 || b[0] != 1 {
		return "", ErrNotTLS
	}
	l := int(b[1])<<16 | int(b[2])<<8 | int(b[3])
	b = b[4:]
	if l < len(b) {
		b = b[:l]
	}
	// version(2) random(32)
	if len(b) < 34 {
		return "", bad
	}
	b = b[34:]
	skip := func(lenBytes int) bool {
		if len(b) < lenBytes {
			return false
		}
		n := 0
		for i := 0; i < lenBytes; i++ {
			n = n<<8 | int(b[i])
		}
		if len(b) < lenBytes+n {
			return false
		}
		b = b[lenBytes+n:]
		return true
	}
	if !skip(1) || !skip(2) || !skip(1) { // session id, cipher suites, compression
		return "", bad
	}
	if len(b) == 0 {
		return "", nil // no extensions
	}
	if len(b) < 2 {
		return "", bad
	}
	el := int(binary.BigEndian.Uint16(b))
	b = b[2:]
	if len(b) < el {
		return "", bad
	}
	b = b[:el]
	for len(b) >= 4 {
		typ := binary.BigEndian.Uint16(b)
		n := int(binary.BigEndian.Uint16(b[2:]))
		b = b[4:]
		if len(b) < n {
			return "", bad
		}
		ext := b[:n]
		b = b[n:]
		if typ != 0 {
			continue
		}
		if len(ext) < 2 {
			return "", bad
		}
		ln := int(binary.BigEndian.Uint16(ext))
		ext = ext[2:]
		if len(ext) < ln {
			return "", bad
		}
		ext = ext[:ln]
		for len(ext) >= 3 {
			nt := ext[0]
			nl := int(binary.BigEndian.Uint16(ext[1:]))
			ext = ext[3:]
			if len(ext) < nl {
				return "", bad
			}
			if nt == 0 {
				name := ext[:nl]
				for _, c := range name {
					if c <= ' ' || c >= 0x7f {
						return "", bad
					}
				}
				return string(name), nil
			}
			ext = ext[nl:]
		}
		return "", nil
	}
	return "", nil
}
