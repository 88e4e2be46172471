//go:build linux

package dataplane

import (
	"fmt"
	"testing"
)

// TestEnginesAgreeOnRewrites sends the same requests to routes with a
// prefix or host rewrite or request header changes on both engines and
// compares what the origin saw (target, Host, fields) and what the client
// got; the loop serves them itself but for paths with bytes the goroutine
// engine's library would escape, changes of fields it keeps, and response
// header changes.
func TestEnginesAgreeOnRewrites(t *testing.T) {
	origin := headerEcho(t)
	cfg := func(port int) string {
		return pool("a", hostOf(origin.URL)) + lbDocFor(`["shop.test"]`, []string{listenerAt(port)},
			"{match: {pathPrefix: /api}, pool: a, prefixRewrite: /v2}",
			"{match: {pathPrefix: /root/}, pool: a, prefixRewrite: /}",
			"{match: {path: /exact}, pool: a, prefixRewrite: /other, hostRewrite: internal.test}",
			"{match: {pathPrefix: /h}, pool: a, hostRewrite: backend.test}",
			"{match: {pathPrefix: /mod}, pool: a, prefixRewrite: /m, requestHeaders: {remove: [x-drop, X-Set-Removed], "+
				"set: [{name: X-Set, value: s1}, {name: X-Set-Removed, value: back}, {name: x-fresh, value: f}], "+
				`add: [{name: X-Keep, value: added}, {name: X-New, value: "n, 2"}]}}`,
			"{match: {pathPrefix: /ua}, pool: a, requestHeaders: {set: [{name: User-Agent, value: proxy}]}}",
			`{match: {pathPrefix: /resp}, pool: a, responseHeaders: {set: [{name: Cache-Control, value: "max-age=60"}]}}`,
			"{match: {pathPrefix: /}, pool: a}")
	}
	addrs, servers := startEngines(t, cfg, nil)
	var reqs []string
	for _, target := range []string{
		"/api/x?q=1&r=%20", "/api", "/api/", "/api/a/b/c", "/root/a/b", "/root/", "/exact?y=2", "/exact", "/h/z?", "/hz",
		"/api/a~b_c-d.e", "/api/a!b", "/api/a:b@c", "/h/a!b", "/other",
	} {
		reqs = append(reqs, "GET "+target+" HTTP/1.1\r\nHost: shop.test\r\nX-Keep: 1\r\n\r\n")
	}
	reqs = append(reqs, "POST /api/p HTTP/1.1\r\nHost: shop.test\r\nContent-Length: 3\r\n\r\nabc",
		"GET /mod/x?z=1 HTTP/1.1\r\nHost: shop.test\r\nX-Drop: 1\r\nx-set: old\r\nX-Set: second\r\nX-Set-Removed: r\r\nX-Keep: first\r\nX-DROP: 2\r\n\r\n",
		"GET /ua HTTP/1.1\r\nHost: shop.test\r\nUser-Agent: client\r\n\r\n",
		"GET /resp HTTP/1.1\r\nHost: shop.test\r\n\r\n")
	for i, req := range reqs {
		sameAnswers(t, addrs, fmt.Sprintf("request %d %q", i, req), req)
	}
	// Every request on its own connection: the three with "!", ":" and
	// "@" in a rewritten path are handed off, and those to /ua and /resp.
	if st := servers[EngineEvloop].evStats(t, addrs[EngineEvloop]); st.Requests != uint64(len(reqs)-5) || st.Handoffs != 5 {
		t.Errorf("the event loop served %d requests and handed off %d, want %d and 5", st.Requests, st.Handoffs, len(reqs)-5)
	}
}
