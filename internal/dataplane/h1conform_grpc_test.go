//go:build linux

package dataplane

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestAccessLogGRPCStatusHTTP1Client: an HTTP/1.1 client's gRPC calls to
// an HTTP/2 (h2c) pool (h1toh2.go) log the gRPC status the client got, as
// the HTTP/2 clients' calls of TestAccessLogGRPCStatus do: from the
// answer's trailers (in the chunked answer's trailer section), from the
// head of a Trailers-Only answer, as a response-trailer stage left it;
// null when the client got none (the proxy's own 502 or 504, a stream
// cut without trailers, a stage's reset) and for a plain request. On
// both HTTP/1.1 engines, with and without the stage.
func TestAccessLogGRPCStatusHTTP1Client(t *testing.T) {
	o := grpcOrigin(t)
	calls := []struct {
		name, path string
		grpc       bool
		want       string // the grpcStatus logged without the stage
		status     int    // the HTTP status the client gets
	}{
		{"ok", "/pkg.Svc/ok", true, "0", 200},
		{"notfound", "/pkg.Svc/notfound", true, "5", 200},
		{"only", "/pkg.Svc/only", true, "12", 200},
		{"rewrite", "/pkg.Svc/rewrite", true, "0", 200}, // 7 with the stage
		{"abort", "/pkg.Svc/abort", true, "0", 200},     // cut, null, with the stage
		{"unreachable", "/dead/pkg.Svc/ok", true, "null", 502},
		{"plain", "/plain", false, "null", 200},
	}
	for _, engine := range engineNames {
		for _, stage := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/stage=%v", engine, stage), func(t *testing.T) {
				opts, out, st := grpcStatusOptions(engine, stage)
				port := freePort(t)
				s := startServer(t, poolWith("g", hostOf(o.URL), "protocol: h2c")+poolWith("dead", deadAddr, "protocol: h2c")+
					lbSpec(`["*"]`, []string{listenerAt(port)}, "accessLog: {enabled: true, fields: [path, status, grpcStatus]}",
						"routes:\n  - {match: {pathPrefix: /dead/}, pool: dead}\n  - {pool: g}"), opts)
				addr := fmt.Sprintf("127.0.0.1:%d", port)
				want := map[string]string{}
				for _, c := range calls {
					w := c.want
					switch {
					case stage && c.name == "rewrite":
						w = "7"
					case stage && c.name == "abort":
						w = "null"
					}
					want[c.path] = w
					req := "GET " + c.path + " HTTP/1.1\r\nHost: a\r\nX-Case: " + c.name + "\r\n\r\n"
					if c.grpc {
						req = "POST " + c.path + " HTTP/1.1\r\nHost: a\r\nX-Case: " + c.name + "\r\nContent-Type: application/grpc\r\nTE: trailers\r\n" +
							"Content-Length: 5\r\n\r\n\x00\x00\x00\x00\x00"
					}
					cn := dialFor(t, addr, 10*time.Second)
					if _, err := io.WriteString(cn, req); err != nil {
						t.Fatal(err)
					}
					resp, err := http.ReadResponse(bufio.NewReader(cn), &http.Request{Method: "POST"})
					if err != nil {
						t.Fatalf("%s: %v", c.name, err)
					}
					_, err = io.ReadAll(resp.Body)
					resp.Body.Close()
					cn.Close()
					if stage && c.name == "abort" {
						if err == nil {
							t.Fatalf("%s: the answer ended normally (trailers %v), want it cut", c.name, resp.Trailer)
						}
						continue
					}
					if err != nil || resp.StatusCode != c.status {
						t.Fatalf("%s: %d, %v; want %d", c.name, resp.StatusCode, err, c.status)
					}
					got := resp.Trailer.Get("Grpc-Status")
					if got == "" {
						got = resp.Header.Get("Grpc-Status")
					}
					if got == "" {
						got = "null"
					}
					if got != w && c.status == 200 {
						t.Fatalf("%s: the client got grpc-status %s, want %s", c.name, got, w)
					}
				}
				var lines []string
				for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(10 * time.Millisecond) {
					s.alog.Flush()
					if lines = out.lines(); len(lines) >= len(calls) || time.Now().After(deadline) {
						break
					}
				}
				got := map[string]string{}
				for _, line := range lines {
					var m struct {
						Path       string
						GRPCStatus json.RawMessage `json:"grpcStatus"`
					}
					if err := json.Unmarshal([]byte(line), &m); err != nil {
						t.Fatalf("%v: %s", err, line)
					}
					got[m.Path] = string(m.GRPCStatus)
				}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("grpcStatus by path:\n got %v\nwant %v\nlines:\n%s", got, want, strings.Join(lines, "\n"))
				}
				if stage {
					logged := map[string]string{}
					for _, c := range calls {
						logged[c.name] = want[c.path]
					}
					st.checkDone(t, logged)
				}
			})
		}
	}
}

// checkDone checks that the completion hook saw, through
// Exchange.GRPCStatus, the status logged for each case (by X-Case;
// "null": none).
func (s *grpcStatusStage) checkDone(t *testing.T, logged map[string]string) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, w := range logged {
		if w == "null" {
			w = "none"
		}
		if s.done[name] != w {
			t.Errorf("%s: the completion hook saw GRPCStatus %s, want %s", name, s.done[name], w)
		}
	}
}
