//go:build linux

package dataplane

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meridian-platform/meridian/internal/dataplane/config"
)

// grpcStatusStage is a response-trailer stage that turns an OK status into
// PERMISSION_DENIED (7) for the calls whose X-Case is "rewrite", and a
// completion hook that keeps what Exchange.GRPCStatus said of each case.
type grpcStatusStage struct {
	mu   sync.Mutex
	done map[string]string
}

func (s *grpcStatusStage) Name() string { return "grpc-status-stage" }

func (s *grpcStatusStage) OnResponseTrailers(x *Exchange, t Headers) Action {
	switch witnessCase(x) {
	case "rewrite":
		t.Set("Grpc-Status", "7")
	case "abort":
		// Too late to answer: the call is reset, its status never sent.
		x.Reply = Reply{Status: http.StatusBadGateway}
		return Respond
	}
	return Continue
}

func (s *grpcStatusStage) OnDone(x *Exchange) {
	v := "none"
	if code, ok := x.GRPCStatus(); ok {
		v = fmt.Sprint(code)
	}
	s.mu.Lock()
	s.done[witnessCase(x)] = v
	s.mu.Unlock()
}

// grpcStatusOptions are a server's options for the gRPC status tests: the
// engine, an access log to read back, and with stage the trailer stage
// that rewrites or aborts and records each call's status at completion.
func grpcStatusOptions(engine string, stage bool) (Options, *lockedBuffer, *grpcStatusStage) {
	out := &lockedBuffer{}
	opts := Options{HTTP1Engine: engine, AccessLog: out}
	st := &grpcStatusStage{done: map[string]string{}}
	if stage {
		opts.Stages = map[string]StageFactory{"waf": func(*config.VHost, *StageEnv) Stage { return st }}
	}
	return opts, out, st
}

// grpcOrigin is an h2c gRPC origin whose answer is chosen by the path:
// /ok (a message, status 0 in trailers), /notfound (status 5 in
// trailers), /only (a Trailers-Only answer: UNIMPLEMENTED in the head, no
// body), /broken (a message, then the stream is reset without trailers),
// /rewrite (as /ok; a stage turns it into 7), /abort (as /ok; a stage
// answers too late), /slow (no answer before the call's deadline).
// Anything else is a plain
// answer without grpc-status.
func grpcOrigin(t *testing.T) *httptest.Server {
	o := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if !strings.HasPrefix(r.URL.Path, "/pkg.Svc/") {
			_, _ = io.WriteString(w, "plain\n")
			return
		}
		h := w.Header()
		h.Set("Content-Type", "application/grpc")
		switch strings.TrimPrefix(r.URL.Path, "/pkg.Svc/") {
		case "only":
			h.Set("Grpc-Status", "12")
			h.Set("Grpc-Message", "no such method")
			w.WriteHeader(200)
			return
		case "slow":
			<-r.Context().Done() // until the proxy gives up at the call's deadline
			return
		case "broken":
			w.WriteHeader(200)
			_, _ = w.Write([]byte{0, 0, 0, 0, 0})
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler) // the stream is reset, without trailers
		case "notfound":
			h.Set(http.TrailerPrefix+"Grpc-Status", "5")
			h.Set(http.TrailerPrefix+"Grpc-Message", "not found")
			w.WriteHeader(200)
			_, _ = w.Write([]byte{0, 0, 0, 0, 0})
		default:
			w.WriteHeader(200)
			_, _ = w.Write([]byte{0, 0, 0, 0, 0})
			h.Set(http.TrailerPrefix+"Grpc-Status", "0")
		}
	}))
	startH2C(t, o, true)
	return o
}

// TestAccessLogGRPCStatus: the access log's grpcStatus is the gRPC status
// the client got: from the trailers (OK, NOT_FOUND), from the head of a
// Trailers-Only answer, the proxy's own UNAVAILABLE when the origin's
// stream breaks or the origin cannot be reached, the status a
// response-trailer stage left; null for a request that is not a gRPC call
// (over HTTP/2 and HTTP/1.1, the latter served by the event loop on that
// engine). Completion hooks see the same through Exchange.GRPCStatus.
// With and without a response-trailer stage (a Trailers-Only answer
// takes another path when stages see trailers), on both HTTP/1.1 engines.
func TestAccessLogGRPCStatus(t *testing.T) {
	o := grpcOrigin(t)
	type call struct {
		name, path string
		grpc       bool
		want       string // the grpcStatus logged
	}
	calls := []call{
		{"ok", "/pkg.Svc/ok", true, "0"},
		{"notfound", "/pkg.Svc/notfound", true, "5"},
		{"only", "/pkg.Svc/only", true, "12"},
		{"broken", "/pkg.Svc/broken", true, "14"},
		{"unreachable", "/dead/pkg.Svc/ok", true, "14"},
		{"rewrite", "/pkg.Svc/rewrite", true, "0"}, // 7 with the stage
		{"abort", "/pkg.Svc/abort", true, "0"},     // reset, null, with the stage
		{"slow", "/pkg.Svc/slow", true, "4"},       // the proxy's DEADLINE_EXCEEDED
		{"plain", "/plain", false, "null"},
	}
	for _, engine := range engineNames {
		for _, stage := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/stage=%v", engine, stage), func(t *testing.T) {
				opts, out, st := grpcStatusOptions(engine, stage)
				h2port, h1port := freePort(t), freePort(t)
				s := startServer(t, pool("h1", hostOf(o.URL))+poolWith("g", hostOf(o.URL), "protocol: h2c")+poolWith("dead", deadAddr, "protocol: h2c")+
					lbSpec(`["*"]`, []string{listenerAt(h2port, "h2c: true"), listenerAt(h1port)},
						"accessLog: {enabled: true, fields: [path, status, grpcStatus]}",
						"routes:\n  - {match: {pathPrefix: /dead/}, pool: dead}\n  - {match: {path: /h1}, pool: h1}\n  - {pool: g}"), opts)
				hc := h2cClient()
				defer hc.CloseIdleConnections()
				for _, c := range calls {
					var body io.Reader
					method := "GET"
					if c.grpc {
						method, body = "POST", strings.NewReader("\x00\x00\x00\x00\x00")
					}
					req, _ := http.NewRequest(method, fmt.Sprintf("http://127.0.0.1:%d%s", h2port, c.path), body)
					req.Header.Set("X-Case", c.name)
					if c.grpc {
						req.Header.Set("Content-Type", "application/grpc")
						req.Header.Set("Te", "trailers")
					}
					if c.name == "slow" {
						req.Header.Set("Grpc-Timeout", "200m")
					}
					resp, err := hc.Do(req)
					if err == nil {
						_, err = io.ReadAll(resp.Body)
						resp.Body.Close()
					}
					if stage && c.name == "abort" {
						if err == nil {
							t.Fatalf("%s: the call ended normally (trailers %v), want it reset", c.name, resp.Trailer)
						}
						continue
					}
					if err != nil {
						t.Fatalf("%s: %v", c.name, err)
					}
					got := resp.Trailer.Get("Grpc-Status")
					if got == "" {
						got = resp.Header.Get("Grpc-Status")
					}
					want := grpcWant(c.name, c.want, stage)
					if want == "null" {
						want = ""
					}
					if resp.StatusCode != 200 || got != want {
						t.Fatalf("%s: %d, grpc-status %q; want 200 and %q", c.name, resp.StatusCode, got, want)
					}
				}
				// A plain HTTP/1.1 request to an HTTP/1.1 pool (served by the
				// event loop on that engine, the grpcStatus field configured
				// or not).
				h1addr := fmt.Sprintf("127.0.0.1:%d", h1port)
				if a := exchangeRaw(t, h1addr, "GET /h1 HTTP/1.1\r\nHost: a.test\r\nX-Case: h1\r\n\r\n"); len(a) != 1 || !strings.HasPrefix(a[0], "200 ") {
					t.Fatalf("HTTP/1.1 request: %q", a)
				}
				if engine == EngineEvloop && !stage { // the trailer stage keeps the load balancer off the loops
					if n := s.evStats(t, h1addr).Requests; n != 1 {
						t.Fatalf("the event loop served %d requests, want 1", n)
					}
				}
				want := map[string]string{"/h1": "null"}
				for _, c := range calls {
					want[c.path] = grpcWant(c.name, c.want, stage)
				}
				var lines []string
				for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(10 * time.Millisecond) {
					s.alog.Flush()
					if lines = out.lines(); len(lines) >= len(calls)+1 || time.Now().After(deadline) {
						break
					}
				}
				if len(lines) != len(calls)+1 {
					t.Fatalf("%d lines, want %d:\n%s", len(lines), len(calls)+1, strings.Join(lines, "\n"))
				}
				got := map[string]string{}
				for _, line := range lines {
					var m struct {
						Path       string
						Status     int
						GRPCStatus json.RawMessage `json:"grpcStatus"`
					}
					if err := json.Unmarshal([]byte(line), &m); err != nil {
						t.Fatalf("%v: %s", err, line)
					}
					if !strings.HasSuffix(line, `"grpcStatus":`+string(m.GRPCStatus)+"}") || m.Status != 200 && m.Path != "/pkg.Svc/abort" {
						t.Errorf("line %s: want grpcStatus last (as configured) and status 200", line)
					}
					got[m.Path] = string(m.GRPCStatus)
				}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("grpcStatus by path:\n got %v\nwant %v", got, want)
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

// grpcWant is the grpcStatus logged for a call of TestAccessLogGRPCStatus
// whose status is want without the trailer stage.
func grpcWant(name, want string, stage bool) string {
	switch {
	case stage && name == "rewrite":
		return "7"
	case stage && name == "abort":
		return "null"
	}
	return want
}
