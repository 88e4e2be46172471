//go:build linux

package dataplane

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/internal/dataplane/config"
	"github.com/meridian-platform/meridian/internal/dataplane/dptest"
	"github.com/meridian-platform/meridian/internal/dataplane/evloop"
)

// lockedBuffer is an access-log destination the test reads while the
// server writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) lines() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Split(strings.TrimSuffix(b.b.String(), "\n"), "\n")
}

// TestEnginesAgreeOnAccessLog sends the same requests to a node served by
// the goroutine engine and to one served by the event loop, with access
// logs on (every field, and the default fields), and compares the lines
// field by field; the event loop must have served the plain requests
// itself. Times and durations are checked for their form (they cannot be
// equal), the request id against the one the origin saw.
func TestEnginesAgreeOnAccessLog(t *testing.T) {
	// The origin answers with the request id it was sent.
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("X-Rid", r.Header.Get("X-Request-Id"))
		if r.URL.Path == "/status" {
			w.WriteHeader(418)
		}
		fmt.Fprintf(w, "%s %s\n", r.Method, r.URL.Path)
	}))
	t.Cleanup(origin.Close)
	all := strings.Join(append([]string{"requestId", "status"}, v1.AccessLogFields...), ", ")
	cfg := func(port int) string {
		return pool("a", hostOf(origin.URL)) + fmt.Sprintf(`---
apiVersion: meridian/v1
kind: HTTPLoadBalancer
metadata: {name: every, namespace: t}
spec:
  domains: ["shop.test"]
  listeners: [{port: %[1]d, address: 127.0.0.1}]
  accessLog: {enabled: true, fields: [%[2]s]}
  routes:
  - {match: {pathPrefix: /old}, redirect: {path: /new, code: 301}}
  - {match: {pathPrefix: /}, pool: a}
---
apiVersion: meridian/v1
kind: HTTPLoadBalancer
metadata: {name: plain, namespace: t}
spec:
  domains: ["plain.test"]
  listeners: [{port: %[1]d, address: 127.0.0.1}]
  accessLog: {enabled: true}
  defaultPool: a
`, port, all)
	}
	logs := map[string]*lockedBuffer{}
	addrs, servers := startEngines(t, cfg, func(engine string) Options {
		logs[engine] = &lockedBuffer{}
		return Options{AccessLog: logs[engine]}
	})
	convs := [][]string{
		{
			"GET /a/b?x=1&y=%22q%22 HTTP/1.1\r\nHost: shop.test\r\nUser-Agent: agent \"007\"\r\nReferer: http://ref.test/\r\nX-Request-Id: forged\r\n\r\n",
			"GET /status HTTP/1.1\r\nHost: shop.test\r\n\r\n",
			"HEAD /h HTTP/1.1\r\nHost: shop.test\r\n\r\n",
			"POST /p HTTP/1.1\r\nHost: shop.test\r\nContent-Length: 5\r\n\r\nhello",
			"POST /c HTTP/1.1\r\nHost: shop.test:8080\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
			"GET /d HTTP/1.1\r\nHost: plain.test\r\nUser-Agent: x\r\n\r\n",
			"GET /old/r?q HTTP/1.1\r\nHost: shop.test\r\n\r\n", // the loop's own answer
		},
		// Handed off mid-connection: the goroutine engine logs the rest.
		{
			"GET /1 HTTP/1.1\r\nHost: shop.test\r\n\r\n",
			"GET http://shop.test/abs HTTP/1.1\r\nHost: shop.test\r\n\r\n",
			"GET /2 HTTP/1.1\r\nHost: shop.test\r\nConnection: close\r\n\r\n",
		},
		{"GET /ten HTTP/1.0\r\nHost: plain.test\r\n\r\n"},
	}
	answers := map[string][]string{}
	for _, engine := range engineNames {
		for _, reqs := range convs {
			answers[engine] = append(answers[engine], exchangeRaw(t, addrs[engine], reqs...)...)
		}
	}
	want := 0
	for _, reqs := range convs {
		want += len(reqs)
	}
	lines := waitLogLines(t, servers, logs, want)
	if st := servers[EngineEvloop].evStats(t, addrs[EngineEvloop]); st.Requests != 8 {
		t.Errorf("the event loop served %d requests, want 8", st.Requests)
	}
	// The request ids logged are those the origin was sent (and one for
	// the redirect, which did not reach it).
	ridSeen := regexp.MustCompile(`(?m)^X-Rid: (.*)$`)
	for engine, as := range answers {
		sent := map[string]bool{}
		for _, a := range as {
			for _, m := range ridSeen.FindAllStringSubmatch(a, -1) {
				sent[m[1]] = true
			}
		}
		logged := map[string]bool{}
		for _, line := range lines[engine] {
			var m map[string]any
			_ = json.Unmarshal([]byte(line), &m)
			if id, _ := m["requestId"].(string); id != "" {
				if logged[id] {
					t.Errorf("%s engine: request id %s logged twice", engine, id)
				}
				logged[id] = true
			}
		}
		for id := range sent {
			if !logged[id] {
				t.Errorf("%s engine: request id %q sent to the origin is not logged", engine, id)
			}
		}
		if len(sent) != 10 || len(logged) != 11 {
			t.Errorf("%s engine: %d request ids sent to the origin, %d logged; want 10 and 11", engine, len(sent), len(logged))
		}
	}
	compareLogLines(t, lines)
}

// waitLogLines waits for want access-log lines of each engine and returns
// them ordered by path.
func waitLogLines(t *testing.T, servers map[string]*Server, logs map[string]*lockedBuffer, want int) map[string][]string {
	t.Helper()
	lines := map[string][]string{}
	for _, engine := range engineNames {
		for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			servers[engine].alog.Flush()
			if lines[engine] = logs[engine].lines(); len(lines[engine]) >= want || time.Now().After(deadline) {
				break
			}
		}
		if len(lines[engine]) != want {
			t.Fatalf("%s engine: %d lines, want %d:\n%s", engine, len(lines[engine]), want, strings.Join(lines[engine], "\n"))
		}
		// The loops write a line once the answer is sent: the lines of
		// different connections may come in any order. The paths are
		// all different.
		sort.Slice(lines[engine], func(i, j int) bool {
			return pathOf(lines[engine][i]) < pathOf(lines[engine][j])
		})
	}
	return lines
}

// compareLogLines compares the lines of the two engines field by field:
// the same fields in the same order, the same values but for times,
// durations and request ids, whose form is checked.
func compareLogLines(t *testing.T, lines map[string][]string) {
	t.Helper()
	rid := regexp.MustCompile(`^[0-9a-f]{32}$`)
	start := time.Now().Add(-time.Minute)
	for i := range lines[EngineGoroutine] {
		var fields [2][]string
		var vals [2]map[string]any
		for k, engine := range engineNames {
			line := lines[engine][i]
			// The fields in the order configured.
			dec := json.NewDecoder(strings.NewReader(line))
			if _, err := dec.Token(); err != nil {
				t.Fatalf("%s line %d: %v: %s", engine, i, err, line)
			}
			for dec.More() {
				tok, err := dec.Token()
				if err != nil {
					t.Fatalf("%s line %d: %v: %s", engine, i, err, line)
				}
				fields[k] = append(fields[k], tok.(string))
				var skip any
				if err := dec.Decode(&skip); err != nil {
					t.Fatalf("%s line %d: %v: %s", engine, i, err, line)
				}
			}
			if err := json.Unmarshal([]byte(line), &vals[k]); err != nil {
				t.Fatalf("%s line %d: %v: %s", engine, i, err, line)
			}
			m := vals[k]
			if ts, ok := m["time"].(string); ok {
				tm, err := time.Parse(time.RFC3339Nano, ts)
				if err != nil || tm.Before(start) || tm.After(time.Now()) || !strings.HasSuffix(ts, "Z") {
					t.Errorf("%s line %d: time %q", engine, i, ts)
				}
				delete(m, "time")
			}
			for _, d := range []string{"duration", "upstreamDuration"} {
				if v, ok := m[d]; ok {
					if f, ok := v.(float64); !ok || f < 0 || f > 10 {
						t.Errorf("%s line %d: %s %v", engine, i, d, v)
					}
					delete(m, d)
				}
			}
			if id, ok := m["requestId"]; ok {
				if s, _ := id.(string); !rid.MatchString(s) {
					t.Errorf("%s line %d: requestId %v", engine, i, id)
				}
				delete(m, "requestId")
			}
		}
		if strings.Join(fields[0], ",") != strings.Join(fields[1], ",") {
			t.Errorf("line %d: fields differ\ngoroutine: %v\nevloop:    %v", i, fields[0], fields[1])
		}
		g, e := fmt.Sprint(sortedMap(vals[0])), fmt.Sprint(sortedMap(vals[1]))
		if g != e {
			t.Errorf("line %d differs\ngoroutine: %s\nevloop:    %s", i, g, e)
		}
	}
}

func pathOf(line string) string {
	var m struct{ Path string }
	_ = json.Unmarshal([]byte(line), &m)
	return m.Path
}

func sortedMap(m map[string]any) []string {
	var out []string
	for k, v := range m {
		out = append(out, fmt.Sprintf("%s=%v", k, v))
	}
	sort.Strings(out)
	return out
}

// BenchmarkEvLog is the event loop's cost of one access-log line with
// every field: the record at routing and the line at the end.
func BenchmarkEvLog(b *testing.B) {
	w := NewAccessLogWriter(io.Discard)
	defer w.Close()
	rt := &config.Route{Name: "t/lb#0", Pool: &config.Pool{Name: "a"}}
	st := &accessLogStage{fields: v1.AccessLogFields, w: w, lb: "lb", ns: "t", userAgent: true, referer: true}
	er := &evRoute{rt: rt, log: st}
	e := &evLog{w: w, buf: make([]byte, 0, evLogChunk+2048)}
	hdrs := []byte("Host: shop.test\r\nUser-Agent: bench/1.0\r\nAccept: */*\r\nReferer: http://ref.test/\r\n")
	req := &evloop.Request{Method: []byte("GET"), Target: []byte("/a/b?x=1"), Host: []byte("shop.test"), Path: []byte("/a/b"),
		Query: []byte("x=1"), Headers: hdrs, Peer: netip.MustParseAddrPort("10.1.2.3:40000")}
	t := evloop.Target{Origin: netip.MustParseAddrPort("10.0.0.1:8080"), Tag: er}
	id := []byte("0123456789abcdef0123456789abcdef")
	rec := make([]byte, 0, 256)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		rec = e.Begin(rec[:0], t, req, id, false)
		e.End(rec, er, evloop.Ended{Status: 200, Elapsed: time.Millisecond, BytesIn: 80, BytesOut: 19})
	}
}

// TestEnginesAgreeOnAccessLogTLS is TestEnginesAgreeOnAccessLog on a TLS
// listener, which the event loop serves too: the "tls" field is true.
func TestEnginesAgreeOnAccessLogTLS(t *testing.T) {
	ca, err := dptest.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	origin := headerEcho(t)
	cfg := func(port int) string {
		return certYAML(t, ca, "def", true, "shop.test") + pool("a", hostOf(origin.URL)) + fmt.Sprintf(`---
apiVersion: meridian/v1
kind: HTTPLoadBalancer
metadata: {name: lb, namespace: t}
spec:
  domains: ["shop.test"]
  listeners: [{port: %d, address: 127.0.0.1, tls: {certificateRef: def}}]
  accessLog: {enabled: true, fields: [%s]}
  defaultPool: a
`, port, strings.Join(v1.AccessLogFields, ", "))
	}
	logs := map[string]*lockedBuffer{}
	addrs, servers := startEngines(t, cfg, func(engine string) Options {
		logs[engine] = &lockedBuffer{}
		return Options{AccessLog: logs[engine]}
	})
	reqs := []string{
		"GET /a?q=1 HTTP/1.1\r\nHost: shop.test\r\nUser-Agent: tls-client\r\n\r\n",
		"POST /b HTTP/1.1\r\nHost: shop.test\r\nContent-Length: 3\r\n\r\nabc",
		"GET /c HTTP/1.1\r\nHost: shop.test\r\nConnection: close\r\n\r\n",
	}
	for _, engine := range engineNames {
		exchangeTLS(t, addrs[engine], &tls.Config{ServerName: "shop.test", RootCAs: ca.Pool, NextProtos: []string{"http/1.1"}}, reqs...)
	}
	lines := waitLogLines(t, servers, logs, len(reqs))
	for _, line := range lines[EngineEvloop] {
		if !strings.Contains(line, `"tls":true`) || !strings.Contains(line, `"protocol":"HTTP/1.1"`) {
			t.Errorf("evloop line without tls true: %s", line)
		}
	}
	compareLogLines(t, lines)
	if st := servers[EngineEvloop].evStats(t, addrs[EngineEvloop]); st.Requests != 3 {
		t.Errorf("the event loop served %d requests, want 3", st.Requests)
	}
}

// TestEvloopAccessLogFlushed checks that the lines the loops buffer reach
// the access log without more traffic (the writer's periodic flush), and
// all of them by the end of a shutdown.
func TestEvloopAccessLogFlushed(t *testing.T) {
	origin := headerEcho(t)
	port := freePort(t)
	out := &lockedBuffer{}
	s := startServer(t, pool("a", hostOf(origin.URL))+lbSpec(`["*"]`, []string{listenerAt(port)}, "accessLog: {enabled: true}", "defaultPool: a"),
		Options{HTTP1Engine: EngineEvloop, AccessLog: out})
	key := fmt.Sprintf("127.0.0.1:%d", port)
	get(t, "http://"+key+"/one", nil)
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline) && !strings.Contains(strings.Join(out.lines(), ""), `"path":"/one"`); {
		time.Sleep(10 * time.Millisecond)
	}
	if got := out.lines(); len(got) != 1 || !strings.Contains(got[0], `"path":"/one"`) {
		t.Fatalf("lines after a request: %q", got)
	}
	reqs := make([]string, 50)
	for i := range reqs {
		reqs[i] = fmt.Sprintf("GET /n%d HTTP/1.1\r\nHost: a\r\n\r\n", i)
	}
	exchangeRaw(t, key, reqs...)
	if st := s.evStats(t, key); st.Requests != 51 {
		t.Fatalf("the event loop served %d requests, want 51", st.Requests)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if got := out.lines(); len(got) != 51 {
		t.Fatalf("%d lines after shutdown, want 51", len(got))
	}
}
