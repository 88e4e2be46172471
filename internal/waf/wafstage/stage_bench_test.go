package wafstage

import (
	"bytes"
	"net/netip"
	"syscall"
	"testing"
	"time"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/internal/dataplane"
	"github.com/meridian-platform/meridian/internal/waf"
)

// fieldList is a dataplane.Headers over a list of fields, standing in for
// the engine's header map where the stage is driven without a listener.
type fieldList struct{ kv [][2][]byte }

func (h *fieldList) Peek(name string) ([]byte, bool) {
	for _, f := range h.kv {
		if bytes.EqualFold(f[0], []byte(name)) {
			return f[1], true
		}
	}
	return nil, false
}
func (h *fieldList) Set(name, value string) { h.Del(name); h.Add(name, value) }
func (h *fieldList) SetBytes(name string, value []byte) {
	h.Del(name)
	h.kv = append(h.kv, [2][]byte{[]byte(name), value})
}
func (h *fieldList) Add(name, value string) {
	h.kv = append(h.kv, [2][]byte{[]byte(name), []byte(value)})
}
func (h *fieldList) Del(name string) {
	h.kv = deleteFunc(h.kv, func(f [2][]byte) bool { return bytes.EqualFold(f[0], []byte(name)) })
}
func (h *fieldList) VisitAll(f func(name, value []byte)) {
	for _, kv := range h.kv {
		f(kv[0], kv[1])
	}
}

func deleteFunc(kv [][2][]byte, del func([2][]byte) bool) [][2][]byte {
	out := kv[:0]
	for _, f := range kv {
		if !del(f) {
			out = append(out, f)
		}
	}
	return out
}

// h1Exchange builds the exchange the HTTP/1.1 engine would hand the stage
// for a request head (the raw block and the parsed view of it).
func h1Exchange(tb testing.TB, method, target, proto string, head string) *dataplane.Exchange {
	tb.Helper()
	x := &dataplane.Exchange{Method: []byte(method), RawTarget: []byte(target), Proto: proto,
		RawHeaders: []byte(head), Scheme: "http", RequestID: []byte("bench"),
		Peer: netip.MustParseAddrPort("198.51.100.7:40000"), Client: netip.MustParseAddr("198.51.100.7")}
	path, query, _ := bytes.Cut(x.RawTarget, []byte("?"))
	x.Path, x.RawQuery = path, query
	h := &fieldList{}
	x.VisitRawHeaders(func(n, v []byte) {
		h.kv = append(h.kv, [2][]byte{n, v})
		if bytes.EqualFold(n, []byte("host")) {
			x.Host = v
		}
	})
	x.ReqHeaders = h
	return x
}

const benchHead = "Host: shop.example.com\r\n" +
	"User-Agent: Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36\r\n" +
	"Accept: application/json, text/plain, */*\r\n" +
	"Accept-Language: en-US,en;q=0.9\r\n" +
	"Accept-Encoding: gzip, deflate, br\r\n" +
	"Cookie: session=3f2a9c1e77b04d1a; theme=dark\r\n" +
	"Referer: https://shop.example.com/catalog\r\n" +
	"Connection: keep-alive\r\n\r\n"

// BenchmarkStageGET drives the stage's request-head and done callbacks for
// a benign GET with eight headers (phases 1, 2 and 5 of the WAF plus the
// stage's own work of feeding it).
func BenchmarkStageGET(b *testing.B) { benchStage(b, benchHead) }

// BenchmarkStageGET3 is BenchmarkStageGET with the three header fields of
// the waf package's BenchmarkBenignGET: the difference between the two is
// the stage's own cost (the other five fields are real work for the rules).
func BenchmarkStageGET3(b *testing.B) {
	benchStage(b, "Host: shop.example.com\r\n"+
		"User-Agent: Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36\r\n"+
		"Accept: application/json, text/plain, */*\r\n\r\n")
}

func benchStage(b *testing.B, head string) {
	w, err := waf.Compile(v1.AppFirewallSpec{})
	if err != nil {
		b.Fatal(err)
	}
	s := New("bench", "t/bench", w, nil, Options{Concurrency: -1}).(dataplane.RequestHeadersFilter)
	x := h1Exchange(b, "GET", "/api/users?id=42&name=alice", "HTTP/1.1", head)
	b.ReportAllocs()
	cpu0 := cpuTime()
	for b.Loop() {
		if a := s.OnRequestHeaders(x); a != dataplane.Continue {
			b.Fatalf("benign request refused: %d", x.Reply.Status)
		}
		s.(dataplane.DoneHook).OnDone(x)
	}
	// CPU time per request (all threads, GC included): steadier than
	// ns/op on a shared machine.
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
