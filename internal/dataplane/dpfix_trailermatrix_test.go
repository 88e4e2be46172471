package dataplane

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/meridian-platform/meridian/internal/dataplane/config"
	"github.com/meridian-platform/meridian/internal/dataplane/dptest"
)

// trailerEditor is a stage that records the request and response trailers
// it sees (by request path) and changes both: the request trailer
// X-Checksum gets "+stage" appended; of the response trailers X-Sum is
// rewritten, X-Late removed and X-Stage added (on gRPC answers too, whose
// grpc-status it must see).
type trailerEditor struct {
	mu       sync.Mutex
	req, res map[string]string
}

func newTrailerEditor() *trailerEditor {
	return &trailerEditor{req: map[string]string{}, res: map[string]string{}}
}

func (s *trailerEditor) Name() string { return "trailer-editor" }

func (s *trailerEditor) OnRequestTrailers(x *Exchange, t Headers) Action {
	s.mu.Lock()
	s.req[string(x.Path)] = dumpHeaders(t)
	s.mu.Unlock()
	if v, ok := t.Peek("X-Checksum"); ok {
		t.Set("X-Checksum", string(v)+"+stage")
	}
	return Continue
}

func (s *trailerEditor) OnResponseTrailers(x *Exchange, t Headers) Action {
	s.mu.Lock()
	s.res[string(x.Path)] = dumpHeaders(t)
	s.mu.Unlock()
	if _, ok := t.Peek("X-Sum"); ok {
		t.Set("X-Sum", "rewritten")
	}
	t.Del("X-Late")
	t.Set("X-Stage", "added")
	return Continue
}

func (s *trailerEditor) seen(path string) (req, res string, resOK bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	res, resOK = s.res[path]
	return s.req[path], res, resOK
}

// TestTrailerStagesAllProtocols runs the trailer stages for every client
// protocol (HTTP/1.1, h2c) and origin protocol (HTTP/1.1, h2c, HTTP/2 over
// TLS), for answers read whole and answers that stream (an event stream),
// and for gRPC (unary, OK and an error status): each time the stage sees
// the request trailers the client sent and the response trailers the
// origin sent, the origin gets the request trailers as the stage changed
// them, and the client gets the response trailers as the stage changed
// them.
func TestTrailerStagesAllProtocols(t *testing.T) {
	ca, err := dptest.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	plain := trailerOrigin(t)
	tlsOrigin := trailerOriginTLS(t, ca)
	gaddr, _ := grpcHealthOrigin(t, []string{"shop"})

	port := freePort(t)
	src := certYAML(t, ca, "origin-ca", false, "ca") + h1AndH2CPools("h1", "h2c", hostOf(plain.URL)) +
		poolWith("h2tls", hostOf(tlsOrigin.URL), "protocol: http2, tls: {caRef: origin-ca, sni: origin.test}") +
		poolWith("grpc", gaddr, "protocol: h2c") +
		lbDoc([]string{listenerAt(port, "h2c: true")}, "{match: {pathPrefix: /h1/}, pool: h1}", "{match: {pathPrefix: /h2c/}, pool: h2c}",
			"{match: {pathPrefix: /h2tls/}, pool: h2tls}", "{match: {pathPrefix: /grpc.health.v1.Health/}, pool: grpc}")
	st := newTrailerEditor()
	startServer(t, src, Options{Stages: map[string]StageFactory{"waf": func(*config.VHost, *StageEnv) Stage { return st }}})
	addr := fmt.Sprintf("127.0.0.1:%d", port)

	for _, origin := range []string{"h1", "h2c", "h2tls"} {
		for _, client := range []string{"h1", "h2c"} {
			for _, stream := range []bool{false, true} {
				name := fmt.Sprintf("%s-client/%s-origin/stream=%v", client, origin, stream)
				path := fmt.Sprintf("/%s/%s-%v", origin, client, stream)
				t.Run(name, func(t *testing.T) {
					var status int
					var body string
					var trailer http.Header
					if client == "h1" {
						status, body, trailer = trailerCallH1(t, addr, path, stream)
					} else {
						status, body, trailer = trailerCallH2C(t, addr, path, stream)
					}
					if status != 200 {
						t.Fatalf("status %d: %q", status, body)
					}
					// The origin got the request trailer as the stage
					// changed it.
					if want := "body=hello;trailers=X-Checksum=abc+stage"; !strings.HasPrefix(body, want) {
						t.Fatalf("origin saw %q, want %q", body, want)
					}
					req, res, ok := st.seen(path)
					if req != "X-Checksum=abc" {
						t.Fatalf("request trailers seen by the stage: %q", req)
					}
					if !ok || res != "X-Late=late,X-Sum=5" {
						t.Fatalf("response trailers seen by the stage: %q (ran: %v)", res, ok)
					}
					if got := trailerDump(trailer); got != "X-Stage=added,X-Sum=rewritten" {
						t.Fatalf("client got trailers %q, want the stage's changes", got)
					}
				})
			}
		}
	}

	// A large answer that streams in many pieces, HEAD, HTTP/1.0: the
	// answer is whole and the exchange outlives the handler safely.
	for _, origin := range []string{"h1", "h2c", "h2tls"} {
		t.Run("edges/"+origin+"-origin", func(t *testing.T) {
			for _, stream := range []string{"", "Accept: text/event-stream\r\n"} {
				path := fmt.Sprintf("/%s/big-%v?big=1", origin, stream != "")
				resp, body := rawHTTP1(t, addr, "GET "+path+" HTTP/1.1\r\nHost: a.test\r\nTE: trailers\r\n"+stream+"\r\n")
				if resp.StatusCode != 200 || !bigBody(body) {
					t.Fatalf("%s: %d, %d bytes", path, resp.StatusCode, len(body))
				}
				if got := trailerDump(resp.Trailer); got != "X-Stage=added,X-Sum=rewritten" {
					t.Fatalf("%s: client got trailers %q", path, got)
				}
				if _, res, ok := st.seen(strings.Split(path, "?")[0]); !ok || res != "X-Late=late,X-Sum=0" {
					t.Fatalf("%s: response trailers seen by the stage: %q (ran: %v)", path, res, ok)
				}
			}
			resp, body := rawHTTP1Method(t, addr, "HEAD /"+origin+"/head HTTP/1.1\r\nHost: a.test\r\nTE: trailers\r\n\r\n", "HEAD")
			if resp.StatusCode != 200 || body != "" || len(resp.Trailer) != 0 {
				t.Fatalf("HEAD: %d %q %v", resp.StatusCode, body, resp.Trailer)
			}
			for _, stream := range []string{"", "Accept: text/event-stream\r\n"} {
				resp, body = rawHTTP1(t, addr, "GET /"+origin+"/old?big=1 HTTP/1.0\r\nHost: a.test\r\n"+stream+"\r\n")
				if resp.StatusCode != 200 || len(resp.TransferEncoding) != 0 || !bigBody(body) || len(resp.Trailer) != 0 {
					t.Fatalf("HTTP/1.0 %q: %d %v, %d bytes, trailers %v", stream, resp.StatusCode, resp.TransferEncoding, len(body), resp.Trailer)
				}
			}
		})
	}

	t.Run("grpc", func(t *testing.T) {
		cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer cc.Close()
		hc := healthpb.NewHealthClient(cc)
		for _, c := range []struct {
			service string
			code    codes.Code
		}{{"shop", codes.OK}, {"missing", codes.NotFound}} {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			var md metadata.MD
			_, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: c.service}, grpc.Trailer(&md))
			cancel()
			if status.Code(err) != c.code {
				t.Fatalf("%s: %v, want %v", c.service, err, c.code)
			}
			if got := md.Get("x-stage"); len(got) != 1 || got[0] != "added" {
				t.Fatalf("%s: trailer metadata %v: the stage's X-Stage did not reach the client", c.service, md)
			}
		}
		_, res, ok := st.seen("/grpc.health.v1.Health/Check")
		// The last call's: NOT_FOUND.
		if !ok || !strings.Contains(res, "Grpc-Status=5") {
			t.Fatalf("response trailers seen by the stage: %q (ran: %v)", res, ok)
		}
	})
}

// trailerOriginTLS is trailerOrigin over TLS with ALPN h2 and http/1.1.
func trailerOriginTLS(t *testing.T, ca *dptest.CA) *httptest.Server {
	o := newTrailerServer()
	c, err := ca.TLSCert("origin.test")
	if err != nil {
		t.Fatal(err)
	}
	o.EnableHTTP2 = true
	o.TLS = &tls.Config{Certificates: []tls.Certificate{c}}
	o.StartTLS()
	t.Cleanup(o.Close)
	return o
}

// trailerCallH1 sends a chunked POST with the trailer X-Checksum: abc
// over HTTP/1.1 (TE: trailers; stream asks for an event stream, which the
// proxy streams through) and returns the status, the body and the
// response trailers.
func trailerCallH1(t *testing.T, addr, path string, stream bool) (int, string, http.Header) {
	t.Helper()
	accept := ""
	if stream {
		accept = "Accept: text/event-stream\r\n"
	}
	resp, body := rawHTTP1(t, addr, "POST "+path+" HTTP/1.1\r\nHost: a.test\r\nTE: trailers\r\n"+accept+
		"Trailer: X-Checksum\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-Checksum: abc\r\n\r\n")
	noTrailerFields(t, resp.Header)
	return resp.StatusCode, body, resp.Trailer
}

// trailerCallH2C is trailerCallH1 over h2c (prior knowledge).
func trailerCallH2C(t *testing.T, addr, path string, stream bool) (int, string, http.Header) {
	t.Helper()
	pr, pw := io.Pipe()
	req, err := http.NewRequest("POST", "http://"+addr+path, pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = "a.test"
	req.Trailer = http.Header{"X-Checksum": nil}
	if stream {
		req.Header.Set("Accept", "text/event-stream")
	}
	go func() {
		_, _ = io.WriteString(pw, "hello")
		req.Trailer.Set("X-Checksum", "abc")
		pw.Close()
	}()
	c := h2cClient()
	defer c.CloseIdleConnections()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the body: %v", err)
	}
	noTrailerFields(t, resp.Header)
	return resp.StatusCode, string(b), resp.Trailer
}

// noTrailerFields fails the test when a response trailer field of
// TestTrailerStagesAllProtocols is among the header fields h.
func noTrailerFields(t *testing.T, h http.Header) {
	t.Helper()
	if h.Get("X-Sum") != "" || h.Get("X-Stage") != "" || h.Get("X-Late") != "" {
		t.Fatalf("trailer fields among the header fields: %v", h)
	}
}

// bigBody reports whether b is trailerOrigin's report of a bodiless
// request with bigAnswer bytes after it.
func bigBody(b string) bool {
	report := strings.TrimRight(b, "x")
	return strings.HasPrefix(report, "body=;trailers=") && len(b)-len(report) == bigAnswer
}

// trailerDump is a sorted "Name=v1|v2" list of the trailer fields that
// have values.
func trailerDump(h http.Header) string {
	var kv []string
	for k, vv := range h {
		if len(vv) > 0 {
			kv = append(kv, k+"="+strings.Join(vv, "|"))
		}
	}
	sort.Strings(kv)
	return strings.Join(kv, ",")
}
