//go:build linux

package dataplane

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/meridian-platform/meridian/internal/dataplane/evloop"
)

// headerEcho is an origin that answers with what it received: the method,
// target, protocol and every header (the request id reduced to its form).
func headerEcho(t *testing.T) *httptest.Server {
	idForm := regexp.MustCompile(`^[0-9a-f]{32}$`)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var lines []string
		for k, vs := range r.Header {
			v := strings.Join(vs, ",")
			if k == "X-Request-Id" {
				v = fmt.Sprintf("well-formed=%v", idForm.MatchString(v))
			}
			lines = append(lines, k+": "+v)
		}
		sort.Strings(lines)
		w.Header().Set("X-Origin", "1")
		w.Header().Set("Keep-Alive", "timeout=5")
		if r.URL.Path == "/status" {
			w.WriteHeader(418)
		}
		fmt.Fprintf(w, "%s %s %s host=%s te=%v cl=%d\n%s\nbody=%q\n", r.Method, r.RequestURI, r.Proto, r.Host,
			r.TransferEncoding, r.ContentLength, strings.Join(lines, "\n"), body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// exchangeRaw sends raw requests on one connection and returns each answer
// (status line, headers but Date, body) as text.
func exchangeRaw(t *testing.T, addr string, reqs ...string) []string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)
	var out []string
	for _, req := range reqs {
		if _, err := io.WriteString(c, req); err != nil {
			out = append(out, "write: "+err.Error())
			break
		}
		resp, err := http.ReadResponse(br, &http.Request{Method: strings.Fields(req)[0]})
		if err != nil {
			out = append(out, "read: "+err.Error())
			break
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var hs []string
		for k, vs := range resp.Header {
			if k == "Date" {
				continue
			}
			hs = append(hs, k+": "+strings.Join(vs, ","))
		}
		sort.Strings(hs)
		out = append(out, fmt.Sprintf("%d close=%v te=%v\n%s\n%s", resp.StatusCode, resp.Close, resp.TransferEncoding, strings.Join(hs, "\n"), body))
		if resp.Close {
			break
		}
	}
	return out
}

// TestEnginesAgree sends the same requests to a node served by the
// goroutine engine and to one served by the event loop, and compares what
// the client and the origin see; the event loop must have served the
// plain requests itself.
func TestEnginesAgree(t *testing.T) {
	origin := headerEcho(t)
	cfg := func(port int) string {
		return pool("a", hostOf(origin.URL)) + fmt.Sprintf(`---
apiVersion: meridian/v1
kind: HTTPLoadBalancer
metadata: {name: lb, namespace: t}
spec:
  domains: ["shop.test"]
  listeners: [{port: %d, address: 127.0.0.1}]
  routes:
  - {match: {pathPrefix: /old}, redirect: {path: /new, code: 301}}
  - {match: {pathPrefix: /}, pool: a}
`, port)
	}
	addrs := map[string]string{}
	servers := map[string]*Server{}
	for _, engine := range []string{EngineGoroutine, EngineEvloop} {
		port := freePort(t)
		servers[engine] = startServer(t, cfg(port), Options{HTTP1Engine: engine})
		addrs[engine] = fmt.Sprintf("127.0.0.1:%d", port)
	}
	convs := []struct {
		name string
		reqs []string
	}{
		{"keep-alive gets", []string{
			"GET /a?x=1 HTTP/1.1\r\nHost: shop.test\r\nX-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Proto: https\r\nX-Request-Id: forged\r\n\r\n",
			"GET /status HTTP/1.1\r\nHost: shop.test\r\nConnection: keep-alive, X-Drop\r\nX-Drop: 1\r\nTE: trailers\r\nProxy-Authorization: x\r\n\r\n",
			"HEAD /h HTTP/1.1\r\nHost: shop.test\r\n\r\n",
			"GET /last HTTP/1.1\r\nHost: shop.test\r\nConnection: close\r\n\r\n",
		}},
		{"bodies", []string{
			"POST /p HTTP/1.1\r\nHost: shop.test\r\nContent-Length: 5\r\n\r\nhello",
			"POST /c HTTP/1.1\r\nHost: shop.test\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
			"PUT /e HTTP/1.1\r\nHost: shop.test\r\nContent-Length: 0\r\n\r\n",
		}},
		{"handed off mid-connection", []string{
			"GET /1 HTTP/1.1\r\nHost: shop.test\r\n\r\n",
			"GET /old/x HTTP/1.1\r\nHost: shop.test\r\n\r\n",
			"GET /2 HTTP/1.1\r\nHost: shop.test\r\n\r\n",
		}},
		{"no load balancer", []string{"GET / HTTP/1.1\r\nHost: other.test\r\n\r\n"}},
		{"http/1.0", []string{"GET /ten HTTP/1.0\r\nHost: shop.test\r\n\r\n"}},
		{"expect", []string{"POST /x HTTP/1.1\r\nHost: shop.test\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nok"}},
		{"smuggling", []string{"POST / HTTP/1.1\r\nHost: shop.test\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"}},
		{"absolute form", []string{"GET http://shop.test/abs HTTP/1.1\r\nHost: x\r\n\r\n"}},
	}
	for _, cv := range convs {
		t.Run(cv.name, func(t *testing.T) {
			want := exchangeRaw(t, addrs[EngineGoroutine], cv.reqs...)
			got := exchangeRaw(t, addrs[EngineEvloop], cv.reqs...)
			if len(got) != len(want) {
				t.Fatalf("evloop: %d answers, goroutine: %d\nevloop: %q\ngoroutine: %q", len(got), len(want), got, want)
			}
			for i := range want {
				if got[i] != want[i] {
					t.Errorf("answer %d differs\nevloop:\n%s\ngoroutine:\n%s", i, got[i], want[i])
				}
			}
		})
	}
	st := servers[EngineEvloop].evStats(t, addrs[EngineEvloop])
	// keep-alive gets 4, bodies 3, mid-connection 1 (the rest after the
	// handoff is the goroutine engine's).
	if st.Requests < 8 || st.Handoffs < 5 {
		t.Fatalf("event loop served %d requests and handed off %d connections, want at least 8 and 5", st.Requests, st.Handoffs)
	}
}

// evStats returns the event-loop counters of the listener at key.
func (s *Server) evStats(t *testing.T, key string) evloop.Stats {
	t.Helper()
	s.mu.Lock()
	l := s.listeners[key]
	s.mu.Unlock()
	if l == nil || l.ev == nil {
		t.Fatalf("listener %s is not served by the event loop", key)
	}
	return l.ev.p.Stats()
}
