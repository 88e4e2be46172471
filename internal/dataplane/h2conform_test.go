package dataplane

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// rawH2Answer is what a raw HTTP/2 client saw of stream 1.
type rawH2Answer struct {
	fields []hpack.HeaderField // the response head
	body   string
	rst    http2.ErrCode // RST_STREAM's code, or GOAWAY's
	reset  bool
}

func (a rawH2Answer) field(name string) (string, bool) {
	for _, f := range a.fields {
		if f.Name == name {
			return f.Value, true
		}
	}
	return "", false
}

// h2cExchange sends, on a new h2c connection to addr, a SETTINGS frame
// with settings and a request on stream 1 with the fields (and body, when
// not nil), and reads until stream 1 ends.
func h2cExchange(t *testing.T, addr string, settings []http2.Setting, body []byte, fields ...string) rawH2Answer {
	t.Helper()
	c := dialFor(t, addr, 10*time.Second)
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(15 * time.Second))
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(c, c)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	var block bytes.Buffer
	enc := hpack.NewEncoder(&block)
	for i := 0; i < len(fields); i += 2 {
		_ = enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
	}
	if err := fr.WriteSettings(settings...); err != nil {
		t.Fatal(err)
	}
	_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block.Bytes(), EndHeaders: true, EndStream: body == nil})
	if body != nil {
		_ = fr.WriteData(1, true, body)
	}
	var a rawH2Answer
	acked := false
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("reading stream 1's answer (settings acked: %v, so far %+v): %v", acked, a, err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if f.IsAck() {
				acked = true
			} else {
				_ = fr.WriteSettingsAck()
			}
		case *http2.MetaHeadersFrame:
			if f.StreamID == 1 && a.fields == nil {
				a.fields = f.Fields
			}
			if f.StreamID == 1 && f.StreamEnded() {
				return a
			}
		case *http2.DataFrame:
			if f.StreamID == 1 {
				a.body += string(f.Data())
				if f.StreamEnded() {
					return a
				}
			}
		case *http2.RSTStreamFrame:
			if f.StreamID == 1 {
				a.rst, a.reset = f.ErrCode, true
				return a
			}
		case *http2.GoAwayFrame:
			a.rst, a.reset = f.ErrCode, true
			return a
		}
	}
}

// TestH2MalformedRequestsNotForwarded: an HTTP/2 request that RFC 9113
// makes malformed (a connection-specific field, §8.2.2; a TE other than
// trailers; a value with whitespace at an end, §8.2.1; a body longer or shorter than its content-length, §8.1.1) is
// a stream error of type PROTOCOL_ERROR and never reaches the origin
// whole; a
// SETTINGS frame that repeats a parameter is processed (§6.5.3) and the
// connection serves on; a well-formed request is forwarded.
func TestH2MalformedRequestsNotForwarded(t *testing.T) {
	var hits atomic.Int64
	o := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A request whose body breaks off (the proxy streams bodies,
		// so the head of one with a wrong length may come) is not one.
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return
		}
		hits.Add(1)
		fmt.Fprintf(w, "got %d bytes", len(b))
	}))
	defer o.Close()
	port := freePort(t)
	startServer(t, pool("web", hostOf(o.URL))+lbDoc([]string{listenerAt(port, "h2c: true")},
		`{match: {pathPrefix: /direct}, directResponse: {status: 200, body: "direct"}}`, "{pool: web}"), Options{})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	req := []string{":method", "POST", ":scheme", "http", ":path", "/", ":authority", "a"}
	with := func(more ...string) []string { return append(append([]string(nil), req...), more...) }
	for _, tc := range []struct {
		name   string
		fields []string
		body   []byte
	}{
		{"connection", with("connection", "keep-alive"), nil},
		{"keep-alive", with("keep-alive", "timeout=5"), nil},
		{"proxy-connection", with("proxy-connection", "keep-alive"), nil},
		{"transfer-encoding", with("transfer-encoding", "chunked"), []byte("5\r\nhello\r\n0\r\n\r\n")},
		{"upgrade", with("upgrade", "websocket"), nil},
		{"te", with("te", "trailers, deflate"), nil},
		{"value with leading space", with("x-a", " v"), nil},
		{"value with trailing tab", with("x-a", "v\t"), nil},
		{"content-length longer", with("content-length", "10"), []byte("hello")},
		{"content-length shorter", with("content-length", "2"), []byte("hello")},
	} {
		a := h2cExchange(t, addr, nil, tc.body, tc.fields...)
		if !a.reset || a.rst != http2.ErrCodeProtocol {
			t.Errorf("%s: %+v, want RST_STREAM(PROTOCOL_ERROR)", tc.name, a)
		}
		// A direct response waits for the body too: the stream is still
		// open when the client's error on it comes.
		direct := append([]string(nil), tc.fields...)
		direct[5] = "/direct"
		if a := h2cExchange(t, addr, nil, tc.body, direct...); !a.reset || a.rst != http2.ErrCodeProtocol {
			t.Errorf("%s, direct response: %+v, want RST_STREAM(PROTOCOL_ERROR)", tc.name, a)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("the origin got %d malformed requests", n)
	}
	settings := []http2.Setting{{ID: http2.SettingInitialWindowSize, Val: 100}, {ID: http2.SettingInitialWindowSize, Val: 1 << 20},
		{ID: http2.SettingHeaderTableSize, Val: 0}, {ID: http2.SettingHeaderTableSize, Val: 4096}}
	a := h2cExchange(t, addr, settings, []byte("hello"), with("te", "trailers", "content-length", "5")...)
	if s, _ := a.field(":status"); s != "200" || a.body != "got 5 bytes" {
		t.Fatalf("well-formed request after a SETTINGS frame with repeats: %+v", a)
	}
	if n := hits.Load(); n != 1 {
		t.Fatalf("the origin got %d requests, want 1", n)
	}
	a = h2cExchange(t, addr, nil, []byte("hello"), ":method", "POST", ":scheme", "http", ":path", "/direct", ":authority", "a", "content-length", "5")
	if s, _ := a.field(":status"); s != "200" || a.body != "direct" {
		t.Fatalf("well-formed request to a direct response: %+v", a)
	}
}

// TestH2ConnectAndOptionsStar: CONNECT and OPTIONS * over HTTP/2 get the
// node's own answers, as over HTTP/1.1: 405 (no tunnels) and 200, both
// with Allow; neither reaches the origin.
func TestH2ConnectAndOptionsStar(t *testing.T) {
	var hits atomic.Int64
	o := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer o.Close()
	port := freePort(t)
	startServer(t, pool("web", hostOf(o.URL))+lbDoc([]string{listenerAt(port, "h2c: true")}, "{pool: web}"), Options{})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	for _, tc := range []struct {
		fields []string
		status string
	}{
		{[]string{":method", "CONNECT", ":authority", "example.com:443"}, "405"},
		{[]string{":method", "OPTIONS", ":scheme", "http", ":path", "*", ":authority", "a"}, "200"},
	} {
		a := h2cExchange(t, addr, nil, nil, tc.fields...)
		if s, _ := a.field(":status"); s != tc.status {
			t.Fatalf("%s: %+v, want %s", tc.fields[1], a, tc.status)
		}
		if allow, _ := a.field("allow"); allow != allowedMethods {
			t.Fatalf("%s: Allow %q", tc.fields[1], allow)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("the origin got %d requests", n)
	}
}
