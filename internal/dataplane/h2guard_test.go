package dataplane

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// guardOutput writes in to a connection in chunks of chunk bytes and
// returns what an h2Guard on the other end hands over, read with a small
// buffer so that frames are split across reads.
func guardOutput(t testing.TB, in []byte, chunk int) []byte {
	t.Helper()
	client, server := net.Pipe()
	go func() {
		for b := in; len(b) > 0; {
			n := min(chunk, len(b))
			if _, err := client.Write(b[:n]); err != nil {
				break
			}
			b = b[n:]
		}
		client.Close()
	}()
	g := guardH2(server)
	defer g.Close()
	var out bytes.Buffer
	buf := make([]byte, 7)
	for {
		n, err := g.Read(buf)
		out.Write(buf[:n])
		if err == io.EOF {
			return out.Bytes()
		}
		if err != nil {
			t.Fatalf("reading through the guard: %v", err)
		}
	}
}

// h2Frames is a client's byte stream: the preface and the frames fr
// writes.
func h2Frames(write func(fr *http2.Framer)) []byte {
	var b bytes.Buffer
	b.WriteString(http2.ClientPreface)
	write(http2.NewFramer(&b, nil))
	return b.Bytes()
}

// h2Seen is what readFrames saw of a frame.
type h2Seen struct {
	kind     string // "settings", "headers", "malformed" (a stream error), "data", "other"
	stream   uint32
	settings []http2.Setting
	path     string
}

// readFrames parses the guard's output as the server does, decoding
// header blocks.
func readFrames(t *testing.T, b []byte) []h2Seen {
	t.Helper()
	if !bytes.HasPrefix(b, []byte(http2.ClientPreface)) {
		t.Fatalf("output does not start with the preface: %q", b)
	}
	fr := http2.NewFramer(nil, bytes.NewReader(b[len(http2.ClientPreface):]))
	fr.ReadMetaHeaders = hpack.NewDecoder(h2DecoderTableSize, nil)
	var out []h2Seen
	for {
		f, err := fr.ReadFrame()
		if err == io.EOF {
			return out
		}
		if se, ok := err.(http2.StreamError); ok && se.Code == http2.ErrCodeProtocol {
			out = append(out, h2Seen{kind: "malformed", stream: se.StreamID})
			continue
		}
		if err != nil {
			t.Fatalf("reading the guard's output: %v", err)
		}
		s := h2Seen{kind: "other", stream: f.Header().StreamID}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			s.kind = "settings"
			_ = f.ForeachSetting(func(x http2.Setting) error { s.settings = append(s.settings, x); return nil })
		case *http2.MetaHeadersFrame:
			s.kind, s.path = "headers", f.PseudoValue("path")
		case *http2.DataFrame:
			s.kind = "data"
		}
		out = append(out, s)
	}
}

func encodeBlock(enc *hpack.Encoder, buf *bytes.Buffer, fields ...string) []byte {
	buf.Reset()
	for i := 0; i < len(fields); i += 2 {
		_ = enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
	}
	return append([]byte(nil), buf.Bytes()...)
}

var reqFields = []string{":method", "GET", ":scheme", "https", ":path", "/", ":authority", "example.com"}

func TestH2GuardSettings(t *testing.T) {
	in := h2Frames(func(fr *http2.Framer) {
		_ = fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 100},
			http2.Setting{ID: http2.SettingHeaderTableSize, Val: 0},
			http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1},
			http2.Setting{ID: http2.SettingHeaderTableSize, Val: 4096},
			http2.Setting{ID: http2.SettingMaxFrameSize, Val: 20000})
		_ = fr.WriteSettings(http2.Setting{ID: http2.SettingEnablePush, Val: 0}) // no repeat: untouched
		_ = fr.WriteSettingsAck()
		_ = fr.WritePing(false, [8]byte{1, 2, 3})
	})
	for _, chunk := range []int{1, 5, len(in)} {
		out := guardOutput(t, in, chunk)
		fs := readFrames(t, out)
		if len(fs) != 4 {
			t.Fatalf("chunk %d: %d frames, want 4", chunk, len(fs))
		}
		got := fs[0].settings
		want := []http2.Setting{{ID: http2.SettingInitialWindowSize, Val: 1}, {ID: http2.SettingHeaderTableSize, Val: 0},
			{ID: http2.SettingMaxFrameSize, Val: 20000}}
		if len(got) != len(want) {
			t.Fatalf("chunk %d: settings %v, want %v", chunk, got, want)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("chunk %d: settings %v, want %v", chunk, got, want)
			}
		}
		if !bytes.HasSuffix(out, in[len(in)-(9+6)-9-(9+8):]) {
			t.Fatalf("chunk %d: frames after the merged SETTINGS changed", chunk)
		}
	}
}

func TestH2GuardMalformedHeaders(t *testing.T) {
	var buf bytes.Buffer
	enc := hpack.NewEncoder(&buf)
	clean := encodeBlock(enc, &buf, append(reqFields, "x-a", "1")...)
	conn := encodeBlock(enc, &buf, append(reqFields, "connection", "keep-alive")...)
	te := encodeBlock(enc, &buf, append(reqFields, "te", "trailers, deflate")...)
	teOK := encodeBlock(enc, &buf, append(reqFields, "te", "trailers")...)
	upgrade := encodeBlock(enc, &buf, append(reqFields, "upgrade", "h2c")...)
	// The dynamic table now holds entries of every block: a later block
	// referring to them decodes only if the guard kept the tables in step.
	again := encodeBlock(enc, &buf, append(reqFields, "x-a", "1")...)
	in := h2Frames(func(fr *http2.Framer) {
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: clean, EndStream: true, EndHeaders: true})
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: conn, EndStream: true, EndHeaders: true,
			PadLength: 3, Priority: http2.PriorityParam{StreamDep: 1, Weight: 7}})
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 5, BlockFragment: te[:4], EndStream: false})
		_ = fr.WriteContinuation(5, false, te[4:6])
		_ = fr.WriteContinuation(5, true, te[6:])
		_ = fr.WriteData(5, true, []byte("body"))
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 7, BlockFragment: teOK, EndStream: true, EndHeaders: true})
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 9, BlockFragment: upgrade, EndStream: true, EndHeaders: true})
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 11, BlockFragment: again, EndStream: true, EndHeaders: true})
	})
	for _, chunk := range []int{1, 3, len(in)} {
		fs := readFrames(t, guardOutput(t, in, chunk))
		var got []string
		for _, f := range fs {
			got = append(got, f.kind)
			if f.kind == "headers" && f.path != "/" {
				t.Fatalf("chunk %d: stream %d's block decodes with path %q", chunk, f.stream, f.path)
			}
		}
		want := []string{"headers", "malformed", "malformed", "data", "headers", "malformed", "headers"}
		if len(got) != len(want) {
			t.Fatalf("chunk %d: %v, want %v", chunk, got, want)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("chunk %d: %v, want %v", chunk, got, want)
			}
		}
	}
}

// A stream of frames the guard does not rewrite passes byte for byte, and
// so does everything after a frame it cannot inspect.
func TestH2GuardPassesUnchanged(t *testing.T) {
	var buf bytes.Buffer
	enc := hpack.NewEncoder(&buf)
	block := encodeBlock(enc, &buf, reqFields...)
	body := bytes.Repeat([]byte("0123456789"), 5000)
	in := h2Frames(func(fr *http2.Framer) {
		_ = fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 20})
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block, EndHeaders: true})
		for b := body; len(b) > 0; b = b[min(len(b), 16384):] {
			_ = fr.WriteData(1, len(b) <= 16384, b[:min(len(b), 16384)])
		}
		_ = fr.WriteWindowUpdate(0, 1000)
		// A block the decoder rejects (an index past the tables) ends the
		// inspection; the SETTINGS with a repeat after it passes as is.
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: []byte{0xff, 0x7f}, EndHeaders: true})
		_ = fr.WriteSettings(http2.Setting{ID: http2.SettingEnablePush, Val: 0}, http2.Setting{ID: http2.SettingEnablePush, Val: 0})
	})
	for _, chunk := range []int{1, 4096, len(in)} {
		if out := guardOutput(t, in, chunk); !bytes.Equal(out, in) {
			t.Fatalf("chunk %d: output differs from input (%d bytes, want %d)", chunk, len(out), len(in))
		}
	}
}

// FuzzH2Guard feeds arbitrary client bytes after the preface: the guard
// must not fail, and hands over at least as many frames as it was given
// (it merges settings, lengthens header blocks and adds a HEADERS frame
// after a short body, never drops a frame).
func FuzzH2Guard(f *testing.F) {
	var buf bytes.Buffer
	enc := hpack.NewEncoder(&buf)
	block := encodeBlock(enc, &buf, append(reqFields, "connection", "close")...)
	f.Add(h2Frames(func(fr *http2.Framer) {
		_ = fr.WriteSettings(http2.Setting{ID: 4, Val: 100}, http2.Setting{ID: 4, Val: 1})
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block[:5]})
		_ = fr.WriteContinuation(1, true, block[5:])
	})[len(http2.ClientPreface):])
	post := encodeBlock(enc, &buf, ":method", "POST", ":path", "/", "content-length", "9")
	f.Add(h2Frames(func(fr *http2.Framer) {
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: post, EndHeaders: true})
		_ = fr.WriteDataPadded(1, false, []byte("ab"), []byte{0})
		_ = fr.WriteData(1, true, []byte("cd"))
	})[len(http2.ClientPreface):])
	f.Add(append(h2Frames(func(fr *http2.Framer) {
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: post, EndHeaders: true})
	})[len(http2.ClientPreface):], 0, 0, 0, 0, 0x9, 0, 0, 0, 1)) // a padded DATA frame with no room for the pad length
	f.Add([]byte{0, 0, 1, 1, 0x28, 0, 0, 0, 1, 200})
	f.Add([]byte{0, 0, 0, 9, 4, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		in := append([]byte(http2.ClientPreface), b...)
		out := guardOutput(t, in, 13)
		if n, m := countFrames(in), countFrames(out); m < n {
			t.Fatalf("%d frames in, %d out", n, m)
		}
	})
}

// countFrames counts the whole frames after the preface.
func countFrames(b []byte) int {
	b = b[len(http2.ClientPreface):]
	n := 0
	for len(b) >= 9 {
		l := 9 + (int(b[0])<<16 | int(b[1])<<8 | int(b[2]))
		if l > len(b) {
			break
		}
		b = b[l:]
		n++
	}
	return n
}

// TestH2GuardContentLength: a body that ends short of its content-length
// (in a DATA frame, padded or not, or in trailers) and a length without
// body become stream errors; exact bodies pass unchanged.
func TestH2GuardContentLength(t *testing.T) {
	var buf bytes.Buffer
	enc := hpack.NewEncoder(&buf)
	post := func(n string) []byte {
		return encodeBlock(enc, &buf, ":method", "POST", ":scheme", "https", ":path", "/", ":authority", "example.com", "content-length", n)
	}
	b5, b5b, b5c, b5d, b3 := post("5"), post("5"), post("5"), post("5"), post("3")
	trailer := encodeBlock(enc, &buf, "x-sum", "1")
	in := h2Frames(func(fr *http2.Framer) {
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: b5, EndHeaders: true})
		_ = fr.WriteData(1, false, []byte("he"))
		_ = fr.WriteDataPadded(1, true, []byte("ll"), []byte{0, 0, 0}) // 4 of 5
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: b5b, EndHeaders: true, EndStream: true})
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 5, BlockFragment: b5c, EndHeaders: true})
		_ = fr.WriteData(5, false, []byte("hel"))
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 5, BlockFragment: trailer, EndHeaders: true, EndStream: true})
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 7, BlockFragment: b5d, EndHeaders: true})
		_ = fr.WriteDataPadded(7, true, []byte("hello"), []byte{0})
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 9, BlockFragment: b3, EndHeaders: true})
		_ = fr.WriteRSTStream(9, http2.ErrCodeCancel)
		_ = fr.WriteData(9, true, []byte("x")) // forgotten with the reset: passes
	})
	for _, chunk := range []int{1, 6, len(in)} {
		out := guardOutput(t, in, chunk)
		var got []string
		fr := http2.NewFramer(nil, bytes.NewReader(out[len(http2.ClientPreface):]))
		fr.ReadMetaHeaders = hpack.NewDecoder(h2DecoderTableSize, nil)
		for {
			f, err := fr.ReadFrame()
			if err == io.EOF {
				break
			}
			if se, ok := err.(http2.StreamError); ok {
				got = append(got, fmt.Sprintf("malformed %d", se.StreamID))
				continue
			}
			if err != nil {
				t.Fatalf("chunk %d: %v", chunk, err)
			}
			h := f.Header()
			got = append(got, fmt.Sprintf("%s %d %v", h.Type, h.StreamID, h.Flags.Has(http2.FlagDataEndStream)))
		}
		want := "HEADERS 1 false,DATA 1 false,DATA 1 false,HEADERS 1 false," +
			"malformed 3," +
			"HEADERS 5 false,DATA 5 false,malformed 5," +
			"HEADERS 7 false,DATA 7 true," +
			"HEADERS 9 false,RST_STREAM 9 false,DATA 9 true"
		if g := strings.Join(got, ","); g != want {
			t.Fatalf("chunk %d:\n got %s\nwant %s", chunk, g, want)
		}
	}
}

// TestH2GuardEmptyPaddedData: a padded DATA frame of a counted stream too
// short to hold its pad length is handed over at once (the server's
// PROTOCOL_ERROR), without waiting for a byte past it.
func TestH2GuardEmptyPaddedData(t *testing.T) {
	var buf bytes.Buffer
	enc := hpack.NewEncoder(&buf)
	post := encodeBlock(enc, &buf, ":method", "POST", ":scheme", "https", ":path", "/", ":authority", "a", "content-length", "9")
	in := append(h2Frames(func(fr *http2.Framer) {
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: post, EndHeaders: true})
	}), 0, 0, 0, 0, 0x9, 0, 0, 0, 1)
	client, server := net.Pipe()
	defer client.Close()
	go func() { _, _ = client.Write(in) }() // and the connection stays open
	g := guardH2(server)
	defer g.Close()
	_ = g.SetReadDeadline(time.Now().Add(10 * time.Second))
	got := make([]byte, len(in))
	if _, err := io.ReadFull(g, got); err != nil {
		t.Fatalf("the frames did not all come through: %v", err)
	}
	if !bytes.Equal(got, in) {
		t.Fatalf("frames changed")
	}
	if err := g.(*h2Guard).err; err != nil {
		t.Fatalf("the guard waited for more until: %v", err)
	}
}
