package waf

import (
	"fmt"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "github.com/meridian-platform/meridian/api/v1"
)

var benignHeaders = [][2]string{
	{"Host", "shop.example.com"},
	{"User-Agent", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"},
	{"Accept", "application/json, text/plain, */*"},
}

// jsonBody40 is a 2 KiB JSON object of 40 string fields holding ordinary
// English words (the benchmark request of issue 5).
func jsonBody40() string {
	words := []string{"garden", "window", "morning", "river", "yellow", "friendly", "kitchen", "travel", "simple", "number"}
	var b strings.Builder
	b.WriteString("{")
	for i := 0; i < 40; i++ {
		if i > 0 {
			b.WriteString(",")
		}
		v := strings.Repeat(words[i%len(words)]+" ", 4)
		fmt.Fprintf(&b, `"field%02d":"%s"`, i, strings.TrimSpace(v)+" and more")
	}
	b.WriteString("}")
	return b.String()
}

func benchRequest(b *testing.B, w *WAF, method, uri, ctype string, body []byte) {
	benchRequests(b, w, method, []string{uri}, ctype, body)
}

// benchRequests sends the requests to uris in turn.
func benchRequests(b *testing.B, w *WAF, method string, uris []string, ctype string, body []byte) {
	client := netip.MustParseAddrPort("198.51.100.7:40000")
	server := netip.MustParseAddrPort("127.0.0.1:8080")
	b.ReportAllocs()
	cpu0 := cpuTime()
	n := 0
	for b.Loop() {
		uri := uris[n%len(uris)]
		n++
		tx := w.NewTx("")
		tx.Connection(client, server)
		v := tx.RequestHeaders(method, uri, "HTTP/1.1", "shop.example.com", func(add func(n, v string)) {
			for _, h := range benignHeaders {
				add(h[0], h[1])
			}
			if ctype != "" {
				add("Content-Type", ctype)
				add("Content-Length", fmt.Sprint(len(body)))
			}
		})
		if v == nil {
			v = tx.RequestBody(body, true)
		}
		if v == nil {
			v = tx.ResponseHeaders(200, "HTTP/1.1", func(add func(n, v string)) { add("Content-Type", "application/json") })
		}
		if v != nil {
			b.Fatalf("benign request blocked: %+v", v)
		}
		if hits := tx.Close(); len(hits) > 0 {
			b.Fatalf("benign request matched %v", IDs(hits))
		}
	}
	// CPU time per request (user + system, all threads, GC included):
	// steadier than ns/op on a machine shared with other jobs.
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func BenchmarkBenignGET(b *testing.B) {
	w := mustWAF(b, v1.AppFirewallSpec{})
	benchRequest(b, w, "GET", "/api/users?id=42&name=alice", "", nil)
}

func BenchmarkBenignJSONPost(b *testing.B) {
	w := mustWAF(b, v1.AppFirewallSpec{})
	body := []byte(jsonBody40())
	if len(body) < 1900 || len(body) > 2200 {
		b.Fatalf("body is %d bytes, want about 2 KiB", len(body))
	}
	benchRequest(b, w, "POST", "/api/users", "application/json", body)
}

func BenchmarkBenignGETSlowPath(b *testing.B) {
	w := mustWAF(b, v1.AppFirewallSpec{}).WithoutFastPath()
	benchRequest(b, w, "GET", "/api/users?id=42&name=alice", "", nil)
}

func BenchmarkBenignJSONPostSlowPath(b *testing.B) {
	w := mustWAF(b, v1.AppFirewallSpec{}).WithoutFastPath()
	benchRequest(b, w, "POST", "/api/users", "application/json", []byte(jsonBody40()))
}

// BenchmarkBenignGETLean is BenchmarkBenignGET with every transaction in
// the lean Coraza instance (no native transactions): the difference is
// what runstate.go saves.
func BenchmarkBenignGETLean(b *testing.B) {
	w := *mustWAF(b, v1.AppFirewallSpec{})
	w.native = nil
	benchRequest(b, &w, "GET", "/api/users?id=42&name=alice", "", nil)
}

// BenchmarkBenignGETNoValCache is BenchmarkBenignGET without the verdict
// cache (valcache.go).
func BenchmarkBenignGETNoValCache(b *testing.B) {
	w := mustWAF(b, v1.AppFirewallSpec{}).withoutValCache()
	benchRequest(b, w, "GET", "/api/users?id=42&name=alice", "", nil)
}

// BenchmarkBenignGETVaried is BenchmarkBenignGET with 16,384 distinct
// argument values in turn (ids and names), more than the verdict cache
// holds: the arguments are checked anew in every request, the header
// values come from the cache.
func BenchmarkBenignGETVaried(b *testing.B) {
	w := mustWAF(b, v1.AppFirewallSpec{})
	words := []string{"alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi"}
	uris := make([]string, 1<<14)
	for i := range uris {
		uris[i] = fmt.Sprintf("/api/users?id=%d&name=%s%d", 100000+i*7919%900000, words[i%len(words)], i)
	}
	benchRequests(b, w, "GET", uris, "", nil)
}
