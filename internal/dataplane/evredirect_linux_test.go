//go:build linux

package dataplane

import (
	"fmt"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestEnginesAgreeOnRedirects sends the same requests to redirect and
// direct-response routes on both engines and compares the answers (status, Location, fields,
// keep-alive); the loop answers them itself but for requests with a body
// and routes whose answers other features change.
func TestEnginesAgreeOnRedirects(t *testing.T) {
	origin := headerEcho(t)
	cfg := func(port int) string {
		return pool("a", hostOf(origin.URL)) + lbDoc([]string{listenerAt(port)},
			"{match: {pathPrefix: /old}, redirect: {path: /new, code: 301}}",
			"{match: {pathPrefix: /s}, redirect: {scheme: https, code: 308}}",
			"{match: {pathPrefix: /p}, redirect: {port: 8443}}",
			"{match: {pathPrefix: /h}, redirect: {host: other.test, stripQuery: true, code: 302}}",
			`{match: {pathPrefix: /x}, redirect: {host: "example.test", port: 9000, code: 307}}`,
			"{match: {pathPrefix: /c}, redirect: {code: 303}, responseHeaders: {set: [{name: Cache-Control, value: no-store}]}}",
			`{match: {path: /health}, directResponse: {status: 200, body: "ok\n", contentType: text/plain}}`,
			"{match: {path: /gone}, directResponse: {status: 410}}",
			`{match: {path: /teapot}, directResponse: {status: 418, body: "{\"short\": \"stout\"}"}}`,
			"{match: {pathPrefix: /}, pool: a}")
	}
	regs := map[string]*prometheus.Registry{}
	addrs, servers := startEngines(t, cfg, func(engine string) Options {
		regs[engine] = prometheus.NewRegistry()
		return Options{Metrics: regs[engine]}
	})
	convs := [][]string{
		{
			"GET /old/x?y=1 HTTP/1.1\r\nHost: shop.test\r\n\r\n",
			"GET /s/a?z HTTP/1.1\r\nHost: shop.test:8080\r\n\r\n",
			"GET /p/b?q=%20 HTTP/1.1\r\nHost: shop.test:8080\r\n\r\n",
			"GET /p/b HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n",
			"HEAD /h/c?q=1 HTTP/1.1\r\nHost: shop.test\r\n\r\n",
			"GET /x HTTP/1.1\r\nHost: shop.test\r\n\r\n",
			"GET /fwd HTTP/1.1\r\nHost: shop.test\r\n\r\n",
			"GET /health HTTP/1.1\r\nHost: shop.test\r\n\r\n",
			"HEAD /health HTTP/1.1\r\nHost: shop.test\r\n\r\n",
			"GET /gone HTTP/1.1\r\nHost: shop.test\r\n\r\n",
			"GET /teapot HTTP/1.1\r\nHost: shop.test\r\n\r\n",
			"GET /old HTTP/1.1\r\nHost: shop.test\r\nConnection: close\r\n\r\n",
		},
		{"POST /old HTTP/1.1\r\nHost: shop.test\r\nContent-Length: 2\r\n\r\nok", "GET /old HTTP/1.1\r\nHost: shop.test\r\n\r\n"},
		{"GET /c HTTP/1.1\r\nHost: shop.test\r\n\r\n"},
	}
	for i, reqs := range convs {
		sameAnswers(t, addrs, fmt.Sprintf("conversation %d", i), reqs...)
	}
	// Pipelined: two redirects and a forwarded request in one write.
	var outs []string
	for _, engine := range engineNames {
		b := rawExchange(t, addrs[engine], "GET /old/1 HTTP/1.1\r\nHost: a\r\n\r\nGET /s/2 HTTP/1.1\r\nHost: a\r\n\r\nGET /fwd/3 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
		var lines []string
		for _, l := range strings.Split(b, "\r\n") {
			if strings.HasPrefix(l, "HTTP/1.1 ") || strings.HasPrefix(l, "Location: ") || strings.HasPrefix(l, "GET ") {
				lines = append(lines, l)
			}
		}
		outs = append(outs, strings.Join(lines, "|"))
	}
	if outs[0] != outs[1] || strings.Count(outs[1], "Location: ") != 2 || !strings.Contains(outs[1], "GET /fwd/3") {
		t.Errorf("pipelined\ngoroutine: %q\nevloop:    %q", outs[0], outs[1])
	}
	// Counted the same way: by route and status, request and response
	// body bytes.
	counters := func(reg *prometheus.Registry) string {
		return metricDump(t, reg, func(name string) bool { return strings.HasPrefix(name, "meridian_http_re") })
	}
	g, e := counters(regs[EngineGoroutine]), counters(regs[EngineEvloop])
	if g != e || !strings.Contains(g, "response_body_bytes") {
		t.Errorf("metrics differ\ngoroutine:\n%s\nevloop:\n%s", g, e)
	}
	// The loop answered the first conversation (7 redirects, 4 direct
	// answers and the forwarded request) and the pipelined requests; the
	// request with a body and the /c route were handed off.
	if st := servers[EngineEvloop].evStats(t, addrs[EngineEvloop]); st.Requests != 15 || st.Handoffs != 2 {
		t.Errorf("the event loop served %d requests and handed off %d, want 15 and 2", st.Requests, st.Handoffs)
	}
}
