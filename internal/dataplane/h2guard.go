package dataplane

import (
	"crypto/tls"
	"encoding/binary"
	"net"
	"strconv"
	"strings"

	"golang.org/x/net/http2/hpack"
)

// The HTTP/2 server (golang.org/x/net/http2) departs from RFC 9113 in a
// few places, and has no option for any of them:
//
//   - A SETTINGS frame that carries one parameter twice is answered with
//     a connection error, where RFC 9113 §6.5.3 says the values are
//     processed in the order they appear.
//   - A request that carries a connection-specific field (Connection,
//     Keep-Alive, Proxy-Connection, Transfer-Encoding, Upgrade) or a TE
//     other than "trailers" is answered 400 on a normally closed stream,
//     where §8.2.2 makes it malformed: a stream error of type
//     PROTOCOL_ERROR (§8.1.1).
//   - A field value that starts or ends with whitespace is passed on,
//     where §8.2.1 makes the message malformed.
//   - A request body that ends shorter than its content-length reaches
//     the handler as a read error (the proxy's 400) instead of that
//     stream error (§8.1.1); so does a content-length other than 0 on a
//     request without body. (A body longer than it is the stream error.)
//
// h2Guard sits between the connection and the server and fixes these on
// the frames the client sends. A SETTINGS frame's repeated parameters are
// merged into one (the last value; the smallest for HEADER_TABLE_SIZE, so
// that the encoder still signals the smallest size the client asked for,
// RFC 7541 §4.2). A header block with a connection-specific field (or a
// value with whitespace at an end) gets one more field, a literal without
// indexing whose name is not a valid field name, which the server answers
// with RST_STREAM(PROTOCOL_ERROR) without calling the handler. The literal
// does not touch the dynamic table, so the server's HPACK decoder stays in
// step with the client's encoder; the guard decodes every header block
// with a decoder of its own, set up as the server's (h2DecoderTableSize),
// to see the fields. It counts the DATA payload of the streams whose
// request declared a content-length: when the stream ends short, its last
// DATA frame passes without END_STREAM and is followed by an empty HEADERS
// frame without END_STREAM, trailers that do not end the stream, which
// the server answers with RST_STREAM(PROTOCOL_ERROR); trailers that end a
// short body get the invalid field.
//
// Any frame the guard does not understand (an oversized header frame, a
// broken header block) ends the inspection: from then on bytes pass
// unchanged and the server's own checks answer them. DATA payloads pass
// without a copy when the reader's buffer is empty.

// h2MaxFrameSize is the largest frame the HTTP/2 server reads (its
// SETTINGS_MAX_FRAME_SIZE): the protocol's initial value. A larger header
// frame is the connection error FRAME_SIZE_ERROR (RFC 9113 §4.2).
const h2MaxFrameSize = 16384

// h2DecoderTableSize is the HPACK dynamic table size of the server's
// decoder (its SETTINGS_HEADER_TABLE_SIZE), which the guard's decoder
// must share.
const h2DecoderTableSize = 4096

// h2BadFieldName is the name of the field added to a malformed header
// block: a space makes it no token, which the server rejects.
const h2BadFieldName = "malformed request"

// h2MaxCounted bounds the streams whose body length the guard counts at a
// time (streams the server refused or reset are forgotten only with the
// connection); past it, new streams are not counted.
const h2MaxCounted = 1000

const (
	h2FrameData         = 0x0
	h2FrameHeaders      = 0x1
	h2FrameSettings     = 0x4
	h2FrameRSTStream    = 0x3
	h2FrameContinuation = 0x9

	h2FlagAck        = 0x1
	h2FlagEndStream  = 0x1
	h2FlagEndHeaders = 0x4
	h2FlagPadded     = 0x8
	h2FlagPriority   = 0x20

	h2SettingHeaderTableSize = 0x1
)

type h2Guard struct {
	net.Conn
	raw     []byte // bytes read from Conn: raw[r:] not yet handled
	r       int
	out     []byte // handled bytes the server has not read yet
	mod     []byte // scratch for rewritten frames
	preface int    // client preface bytes still to pass
	left    int    // payload bytes of a passed frame still to pass
	off     bool   // inspection ended: everything passes as is
	err     error  // read error to return once raw is drained

	dec       *hpack.Decoder
	inBlock   bool   // a header block continues in CONTINUATION frames
	blockID   uint32 // stream of that block
	blockEnds bool   // the block's HEADERS frame ends the stream
	malformed bool   // the block has a connection-specific field
	length    int64  // the block's content-length, -1 without

	counted map[uint32]h2BodyCount // streams with a declared length
	hdr     [9]byte                // a passed DATA frame's header, its END_STREAM cleared
	extra   [9]byte                // the HEADERS frame that follows it
	inject  []byte                 // extra, once the DATA payload has passed
}

// h2BodyCount is a request body's declared and received lengths.
type h2BodyCount struct{ declared, got int64 }

// h2TLSGuard is an h2Guard on a TLS connection: the server reads the TLS
// state through ConnectionState.
type h2TLSGuard struct {
	*h2Guard
	tc *tls.Conn
}

func (g h2TLSGuard) ConnectionState() tls.ConnectionState { return g.tc.ConnectionState() }

// guardH2 wraps an HTTP/2 server connection in an h2Guard.
func guardH2(c net.Conn) net.Conn {
	g := &h2Guard{Conn: c, preface: len(h2Preface)}
	g.dec = hpack.NewDecoder(h2DecoderTableSize, g.field)
	g.dec.SetMaxStringLength(h2MaxFrameSize * 4)
	if tc, ok := c.(*tls.Conn); ok {
		return h2TLSGuard{h2Guard: g, tc: tc}
	}
	return g
}

// field sees every decoded header field of a block.
func (g *h2Guard) field(f hpack.HeaderField) {
	if v := f.Value; v != "" && (isOWS(v[0]) || isOWS(v[len(v)-1])) {
		// RFC 9113 §8.2.1: a value must not start or end with
		// whitespace (the server checks the other characters).
		g.malformed = true
	}
	switch f.Name {
	case "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade":
		g.malformed = true
	case "te":
		if f.Value != "" && !strings.EqualFold(f.Value, "trailers") {
			g.malformed = true
		}
	case "content-length":
		n, err := strconv.ParseInt(f.Value, 10, 64)
		if err != nil || n < 0 || g.length >= 0 {
			n = -1 // the server judges it
		}
		g.length = n
	}
}

func isOWS(c byte) bool { return c == ' ' || c == '\t' }

func (g *h2Guard) Read(p []byte) (int, error) {
	for {
		if len(g.out) > 0 {
			n := copy(p, g.out)
			g.out = g.out[n:]
			return n, nil
		}
		pending := len(g.raw) - g.r
		if pending == 0 && g.err != nil {
			return 0, g.err
		}
		if g.off || g.left > 0 || g.preface > 0 {
			if pending == 0 {
				// Nothing buffered: read straight into p.
				want := len(p)
				if !g.off {
					want = min(want, max(g.left, g.preface))
				}
				n, err := g.Conn.Read(p[:want])
				g.passed(n)
				return n, err
			}
			take := pending
			if !g.off {
				take = min(take, max(g.left, g.preface))
			}
			g.out = g.raw[g.r : g.r+take]
			g.r += take
			g.passed(take)
			continue
		}
		// At a frame boundary.
		if len(g.inject) > 0 {
			g.out, g.inject = g.inject, nil
			continue
		}
		need := 9
		var length int
		var typ, flags byte
		if pending >= 9 {
			h := g.raw[g.r:]
			length = int(h[0])<<16 | int(h[1])<<8 | int(h[2])
			typ, flags = h[3], h[4]
			switch {
			case typ == h2FrameSettings && flags&h2FlagAck == 0 && length%6 == 0 && length <= 600:
				need += length
			case typ == h2FrameHeaders || typ == h2FrameContinuation:
				if length > h2MaxFrameSize {
					g.off = true
					continue
				}
				need += length
			case g.inBlock:
				// Another frame inside a header block is the server's
				// connection error; nothing more to inspect.
				g.off = true
				continue
			case typ == h2FrameData && g.isCounted(binary.BigEndian.Uint32(h[5:])&(1<<31-1)):
				if flags&h2FlagPadded != 0 && length > 0 {
					need++ // the pad length
				}
				if pending >= need {
					g.data(length, flags)
					continue
				}
			case typ == h2FrameRSTStream:
				delete(g.counted, binary.BigEndian.Uint32(h[5:])&(1<<31-1))
				fallthrough
			default:
				g.out = g.raw[g.r : g.r+9]
				g.r += 9
				g.left = length
				continue
			}
		}
		if pending < need {
			if err := g.fill(need); err != nil {
				g.err = err
				// Hand over what came before the error as it is.
				g.off = true
			}
			continue
		}
		frame := g.raw[g.r : g.r+need]
		g.r += need
		if typ == h2FrameSettings {
			g.out = g.settings(frame)
		} else {
			g.out = g.headers(frame, typ, flags)
		}
	}
}

// data passes the header of a DATA frame of a counted stream (at g.r)
// and counts its payload; a frame that ends the stream short of its
// declared length loses END_STREAM and gets the HEADERS frame after it.
func (g *h2Guard) data(length int, flags byte) {
	h := g.raw[g.r : g.r+9]
	id := binary.BigEndian.Uint32(h[5:]) & (1<<31 - 1)
	n := length
	if flags&h2FlagPadded != 0 {
		n = -1 // no room for the pad length: the server's PROTOCOL_ERROR
		if length > 0 {
			n = length - 1 - int(g.raw[g.r+9])
		}
	}
	g.out = h
	g.r += 9
	g.left = length
	if n < 0 {
		delete(g.counted, id) // the server's PROTOCOL_ERROR
		return
	}
	c := g.counted[id]
	c.got += int64(n)
	if flags&h2FlagEndStream == 0 {
		g.counted[id] = c
		return
	}
	delete(g.counted, id)
	if c.got >= c.declared {
		return // as declared, or longer: the server's stream error
	}
	copy(g.hdr[:], h)
	g.hdr[4] &^= h2FlagEndStream
	g.out = g.hdr[:]
	g.extra = [9]byte{3: h2FrameHeaders, 4: h2FlagEndHeaders}
	binary.BigEndian.PutUint32(g.extra[5:], id)
	g.inject = g.extra[:]
}

func (g *h2Guard) isCounted(id uint32) bool {
	_, ok := g.counted[id]
	return ok
}

// passed counts n bytes handed over unchanged against the preface or the
// current frame's payload.
func (g *h2Guard) passed(n int) {
	switch {
	case g.off:
	case g.preface > 0:
		g.preface -= n
	default:
		g.left -= n
	}
}

// fill reads until at least need bytes are pending.
func (g *h2Guard) fill(need int) error {
	if g.r > 0 {
		// g.out was handed over: its bytes may move.
		n := copy(g.raw, g.raw[g.r:])
		g.raw = g.raw[:n]
		g.r = 0
	}
	if cap(g.raw) < need {
		raw := make([]byte, len(g.raw), max(need, 4096))
		copy(raw, g.raw)
		g.raw = raw
	} else if cap(g.raw) == 0 {
		g.raw = make([]byte, 0, 4096)
	}
	for len(g.raw) < need {
		n, err := g.Conn.Read(g.raw[len(g.raw):cap(g.raw)])
		g.raw = g.raw[:len(g.raw)+n]
		if err != nil {
			return err
		}
	}
	return nil
}

// settings returns the SETTINGS frame f with each repeated parameter
// given once.
func (g *h2Guard) settings(f []byte) []byte {
	p := f[9:]
	dup := false
	for i := 0; i < len(p) && !dup; i += 6 {
		for j := i + 6; j < len(p); j += 6 {
			if p[i] == p[j] && p[i+1] == p[j+1] {
				dup = true
				break
			}
		}
	}
	if !dup {
		return f
	}
	out := append(g.mod[:0], f[:9]...)
	for i := 0; i < len(p); i += 6 {
		id := binary.BigEndian.Uint16(p[i:])
		val := binary.BigEndian.Uint32(p[i+2:])
		seen := false
		for j := 9; j < len(out); j += 6 {
			if binary.BigEndian.Uint16(out[j:]) != id {
				continue
			}
			seen = true
			if id != h2SettingHeaderTableSize || val < binary.BigEndian.Uint32(out[j+2:]) {
				binary.BigEndian.PutUint32(out[j+2:], val)
			}
		}
		if !seen {
			out = append(out, p[i:i+6]...)
		}
	}
	n := len(out) - 9
	out[0], out[1], out[2] = byte(n>>16), byte(n>>8), byte(n)
	g.mod = out
	return out
}

// headers inspects a HEADERS or CONTINUATION frame and returns it, with
// the invalid field added when it ends a malformed block.
func (g *h2Guard) headers(f []byte, typ, flags byte) []byte {
	id := binary.BigEndian.Uint32(f[5:]) & (1<<31 - 1)
	p := f[9:]
	var pad int
	if typ == h2FrameHeaders {
		if g.inBlock {
			g.off = true
			return f
		}
		g.malformed = false
		g.length = -1
		g.blockEnds = flags&h2FlagEndStream != 0
		if flags&h2FlagPadded != 0 {
			if len(p) < 1 {
				g.off = true
				return f
			}
			pad = int(p[0])
			p = p[1:]
		}
		if flags&h2FlagPriority != 0 {
			if len(p) < 5 {
				g.off = true
				return f
			}
			p = p[5:]
		}
		if pad > len(p) {
			g.off = true
			return f
		}
	} else if !g.inBlock || id != g.blockID {
		g.off = true
		return f
	}
	frag := p[:len(p)-pad]
	if _, err := g.dec.Write(frag); err != nil {
		g.off = true
		return f
	}
	if flags&h2FlagEndHeaders == 0 {
		g.inBlock, g.blockID = true, id
		return f
	}
	g.inBlock = false
	if err := g.dec.Close(); err != nil {
		g.off = true
		return f
	}
	if c, ok := g.counted[id]; ok {
		// Trailers: they must end the stream, with the declared length.
		delete(g.counted, id)
		if g.blockEnds && c.got != c.declared {
			g.malformed = true
		}
	} else if g.length > 0 && g.blockEnds {
		g.malformed = true // a length, and no body
	} else if g.length >= 0 && !g.blockEnds && !g.malformed && len(g.counted) < h2MaxCounted {
		if g.counted == nil {
			g.counted = map[uint32]h2BodyCount{}
		}
		g.counted[id] = h2BodyCount{declared: g.length}
	}
	if !g.malformed {
		return f
	}
	// A literal field without indexing, new name (RFC 7541 §6.2.2), both
	// strings short enough for a one-byte length.
	extra := 1 + 1 + len(h2BadFieldName) + 1
	if len(f)-9+extra > h2MaxFrameSize {
		return f
	}
	end := len(f) - pad
	out := append(g.mod[:0], f[:end]...)
	out = append(out, 0x00, byte(len(h2BadFieldName)))
	out = append(out, h2BadFieldName...)
	out = append(out, 0x00)
	out = append(out, f[end:]...)
	n := len(out) - 9
	out[0], out[1], out[2] = byte(n>>16), byte(n>>8), byte(n)
	g.mod = out
	return out
}
