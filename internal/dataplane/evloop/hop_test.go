//go:build linux

package evloop

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
)

// hopNames are more options than a head keeps apart (connOptions.names).
var hopNames = func() []string {
	var ns []string
	for i := 1; i <= 10; i++ {
		ns = append(ns, fmt.Sprintf("X-O%d", i))
	}
	return ns
}()

// startHopOrigin runs an origin that answers with the Connection field of
// the query's conn parameter and a field of each name it lists, and tells
// in its body which X-O fields and how many body bytes it got.
func startHopOrigin(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		var seen []string
		for _, n := range hopNames {
			if v := r.Header.Get(n); v != "" {
				seen = append(seen, n)
			}
		}
		body := fmt.Sprintf("seen=%v len=%d", seen, len(b))
		q := r.URL.Query()
		if conn := q.Get("conn"); conn != "" {
			w.Header().Set("Connection", conn)
			for _, n := range strings.Split(conn, ",") {
				if n = strings.TrimSpace(n); n != "Content-Length" && n != "Transfer-Encoding" {
					w.Header().Set(n, "secret")
				}
			}
		}
		w.Header().Set("X-End", "kept")
		switch q.Get("framing") {
		case "length":
			w.Header().Set("Content-Length", fmt.Sprint(len(body)))
			io.WriteString(w, body)
		case "chunked":
			io.WriteString(w, body[:3])
			w.(http.Flusher).Flush()
			io.WriteString(w, body[3:])
		default:
			io.WriteString(w, body)
		}
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// TestFieldsNamedInConnectionRemoved: fields named in a Connection field
// are connection-specific (RFC 9110 7.6.1): the loop forwards them neither
// to the origin nor to the client, however many there are, and keeps the
// framing fields, which frame the bytes it forwards as they came.
func TestFieldsNamedInConnectionRemoved(t *testing.T) {
	addr := startProxy(t, startHopOrigin(t))
	c := dial(t, addr)
	many := strings.Join(hopNames, ", ")
	for _, tc := range []struct {
		name, conn, framing string
		gone                []string
	}{
		{"one", "X-Hop", "", []string{"X-Hop"}},
		{"more than kept apart", many, "", hopNames},
		{"content-length named", "Content-Length, X-Hop", "length", []string{"X-Hop"}},
		{"transfer-encoding named", "Transfer-Encoding, X-Hop", "chunked", []string{"X-Hop"}},
	} {
		resp, body := c.roundTrip(t, "GET /?framing="+tc.framing+"&conn="+strings.ReplaceAll(tc.conn, " ", "")+" HTTP/1.1\r\nHost: a\r\n\r\n", "GET")
		if resp.StatusCode != 200 || body != "seen=[] len=0" {
			t.Fatalf("%s: %d %q", tc.name, resp.StatusCode, body)
		}
		for _, n := range tc.gone {
			if v := resp.Header.Get(n); v != "" {
				t.Errorf("%s: the client got %s: %q, named in the origin's Connection field", tc.name, n, v)
			}
		}
		if resp.Header.Get("X-End") != "kept" || resp.Close {
			t.Errorf("%s: answer fields %v (close %v): X-End must stay, the connection too", tc.name, resp.Header, resp.Close)
		}
	}
	// The request side: more names than kept apart, and Content-Length
	// named too, which still frames the body the origin gets.
	req := "POST /?framing=length HTTP/1.1\r\nHost: a\r\nConnection: " + many + ", Content-Length\r\nContent-Length: 4\r\n"
	for _, n := range hopNames {
		req += n + ": 1\r\n"
	}
	resp, body := c.roundTrip(t, req+"\r\nabcd", "POST")
	if resp.StatusCode != 200 || body != "seen=[] len=4" {
		t.Fatalf("request with %d options in Connection: %d %q", len(hopNames)+1, resp.StatusCode, body)
	}
	// Still one exchange per answer on the same connection.
	if resp, body := c.roundTrip(t, "GET /?framing=length HTTP/1.1\r\nHost: a\r\n\r\n", "GET"); resp.StatusCode != 200 || body != "seen=[] len=0" {
		t.Fatalf("after: %d %q", resp.StatusCode, body)
	}
}
