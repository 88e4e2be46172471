package dataplane

import (
	"bytes"
	"testing"

	"github.com/valyala/fasthttp"
)

func TestStageValues(t *testing.T) {
	type key struct{ n int }
	keys := make([]*key, 7) // more than the inline slots
	for i := range keys {
		keys[i] = &key{i}
	}
	var x Exchange
	for i, k := range keys {
		x.SetStageValue(k, i)
	}
	for i, k := range keys {
		if v := x.StageValue(k); v != i {
			t.Errorf("value %d: %v", i, v)
		}
	}
	x.SetStageValue(keys[1], nil)
	x.SetStageValue(keys[6], nil)
	x.SetStageValue(keys[2], "two")
	if x.StageValue(keys[1]) != nil || x.StageValue(keys[6]) != nil || x.StageValue(keys[2]) != "two" || x.StageValue(keys[5]) != 5 {
		t.Errorf("after removals: %v %v %v %v", x.StageValue(keys[1]), x.StageValue(keys[6]), x.StageValue(keys[2]), x.StageValue(keys[5]))
	}
	x.reset()
	for _, k := range keys {
		if v := x.StageValue(k); v != nil {
			t.Errorf("after reset: %v", v)
		}
	}
	// A few values cost no allocation.
	k := &key{}
	if n := testing.AllocsPerRun(100, func() {
		x.SetStageValue(k, k)
		_ = x.StageValue(k)
		x.SetStageValue(k, nil)
	}); n != 0 {
		t.Errorf("%v allocations per set, get and remove", n)
	}
}

func TestRawHeaderView(t *testing.T) {
	h := &rawHeaderView{b: []byte("Host: a\r\nX-Two:  b c \r\nx-two: d\r\nContent-Length: 0\r\n")}
	for _, c := range []struct {
		name, want string
		ok         bool
	}{{"host", "a", true}, {"X-TWO", "b c", true}, {"content-length", "0", true}, {"X-Tw", "", false}, {"Accept", "", false}} {
		v, ok := h.Peek(c.name)
		if string(v) != c.want || ok != c.ok {
			t.Errorf("Peek(%q) = %q, %v; want %q, %v", c.name, v, ok, c.want, c.ok)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("a change to the read-only view did not panic")
		}
	}()
	h.Set("X", "y")
}

func TestBodyAnnounced(t *testing.T) {
	for head, want := range map[string]bool{
		"Host: a\r\n":                               false,
		"Host: a\r\nContent-Length: 0\r\n":          false,
		"Host: a\r\nContent-Length: 00\r\n":         true, // not 0 as written: the goroutine engine decides
		"Host: a\r\ncontent-length: 5\r\n":          true,
		"Host: a\r\nTransfer-Encoding: chunked\r\n": true,
		"Host: a\r\nTransfer-Encoding: \r\n":        true,
	} {
		if got := bodyAnnounced([]byte(head)); got != want {
			t.Errorf("%q: %v, want %v", head, got, want)
		}
	}
}

// fasthttpQuery is what the goroutine engine's stages get for a query
// argument (h1Exchange.query).
func fasthttpQuery(raw, name string) ([]byte, bool) {
	var a fasthttp.Args
	a.Parse(raw)
	v := a.Peek(name)
	if v == nil && !a.Has(name) {
		return nil, false
	}
	return v, true
}

func TestLoopQueryMatchesGoroutineEngine(t *testing.T) {
	for _, c := range [][2]string{
		{"id=42&name=alice", "name"}, {"q=a+b%2Fc", "q"}, {"q", "q"}, {"q&q=2", "q"}, {"a%20b=1", "a b"},
		{"x=%zz&x=2", "x"}, {"x=%4", "x"}, {"&&x=1&", "x"}, {"x=1;y=2", "y"}, {"x=1;y=2", "x"}, {"=v", ""}, {"k==v", "k"},
	} {
		checkQuery(t, c[0], c[1])
	}
}

func checkQuery(t *testing.T, raw, name string) {
	t.Helper()
	want, wok := fasthttpQuery(raw, name)
	q := queryView{raw: []byte(raw)}
	got, gok := q.lookup(name)
	if !bytes.Equal(got, want) || gok != wok {
		t.Errorf("query %q, argument %q: loop %q/%v, goroutine engine %q/%v", raw, name, got, gok, want, wok)
	}
}

// FuzzLoopQuery holds the loop's query lookup to the goroutine engine's.
func FuzzLoopQuery(f *testing.F) {
	for _, s := range []string{"id=42&name=alice", "q=a+b%2Fc&q=2", "%41=%42", "x=%", "&=&"} {
		f.Add(s, "q")
	}
	f.Fuzz(func(t *testing.T, raw, name string) {
		checkQuery(t, raw, name)
	})
}

func TestAppendReply(t *testing.T) {
	r := &Reply{Status: 429, Body: []byte("slow down\n"), Headers: []HeaderKV{{Name: "Retry-After", Value: "3"}}}
	for _, c := range []struct {
		head, closing bool
	}{{false, false}, {true, true}} {
		b := string(appendReply(nil, r, c.head, c.closing))
		want := "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 3\r\nContent-Length: 10\r\nContent-Type: text/plain; charset=utf-8\r\nDate: "
		if len(b) < len(want) || b[:len(want)] != want {
			t.Errorf("head %v: %q", c.head, b)
			continue
		}
		hasBody := bytes.HasSuffix([]byte(b), []byte("\r\n\r\nslow down\n"))
		hasClose := bytes.Contains([]byte(b), []byte("\r\nConnection: close\r\n"))
		if hasBody == c.head || hasClose != c.closing {
			t.Errorf("head %v closing %v: %q", c.head, c.closing, b)
		}
	}
	b := string(appendReply(nil, &Reply{Status: 302, Headers: []HeaderKV{{Name: "Location", Value: "/x"}}}, false, false))
	if bytes.Contains([]byte(b), []byte("Content-Type")) || !bytes.Contains([]byte(b), []byte("Content-Length: 0\r\n")) {
		t.Errorf("redirect reply: %q", b)
	}
}
