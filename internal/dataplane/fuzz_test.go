package dataplane

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// FuzzHTTP1Smuggling sends arbitrary bytes to Meridian and checks that the
// origin never sees more requests than the client got answers from it: a
// request hidden inside another one (smuggling) would show up as an origin
// request without a matching response.
func FuzzHTTP1Smuggling(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 44\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n\r\n0\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nContent-Length: 5\r\n\r\nGET /x HTTP/1.1\r\n\r\n",
		"GET / HTTP/1.1\nHost: a\n\n",
		"GET / HTTP/1.1\r\nHost: a\r\n\nGET /x HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\n\r\nGET /x HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\na\nbGET /x HTTP/1.1\nHost: a\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	for _, v := range h1Vectors { // the conformance table (h1conform_test.go)
		f.Add([]byte(v.req))
	}
	var hits atomic.Int64
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A request whose streamed body the proxy gave up on (it broke)
		// reaches the origin cut short: that one is no request.
		if _, err := io.Copy(io.Discard, r.Body); err == nil {
			hits.Add(1)
		}
		w.Header().Set("X-From-Origin", "1")
	}))
	defer origin.Close()
	port := freePort(f)
	startServer(f, pool("a", hostOf(origin.URL))+lbYAML(port, "a"), Options{})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	f.Fuzz(func(t *testing.T, in []byte) {
		before := hits.Load()
		c := dialFor(t, addr, 3*time.Second)
		_, _ = c.Write(in)
		// Half-close: the proxy answers what it parsed, then closes.
		_ = c.(*net.TCPConn).CloseWrite()
		out, _ := io.ReadAll(c)
		c.Close()
		// Let the origin finish counting requests that were forwarded.
		time.Sleep(10 * time.Millisecond)
		answers := int64(strings.Count(string(out), "X-From-Origin: 1"))
		if got := hits.Load() - before; got > answers {
			t.Fatalf("origin saw %d requests, client got %d answers from it\ninput %q\noutput %q", got, answers, in, out)
		}
	})
}
