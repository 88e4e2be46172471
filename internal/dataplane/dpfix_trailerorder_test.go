package dataplane

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
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

// trailerWitness is a stage with a response-trailer callback and a
// completion hook. Each exchange is named by its X-Case request header.
// The trailer callback records the trailers it sees, keeps them in the
// exchange (StageValue) for the completion hook, adds X-Stage, and, for a
// case named "abort...", answers (Respond). The completion hook records
// what the trailer callback kept by then, and the exchange's outcome.
type trailerWitness struct {
	mu   sync.Mutex
	seen map[string]*witnessed
}

// witnessed is what trailerWitness saw of one exchange.
type witnessed struct {
	trailers  string // the trailers the stage saw
	ran       bool   // the trailer callback ran
	done      bool   // the completion hook ran
	doneSaw   string // what the completion hook found the trailer callback had kept
	aborted   bool   // Exchange.Aborted at completion
	status    int    // Exchange.Status at completion
	bytesOut  int64  // Exchange.BytesOut at completion
	doneCount int
}

func newTrailerWitness() *trailerWitness { return &trailerWitness{seen: map[string]*witnessed{}} }

func (w *trailerWitness) Name() string { return "trailer-witness" }

func (w *trailerWitness) get(name string) *witnessed {
	v := w.seen[name]
	if v == nil {
		v = &witnessed{}
		w.seen[name] = v
	}
	return v
}

func witnessCase(x *Exchange) string {
	v, _ := x.ReqHeaders.Peek("X-Case")
	return string(v)
}

func (w *trailerWitness) OnResponseTrailers(x *Exchange, t Headers) Action {
	name := witnessCase(x)
	d := dumpHeaders(t)
	w.mu.Lock()
	v := w.get(name)
	v.trailers, v.ran = d, true
	w.mu.Unlock()
	x.SetStageValue(w, "saw:"+d)
	t.Set("X-Stage", "added")
	if strings.HasPrefix(name, "abort") {
		x.Reply = Reply{Status: http.StatusBadGateway, Body: []byte("trailer refused\n")}
		return Respond
	}
	return Continue
}

func (w *trailerWitness) OnDone(x *Exchange) {
	kept, _ := x.StageValue(w).(string)
	w.mu.Lock()
	defer w.mu.Unlock()
	v := w.get(witnessCase(x))
	v.done, v.doneSaw, v.aborted, v.status, v.bytesOut = true, kept, x.Aborted, x.Status, x.BytesOut
	v.doneCount++
}

// wait returns what the stage saw of the exchange name once its
// completion hook ran (the hook may run after the client has read the
// answer's end), failing t after a deadline.
func (w *trailerWitness) wait(t *testing.T, name string) witnessed {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		w.mu.Lock()
		v, ok := w.seen[name]
		var c witnessed
		if ok {
			c = *v
		}
		w.mu.Unlock()
		if ok && c.done {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: the completion hook did not run (seen: %+v)", name, c)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// rawExchange sends req on a new connection and reads one answer; err is
// the error reading its body (an answer cut short).
func rawTrailerExchange(t *testing.T, addr, req, method string) (*http.Response, string, error) {
	t.Helper()
	c := dialFor(t, addr, 10*time.Second)
	defer c.Close()
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	r, _ := http.NewRequest(method, "http://"+addr+"/", nil)
	resp, err := http.ReadResponse(bufio.NewReader(c), r)
	if err != nil {
		return nil, "", err
	}
	b, err := io.ReadAll(resp.Body)
	return resp, string(b), err
}

// TestTrailerStagesBeforeDone: response-trailer stages run before the
// exchange is completed (completion hooks, access log, metrics), for every
// client protocol (HTTP/1.1 on both HTTP/1.1 engines, HTTP/1.0, h2c, gRPC)
// and origin protocol (HTTP/1.1, h2c, HTTP/2 over TLS), for answers read
// whole and answers that stream: the completion hook finds what the
// trailer callback kept, and the access-log line counts the body bytes
// the client got. An HTTP/1.0 client gets no trailers, no chunked coding
// and no Trailer field, but the stages still see the origin's trailers;

// trailerOriginPools starts the origins that answer with trailers
// (HTTP/1.1, h2c, HTTP/2 over TLS, gRPC) and returns the YAML of their
// pools: h1, h2c, h2tls and grpc, with the CA of the TLS origin.
func trailerOriginPools(t *testing.T) string {
	t.Helper()
	ca, err := dptest.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	plain := trailerOrigin(t)
	tlsOrigin := trailerOriginTLS(t, ca)
	gaddr, _ := grpcHealthOrigin(t, []string{"shop"})
	return certYAML(t, ca, "origin-ca", false, "ca") + h1AndH2CPools("h1", "h2c", hostOf(plain.URL)) +
		poolWith("h2tls", hostOf(tlsOrigin.URL), "protocol: http2, tls: {caRef: origin-ca, sni: origin.test}") +
		poolWith("grpc", gaddr, "protocol: h2c")
}

// a HEAD request completes without trailers.
func TestTrailerStagesBeforeDone(t *testing.T) {
	pools := trailerOriginPools(t)
	w := newTrailerWitness()
	for _, engine := range engineNames {
		t.Run(engine, func(t *testing.T) {
			p1, p2 := freePort(t), freePort(t)
			src := pools +
				lbSpec(`["*"]`, []string{listenerAt(p1), listenerAt(p2, "h2c: true")},
					"accessLog: {enabled: true, fields: [path, protocol, status, bytesOut]}",
					"routes:\n  - {match: {pathPrefix: /h1/}, pool: h1}\n  - {match: {pathPrefix: /h2c/}, pool: h2c}\n"+
						"  - {match: {pathPrefix: /h2tls/}, pool: h2tls}\n  - {match: {pathPrefix: /grpc.health.v1.Health/}, pool: grpc}")
			logs := &dptest.Lines{}
			startServer(t, src, Options{HTTP1Engine: engine, AccessLog: logs,
				Stages: map[string]StageFactory{"waf": func(*config.VHost, *StageEnv) Stage { return w }}})
			h1addr, h2addr := fmt.Sprintf("127.0.0.1:%d", p1), fmt.Sprintf("127.0.0.1:%d", p2)

			// logged checks the access-log line of path: written once the
			// exchange completed, with the body bytes the client got.
			logged := func(t *testing.T, path string, body int) {
				t.Helper()
				m := logs.Wait(t, 10*time.Second, path, func(m map[string]any) bool { return m["path"] == path })
				if got, _ := m["bytesOut"].(float64); int(got) != body {
					t.Fatalf("%s: access log says bytesOut %v, the client got %d bytes: %v", path, m["bytesOut"], body, m)
				}
			}
			for _, origin := range []string{"h1", "h2c", "h2tls"} {
				for _, c := range []struct {
					name, version, extra string
				}{
					{"stream", "HTTP/1.1", "TE: trailers\r\nAccept: text/event-stream\r\n"},
					{"whole", "HTTP/1.1", "TE: trailers\r\n"},
					{"stream-noTE", "HTTP/1.1", "Accept: text/event-stream\r\n"},
					{"http10", "HTTP/1.0", ""},
					{"http10-stream", "HTTP/1.0", "Accept: text/event-stream\r\n"},
					{"http10-small", "HTTP/1.0", ""},
				} {
					name := fmt.Sprintf("%s/%s/%s", engine, origin, c.name)
					path := fmt.Sprintf("/%s/%s-%s", origin, engine, c.name)
					big := c.name != "http10-small"
					t.Run(origin+"/"+c.name, func(t *testing.T) {
						q := "?big=1"
						if !big {
							q = ""
						}
						resp, body, err := rawTrailerExchange(t, h1addr, "GET "+path+q+" "+c.version+"\r\nHost: a.test\r\nX-Case: "+name+"\r\n"+c.extra+"\r\n", "GET")
						if err != nil || resp.StatusCode != 200 || big && !bigBody(body) || !big && body != "body=;trailers=" {
							t.Fatalf("answer: %v %v, %d bytes", err, resp, len(body))
						}
						noTrailerFields(t, resp.Header)
						if c.version == "HTTP/1.0" {
							// Nothing HTTP/1.0 does not know: no chunked
							// coding, no trailer section, no Trailer field;
							// a long answer (of unknown length) is delimited
							// by the close, a short one has its length.
							if len(resp.TransferEncoding) != 0 || len(resp.Trailer) != 0 || resp.Header.Get("Trailer") != "" {
								t.Fatalf("HTTP/1.0 client got %v, trailers %v, header %v", resp.TransferEncoding, resp.Trailer, resp.Header)
							}
							if big && (resp.ContentLength != -1 || !resp.Close) || !big && resp.ContentLength != int64(len(body)) {
								t.Fatalf("HTTP/1.0 client got length %d, close %v, header %v", resp.ContentLength, resp.Close, resp.Header)
							}
						} else if got := trailerDump(resp.Trailer); got != "X-Late=late,X-Stage=added,X-Sum=0" {
							t.Fatalf("client got trailers %q", got)
						}
						v := w.wait(t, name)
						if !v.ran || v.trailers != "X-Late=late,X-Sum=0" {
							t.Fatalf("the trailer stage saw %q (ran: %v), want the origin's trailers", v.trailers, v.ran)
						}
						if v.doneSaw != "saw:"+v.trailers || v.doneCount != 1 {
							t.Fatalf("the completion hook ran %d times and found %q: it ran before the trailer stage", v.doneCount, v.doneSaw)
						}
						if v.aborted || v.status != 200 || v.bytesOut != int64(len(body)) {
							t.Fatalf("completed with %+v, the client got %d bytes", v, len(body))
						}
						logged(t, path, len(body))
					})
				}
				t.Run(origin+"/head", func(t *testing.T) {
					name := engine + "/" + origin + "/head"
					path := fmt.Sprintf("/%s/%s-head", origin, engine)
					resp, body, err := rawTrailerExchange(t, h1addr, "HEAD "+path+" HTTP/1.1\r\nHost: a.test\r\nTE: trailers\r\nX-Case: "+name+"\r\n\r\n", "HEAD")
					if err != nil || resp.StatusCode != 200 || body != "" || len(resp.Trailer) != 0 {
						t.Fatalf("HEAD: %v %v %q", err, resp, body)
					}
					if v := w.wait(t, name); v.ran || v.aborted || v.status != 200 || v.bytesOut != 0 || v.doneCount != 1 {
						t.Fatalf("HEAD completed with %+v", v)
					}
					logged(t, path, 0)
				})
				for _, stream := range []bool{false, true} {
					t.Run(fmt.Sprintf("%s/h2c-client/stream=%v", origin, stream), func(t *testing.T) {
						name := fmt.Sprintf("%s/%s/h2c-%v", engine, origin, stream)
						path := fmt.Sprintf("/%s/%s-h2c-%v", origin, engine, stream)
						req, _ := http.NewRequest("GET", "http://"+h2addr+path+"?big=1", nil)
						req.Host = "a.test"
						req.Header.Set("X-Case", name)
						if stream {
							req.Header.Set("Accept", "text/event-stream")
						}
						hc := h2cClient()
						defer hc.CloseIdleConnections()
						resp, err := hc.Do(req)
						if err != nil {
							t.Fatal(err)
						}
						b, err := io.ReadAll(resp.Body)
						resp.Body.Close()
						if err != nil || resp.StatusCode != 200 || !bigBody(string(b)) {
							t.Fatalf("answer: %v %d, %d bytes", err, resp.StatusCode, len(b))
						}
						if got := trailerDump(resp.Trailer); got != "X-Late=late,X-Stage=added,X-Sum=0" {
							t.Fatalf("client got trailers %q", got)
						}
						v := w.wait(t, name)
						if v.trailers != "X-Late=late,X-Sum=0" || v.doneSaw != "saw:"+v.trailers || v.aborted || v.bytesOut != int64(len(b)) {
							t.Fatalf("seen %+v, the client got %d bytes", v, len(b))
						}
						logged(t, path, len(b))
					})
				}
			}
			t.Run("grpc", func(t *testing.T) {
				cc, err := grpc.NewClient(h2addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
				if err != nil {
					t.Fatal(err)
				}
				defer cc.Close()
				hc := healthpb.NewHealthClient(cc)
				for _, c := range []struct {
					service string
					code    codes.Code
					status  string
				}{{"shop", codes.OK, "0"}, {"missing", codes.NotFound, "5"}} {
					name := engine + "/grpc/" + c.service
					ctx, cancel := context.WithTimeout(metadata.AppendToOutgoingContext(context.Background(), "x-case", name), 10*time.Second)
					var md metadata.MD
					_, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: c.service}, grpc.Trailer(&md))
					cancel()
					if status.Code(err) != c.code {
						t.Fatalf("%s: %v, want %v", c.service, err, c.code)
					}
					if got := md.Get("x-stage"); len(got) != 1 || got[0] != "added" {
						t.Fatalf("%s: trailer metadata %v", c.service, md)
					}
					v := w.wait(t, name)
					if !strings.Contains(v.doneSaw, "Grpc-Status="+c.status) || v.aborted {
						t.Fatalf("%s: the completion hook found %q (seen %+v): not the call's grpc-status", c.service, v.doneSaw, v)
					}
				}
			})
		})
	}
}

// TestTrailerStageAnswersTooLate: a response-trailer stage that answers
// (Respond) gets what Envoy gives a filter that sends a local reply once
// the response head has gone: before the head is sent (an answer read
// whole: from an HTTP/1.1 origin to an HTTP/1.1 client, or a short one
// for an HTTP/1.0 client) its reply replaces the answer; after it (an
// answer that streams) the exchange is aborted: an HTTP/1.1 client's
// connection is closed before the answer's end, an HTTP/1.0 client's
// (whose answer a close would end) is reset, an HTTP/2 or gRPC client's
// stream is reset, no trailer reaches the client, and the completion
// hooks see Exchange.Aborted with the status that was sent.
func TestTrailerStageAnswersTooLate(t *testing.T) {
	pools := trailerOriginPools(t)
	w := newTrailerWitness()
	for _, engine := range engineNames {
		t.Run(engine, func(t *testing.T) {
			p1, p2 := freePort(t), freePort(t)
			src := pools +
				lbDoc([]string{listenerAt(p1), listenerAt(p2, "h2c: true")},
					"{match: {pathPrefix: /h1/}, pool: h1}", "{match: {pathPrefix: /h2c/}, pool: h2c}",
					"{match: {pathPrefix: /h2tls/}, pool: h2tls}", "{match: {pathPrefix: /grpc.health.v1.Health/}, pool: grpc}")
			startServer(t, src, Options{HTTP1Engine: engine,
				Stages: map[string]StageFactory{"waf": func(*config.VHost, *StageEnv) Stage { return w }}})
			h1addr, h2addr := fmt.Sprintf("127.0.0.1:%d", p1), fmt.Sprintf("127.0.0.1:%d", p2)
			for _, origin := range []string{"h1", "h2c", "h2tls"} {
				for _, c := range []struct {
					name, version, extra string
					// replaced: the stage's reply replaces the answer (the
					// head was not sent yet); else the answer is cut.
					replaced bool
				}{
					{"stream", "HTTP/1.1", "TE: trailers\r\nAccept: text/event-stream\r\n", false},
					{"whole", "HTTP/1.1", "TE: trailers\r\n", origin == "h1"},
					{"http10", "HTTP/1.0", "", false},
					{"http10-small", "HTTP/1.0", "", true},
				} {
					t.Run(origin+"/"+c.name, func(t *testing.T) {
						name := fmt.Sprintf("abort/%s/%s/%s", engine, origin, c.name)
						q := "?big=1"
						if c.name == "http10-small" {
							q = ""
						}
						resp, body, err := rawTrailerExchange(t, h1addr, "GET /"+origin+"/x"+q+" "+c.version+"\r\nHost: a.test\r\nX-Case: "+name+"\r\n"+c.extra+"\r\n", "GET")
						v := w.wait(t, name)
						if c.replaced {
							if err != nil || resp.StatusCode != http.StatusBadGateway || body != "trailer refused\n" {
								t.Fatalf("want the stage's reply: %v %v %q", err, resp, body)
							}
							if v.aborted || v.status != http.StatusBadGateway {
								t.Fatalf("completed with %+v", v)
							}
							return
						}
						if err == nil {
							t.Fatalf("the answer was not cut: %d, %d bytes, trailers %v", resp.StatusCode, len(body), resp.Trailer)
						}
						if resp.StatusCode != 200 || len(resp.Trailer.Values("X-Stage")) != 0 {
							t.Fatalf("head %d, trailers %v", resp.StatusCode, resp.Trailer)
						}
						if !v.aborted || v.status != 200 || v.doneCount != 1 {
							t.Fatalf("completed with %+v, want Aborted", v)
						}
					})
				}
				t.Run(origin+"/h2c-client", func(t *testing.T) {
					name := fmt.Sprintf("abort/%s/%s/h2c", engine, origin)
					req, _ := http.NewRequest("GET", "http://"+h2addr+"/"+origin+"/x?big=1", nil)
					req.Host = "a.test"
					req.Header.Set("X-Case", name)
					hc := h2cClient()
					defer hc.CloseIdleConnections()
					resp, err := hc.Do(req)
					if err != nil {
						t.Fatal(err)
					}
					_, err = io.ReadAll(resp.Body)
					resp.Body.Close()
					if err == nil || resp.StatusCode != 200 || len(resp.Trailer.Values("X-Stage")) != 0 {
						t.Fatalf("the stream was not reset: %v %d, trailers %v", err, resp.StatusCode, resp.Trailer)
					}
					if v := w.wait(t, name); !v.aborted || v.status != 200 || v.doneCount != 1 {
						t.Fatalf("completed with %+v, want Aborted", v)
					}
				})
			}
			t.Run("grpc", func(t *testing.T) {
				cc, err := grpc.NewClient(h2addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
				if err != nil {
					t.Fatal(err)
				}
				defer cc.Close()
				name := "abort/" + engine + "/grpc"
				ctx, cancel := context.WithTimeout(metadata.AppendToOutgoingContext(context.Background(), "x-case", name), 10*time.Second)
				defer cancel()
				_, err = healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{Service: "shop"})
				if code := status.Code(err); code == codes.OK || code == codes.DeadlineExceeded {
					t.Fatalf("the call was not reset: %v", err)
				}
				if v := w.wait(t, name); !v.aborted || !strings.Contains(v.doneSaw, "Grpc-Status=0") {
					t.Fatalf("completed with %+v, want Aborted", v)
				}
			})
		})
	}
}

// respBodyCounter is a stage that reads response bodies (so the answer
// is read whole before its head is sent) and counts their bytes by the
// X-Case request header.
type respBodyCounter struct {
	mu sync.Mutex
	n  map[string]int
}

func (s *respBodyCounter) Name() string            { return "resp-body-counter" }
func (s *respBodyCounter) BufferResponseBody() int { return 1 << 20 }
func (s *respBodyCounter) OnResponseBody(x *Exchange, chunk []byte, end bool) Action {
	s.mu.Lock()
	s.n[witnessCase(x)] += len(chunk)
	s.mu.Unlock()
	return Continue
}

// TestTrailerStagesWithResponseBodyStage: with a response-body stage the
// answer of an HTTP/2 origin is read whole before its head is sent, so
// the response-trailer stages run before it too: a stage's answer then
// replaces the answer; otherwise the client gets the whole body (seen by
// the body stage) and the completion hook runs after the trailer stage.
func TestTrailerStagesWithResponseBodyStage(t *testing.T) {
	o := trailerOrigin(t)
	w, bc := newTrailerWitness(), &respBodyCounter{n: map[string]int{}}
	port := freePort(t)
	startServer(t, h1AndH2CPools("h1", "h2c", hostOf(o.URL))+lbDoc([]string{listenerAt(port)}, "{match: {pathPrefix: /h1/}, pool: h1}", "{pool: h2c}"),
		Options{Stages: map[string]StageFactory{
			"waf":       func(*config.VHost, *StageEnv) Stage { return w },
			"discovery": func(*config.VHost, *StageEnv) Stage { return bc },
		}})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	for _, origin := range []string{"h1", "h2c"} {
		for _, c := range []string{"pass", "abort"} {
			name := c + "/body/" + origin
			resp, body, err := rawTrailerExchange(t, addr, "GET /"+origin+"/x?big=1 HTTP/1.1\r\nHost: a.test\r\nTE: trailers\r\nAccept: text/event-stream\r\nX-Case: "+name+"\r\n\r\n", "GET")
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			v := w.wait(t, name)
			if c == "abort" {
				if resp.StatusCode != http.StatusBadGateway || body != "trailer refused\n" || v.aborted || v.status != http.StatusBadGateway {
					t.Fatalf("%s: %d, %d bytes, completed with %+v: want the stage's reply", name, resp.StatusCode, len(body), v)
				}
				continue
			}
			bc.mu.Lock()
			seen := bc.n[name]
			bc.mu.Unlock()
			if resp.StatusCode != 200 || !bigBody(body) || seen != len(body) {
				t.Fatalf("%s: %d, %d bytes, the body stage saw %d", name, resp.StatusCode, len(body), seen)
			}
			if v.trailers != "X-Late=late,X-Sum=0" || v.doneSaw != "saw:"+v.trailers || v.aborted {
				t.Fatalf("%s: completed with %+v", name, v)
			}
			if got := trailerDump(resp.Trailer); got != "X-Late=late,X-Stage=added,X-Sum=0" {
				t.Fatalf("%s: client got trailers %q", name, got)
			}
		}
	}
}

// TestTrailerStagesSeeProxyGRPCStatus: when a gRPC origin's stream breaks
// after its head, the proxy ends the call with a status of its own
// (UNAVAILABLE) in trailers: the response-trailer stages see it (and may
// add to it) before the completion hooks run.
func TestTrailerStagesSeeProxyGRPCStatus(t *testing.T) {
	o := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/grpc")
		w.WriteHeader(200)
		_, _ = w.Write([]byte{0, 0, 0, 0, 0})
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler) // the stream is reset, without trailers
	}))
	startH2C(t, o, false)
	w := newTrailerWitness()
	port := freePort(t)
	startServer(t, poolWith("g", hostOf(o.URL), "protocol: h2c")+lbDoc([]string{listenerAt(port, "h2c: true")}, "{pool: g}"),
		Options{Stages: map[string]StageFactory{"waf": func(*config.VHost, *StageEnv) Stage { return w }}})
	req, _ := http.NewRequest("POST", fmt.Sprintf("http://127.0.0.1:%d/pkg.Svc/Call", port), strings.NewReader("\x00\x00\x00\x00\x00"))
	req.Host = "a.test"
	req.Header.Set("Content-Type", "application/grpc")
	req.Header.Set("Te", "trailers")
	req.Header.Set("X-Case", "broken")
	hc := h2cClient()
	defer hc.CloseIdleConnections()
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.Trailer.Get("Grpc-Status") != "14" || resp.Trailer.Get("X-Stage") != "added" {
		t.Fatalf("%v, trailers %v: want UNAVAILABLE and the stage's field", err, resp.Trailer)
	}
	v := w.wait(t, "broken")
	if !strings.Contains(v.doneSaw, "Grpc-Status=14") || v.aborted {
		t.Fatalf("completed with %+v: the trailer stage did not see the proxy's status first", v)
	}
}

// TestHTTP10StreamDelimitedByClose: an answer that goes on (an event
// stream) reaches an HTTP/1.0 client as it comes, delimited by the
// connection's close, without chunked coding or a length, from an HTTP/1.1
// and an HTTP/2 origin, with and without response-trailer stages: the
// proxy does not wait for its end (it would hold it all in memory). When
// the origin ends it, the client gets the rest and the close.
func TestHTTP10StreamDelimitedByClose(t *testing.T) {
	var ends sync.Map // "id" query value -> chan struct{}: closed, the stream ends
	o := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: first\n\n")
		w.(http.Flusher).Flush()
		end, _ := ends.Load(r.URL.Query().Get("id"))
		select {
		case <-end.(chan struct{}):
			_, _ = io.WriteString(w, "data: last\n\n")
		case <-r.Context().Done():
		}
	}))
	startH2C(t, o, true)
	for _, stages := range []bool{false, true} {
		t.Run(fmt.Sprintf("stages=%v", stages), func(t *testing.T) {
			opts := Options{}
			if stages {
				w := newTrailerWitness()
				opts.Stages = map[string]StageFactory{"waf": func(*config.VHost, *StageEnv) Stage { return w }}
			}
			port := freePort(t)
			startServer(t, h1AndH2CPools("h1", "h2c", hostOf(o.URL))+lbDoc([]string{listenerAt(port)}, "{match: {pathPrefix: /h1/}, pool: h1}", "{pool: h2c}"), opts)
			for _, origin := range []string{"h1", "h2c"} {
				id := fmt.Sprintf("%s-%v", origin, stages)
				end := make(chan struct{})
				ends.Store(id, end)
				c := dialFor(t, fmt.Sprintf("127.0.0.1:%d", port), 10*time.Second)
				defer c.Close()
				if _, err := io.WriteString(c, "GET /"+origin+"/events?id="+id+" HTTP/1.0\r\nHost: a.test\r\nAccept: text/event-stream\r\n\r\n"); err != nil {
					t.Fatal(err)
				}
				resp, err := http.ReadResponse(bufio.NewReader(c), nil)
				if err != nil {
					close(end)
					t.Fatalf("%s origin: no head: %v", origin, err)
				}
				if resp.StatusCode != 200 || resp.ContentLength != -1 || len(resp.TransferEncoding) != 0 || !resp.Close {
					close(end)
					t.Fatalf("%s origin: %d, length %d, %v, close %v", origin, resp.StatusCode, resp.ContentLength, resp.TransferEncoding, resp.Close)
				}
				br := bufio.NewReader(resp.Body)
				line, err := br.ReadString('\n')
				close(end) // the first event came before the stream's end
				if err != nil || line != "data: first\n" {
					t.Fatalf("%s origin: first event %q, %v", origin, line, err)
				}
				rest, err := io.ReadAll(br)
				if err != nil || string(rest) != "\ndata: last\n\n" {
					t.Fatalf("%s origin: the rest %q, %v (want the last event, then the close)", origin, rest, err)
				}
			}
		})
	}
}
