package dataplane

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestHTTP10ClientNeverChunked: an HTTP/1.0 client cannot read chunked
// (RFC 9112 6.1). An answer of unknown length reaches it framed by
// Content-Length when it is short, from HTTP/1.1 and h2c pools, streamed
// routes included, and a keep-alive HTTP/1.0 connection carries a second
// request; an event stream reaches it as it comes, delimited by the
// connection's close (TestHTTP10StreamDelimitedByClose has one that goes
// on).
func TestHTTP10ClientNeverChunked(t *testing.T) {
	o := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", r.URL.Query().Get("type"))
		fmt.Fprint(w, "data: 1\n\n")
		w.(http.Flusher).Flush() // no Content-Length: chunked from the origin
		fmt.Fprint(w, "data: 2\n\n")
	}))
	startH2C(t, o, true)
	for _, engine := range engineNames {
		t.Run(engine, func(t *testing.T) {
			port := freePort(t)
			startServer(t, h1AndH2CPools("h1", "h2", hostOf(o.URL))+
				lbDoc([]string{listenerAt(port)}, "{match: {pathPrefix: /h2}, pool: h2}", "{pool: h1}"), Options{HTTP1Engine: engine})
			for _, path := range []string{"/h1", "/h2"} {
				for _, typ := range []string{"text/plain", "text/event-stream"} {
					sse := typ == "text/event-stream"
					c := dialFor(t, fmt.Sprintf("127.0.0.1:%d", port), 5*time.Second)
					br := bufio.NewReader(c)
					for i := 0; i < 2; i++ {
						// (Accept: text/event-stream makes the HTTP/1.1
						// pool stream the answer.)
						fmt.Fprintf(c, "GET %s?type=%s HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\nAccept: text/event-stream\r\n\r\n", path, typ)
						resp, err := http.ReadResponse(br, nil)
						if err != nil {
							t.Fatalf("%s %s request %d: %v", path, typ, i, err)
						}
						b, err := io.ReadAll(resp.Body)
						resp.Body.Close()
						length := int64(len(b))
						if sse {
							length = -1
						}
						if err != nil || len(resp.TransferEncoding) > 0 || resp.ContentLength != length || string(b) != "data: 1\n\ndata: 2\n\n" {
							t.Fatalf("%s %s request %d: TE %v, length %d, body %q, %v", path, typ, i, resp.TransferEncoding, resp.ContentLength, b, err)
						}
						if sse {
							if !resp.Close {
								t.Fatalf("%s %s: an answer delimited by the close without Connection: close", path, typ)
							}
							break
						}
						if resp.Close || !strings.EqualFold(resp.Header.Get("Connection"), "keep-alive") {
							t.Fatalf("%s %s request %d: keep-alive not kept (Connection %q)", path, typ, i, resp.Header.Get("Connection"))
						}
					}
					c.Close()
				}
			}
		})
	}
}
