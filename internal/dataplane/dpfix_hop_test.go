package dataplane

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
)

// TestConnectionNamedFieldsRemoved: fields named in Connection are
// hop-by-hop (RFC 9110 7.6.1) and are removed both ways on the paths
// that parse heads, with each HTTP/1.1 engine: an HTTP/1.1 client's to
// HTTP/1.1 and h2c pools, an h2c client's to an HTTP/1.1 pool.
// TestEvloopConnectionNamedFields checks that the loops served a part.
func TestConnectionNamedFieldsRemoved(t *testing.T) {
	for _, engine := range engineNames {
		t.Run(engine, func(t *testing.T) { connectionNamedFieldsRemoved(t, engine) })
	}
}

// connectionNamedFieldsRemoved runs TestConnectionNamedFieldsRemoved with
// engine; it returns the server and the address of its HTTP/1.1-only
// listener (the event loop serves it when engine is EngineEvloop).
func connectionNamedFieldsRemoved(t *testing.T, engine string) (*Server, string) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "X-Hop, keep-alive")
		w.Header().Set("X-Hop", "secret")
		w.Header().Set("X-End", "kept")
		fmt.Fprintf(w, "x-req=%q x-keep=%q conn=%q", r.Header.Get("X-Req"), r.Header.Get("X-Keep"), r.Header.Get("Connection"))
	})}
	srv.Protocols = new(http.Protocols)
	srv.Protocols.SetHTTP1(true)
	srv.Protocols.SetUnencryptedHTTP2(true)
	go srv.Serve(ln)
	defer srv.Close()
	port, plainPort := freePort(t), freePort(t)
	s := startServer(t, h1AndH2CPools("h1", "h2", ln.Addr().String())+lbDoc([]string{listenerAt(port, "h2c: true"), listenerAt(plainPort)},
		"{match: {pathPrefix: /h2}, pool: h2}", "{pool: h1}"), Options{HTTP1Engine: engine})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	plain := fmt.Sprintf("127.0.0.1:%d", plainPort)
	check := func(name string, h http.Header, body string, h2pool bool) {
		t.Helper()
		if !strings.Contains(body, `x-req="" x-keep="1" conn=""`) {
			t.Fatalf("%s: origin saw %q: a field named in Connection passed", name, body)
		}
		if !h2pool && (h.Get("X-Hop") != "" || h.Get("X-End") != "kept") {
			t.Fatalf("%s: answer fields %v: X-Hop must go, X-End stay", name, h)
		}
	}
	for _, a := range []string{addr, plain} {
		for _, p := range []string{"/h1", "/h2"} {
			resp, body := rawHTTP1(t, a, "GET "+p+" HTTP/1.1\r\nHost: a\r\nConnection: X-Req, keep-alive\r\nX-Req: 1\r\nX-Keep: 1\r\n\r\n")
			check("http/1.1 client "+a+p, resp.Header, body, p == "/h2")
		}
	}
	req, _ := http.NewRequest("GET", "http://"+addr+"/h1", nil)
	req.Header.Set("X-Keep", "1")
	resp, err := h2cClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	check("h2c client", resp.Header, string(b), false)
	return s, plain
}
