//go:build linux

package dataplane

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/meridian-platform/meridian/internal/dataplane/config"
	"github.com/meridian-platform/meridian/internal/dataplane/dptest"
)

// exchangeTLS is exchangeRaw over TLS: the raw requests on one TLS
// connection, each answer as text (its body's length for its framing: the
// goroutine engine de-chunks the large answers it buffers whole).
func exchangeTLS(t *testing.T, addr string, cfg *tls.Config, reqs ...string) []string {
	t.Helper()
	c, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return exchangeOn(t, c, 10*time.Second, true, reqs...)
}

// TestEnginesAgreeHTTPS is TestEnginesAgree over TLS: the certificate
// chosen by SNI (exact, wildcard, default), keep-alive exchanges, large
// bodies both ways, chunked bodies, hand-offs mid-connection and of
// HTTP/2 (ALPN) connections, session resumption, clients that go away
// mid-request; the event loop must have served the plain requests itself.
func TestEnginesAgreeHTTPS(t *testing.T) {
	ca, err := dptest.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	origin := headerEcho(t)
	cfg := func(port int) string {
		return sniLBYAML(t, ca, origin.URL, port, `  routes:
  - {match: {pathPrefix: /old}, redirect: {path: /new, code: 301}}
  - {match: {pathPrefix: /}, pool: a}
`)
	}
	addrs, servers := startEngines(t, cfg, nil)
	if l := servers[EngineEvloop].listeners[addrs[EngineEvloop]]; l == nil || l.ev == nil {
		t.Fatal("the TLS listener is not served by the event loop")
	}
	tc := func(sni string) *tls.Config {
		return &tls.Config{ServerName: sni, RootCAs: ca.Pool, InsecureSkipVerify: sni == "" || sni == "other.test", NextProtos: []string{"http/1.1"}}
	}

	t.Run("certificate by SNI", func(t *testing.T) {
		for sni, want := range map[string]string{"api.example.test": "api.example.test", "www.example.test": "*.example.test", "other.test": "default.test", "": "default.test"} {
			for _, engine := range engineNames {
				c, err := tls.Dial("tcp", addrs[engine], tc(sni))
				if err != nil {
					t.Fatalf("%s: sni %q: %v", engine, sni, err)
				}
				st := c.ConnectionState()
				c.Close()
				if got := st.PeerCertificates[0].Subject.CommonName; got != want || st.NegotiatedProtocol != "http/1.1" {
					t.Errorf("%s: sni %q: cert %q alpn %q, want %q", engine, sni, got, st.NegotiatedProtocol, want)
				}
			}
		}
	})

	big := strings.Repeat("0123456789abcdef", 64<<10) // 1 MiB, echoed back
	convs := []struct {
		name string
		reqs []string
	}{
		{"keep-alive gets", []string{
			"GET /a?x=1 HTTP/1.1\r\nHost: shop.example.test\r\nX-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Proto: http\r\nX-Request-Id: forged\r\n\r\n",
			"GET /status HTTP/1.1\r\nHost: shop.example.test\r\nConnection: keep-alive, X-Drop\r\nX-Drop: 1\r\nTE: trailers\r\n\r\n",
			"HEAD /h HTTP/1.1\r\nHost: shop.example.test\r\n\r\n",
			"GET /last HTTP/1.1\r\nHost: shop.example.test\r\nConnection: close\r\n\r\n",
		}},
		{"bodies", []string{
			"POST /p HTTP/1.1\r\nHost: api.example.test\r\nContent-Length: 5\r\n\r\nhello",
			"POST /c HTTP/1.1\r\nHost: api.example.test\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n5\r\nhello\r\n0\r\n\r\n",
			"POST /big HTTP/1.1\r\nHost: api.example.test\r\nContent-Length: " + fmt.Sprint(len(big)) + "\r\n\r\n" + big,
			"POST /bigchunked HTTP/1.1\r\nHost: api.example.test\r\nTransfer-Encoding: chunked\r\n\r\n" + fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(big), big),
			"GET /after HTTP/1.1\r\nHost: api.example.test\r\n\r\n",
		}},
		{"pipelined", []string{
			"GET /1 HTTP/1.1\r\nHost: a.example.test\r\n\r\nGET /2 HTTP/1.1\r\nHost: a.example.test\r\n\r\n",
		}},
		{"redirect answered mid-connection", []string{
			"GET /1 HTTP/1.1\r\nHost: shop.example.test\r\n\r\n",
			"GET /old/x HTTP/1.1\r\nHost: shop.example.test\r\n\r\n",
			"GET /2 HTTP/1.1\r\nHost: shop.example.test\r\n\r\n",
		}},
		{"http/1.0", []string{"GET /ten HTTP/1.0\r\nHost: shop.example.test\r\n\r\n"}},
		{"malformed", []string{"GET / HTTP/1.1\r\nHost: shop.example.test\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"}},
	}
	for _, cv := range convs {
		t.Run(cv.name, func(t *testing.T) {
			want := exchangeTLS(t, addrs[EngineGoroutine], tc("api.example.test"), cv.reqs...)
			got := exchangeTLS(t, addrs[EngineEvloop], tc("api.example.test"), cv.reqs...)
			if len(got) != len(want) {
				t.Fatalf("evloop: %d answers, goroutine: %d\nevloop: %q\ngoroutine: %q", len(got), len(want), got, want)
			}
			for i := range want {
				if got[i] != want[i] {
					t.Errorf("answer %d differs\nevloop:\n%.2000s\ngoroutine:\n%.2000s", i, got[i], want[i])
				}
				if strings.Contains(got[i], "X-Forwarded-For") && !strings.Contains(got[i], "X-Forwarded-Proto: https") {
					t.Errorf("answer %d: the origin was not told https:\n%.2000s", i, got[i])
				}
			}
		})
	}

	t.Run("pipelined request split over records", func(t *testing.T) {
		// The request head comes in many small TLS records, some of
		// them in one TCP segment.
		for _, engine := range engineNames {
			c, err := tls.Dial("tcp", addrs[engine], tc("api.example.test"))
			if err != nil {
				t.Fatal(err)
			}
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			req := "GET /split HTTP/1.1\r\nHost: api.example.test\r\nConnection: close\r\n\r\n"
			for i := 0; i < len(req); i += 7 {
				_, _ = io.WriteString(c, req[i:min(i+7, len(req))])
			}
			b, _ := io.ReadAll(c)
			c.Close()
			if !strings.HasPrefix(string(b), "HTTP/1.1 200") || !strings.Contains(string(b), "GET /split") {
				t.Errorf("%s: %q", engine, b)
			}
		}
	})

	t.Run("http/2 by ALPN", func(t *testing.T) {
		for _, engine := range engineNames {
			h2 := &http.Client{Transport: &http2.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool, ServerName: "api.example.test"}}}
			resp, err := h2.Get("https://" + addrs[engine] + "/h2?x=1")
			if err != nil {
				t.Fatalf("%s: %v", engine, err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.ProtoMajor != 2 || !strings.Contains(string(b), "GET /h2?x=1 HTTP/1.1") || !strings.Contains(string(b), "X-Forwarded-Proto: https") {
				t.Fatalf("%s: %s %q", engine, resp.Proto, b)
			}
		}
	})

	t.Run("session resumption", func(t *testing.T) {
		for _, engine := range engineNames {
			for _, max := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
				cfg := tc("api.example.test")
				cfg.MaxVersion = max
				cfg.ClientSessionCache = tls.NewLRUClientSessionCache(4)
				var resumed []bool
				for i := 0; i < 2; i++ {
					got := exchangeTLSState(t, addrs[engine], cfg, "GET /r HTTP/1.1\r\nHost: api.example.test\r\nConnection: close\r\n\r\n")
					resumed = append(resumed, got.DidResume)
				}
				if resumed[0] || !resumed[1] {
					t.Errorf("%s, TLS max %x: resumed %v, want [false true]", engine, max, resumed)
				}
			}
		}
	})

	t.Run("client goes away", func(t *testing.T) {
		for _, in := range []string{
			"GET /half HTTP/1.1\r\nHost: api.example.test\r\n",
			"POST /body HTTP/1.1\r\nHost: api.example.test\r\nContent-Length: 100000\r\n\r\n" + strings.Repeat("z", 50000),
			"", // right after the handshake
		} {
			c, err := tls.Dial("tcp", addrs[EngineEvloop], tc("api.example.test"))
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.WriteString(c, in)
			c.Close()
		}
		// Nor during the handshake: a hello and nothing more.
		raw, err := net.Dial("tcp", addrs[EngineEvloop])
		if err != nil {
			t.Fatal(err)
		}
		_, _ = raw.Write([]byte{22, 3, 1, 0, 200, 1})
		raw.Close()
		// The loop let them all go, and still serves.
		deadline := time.Now().Add(5 * time.Second)
		for servers[EngineEvloop].listeners[addrs[EngineEvloop]].ev.p.Active() != 0 {
			if time.Now().After(deadline) {
				t.Fatalf("the loops still hold %d connections", servers[EngineEvloop].listeners[addrs[EngineEvloop]].ev.p.Active())
			}
			time.Sleep(10 * time.Millisecond)
		}
		if got := exchangeTLS(t, addrs[EngineEvloop], tc("api.example.test"), "GET /still HTTP/1.1\r\nHost: api.example.test\r\n\r\n"); len(got) != 1 || !strings.HasPrefix(got[0], "200") {
			t.Fatalf("after the clients went away: %q", got)
		}
	})

	st := servers[EngineEvloop].evStats(t, addrs[EngineEvloop])
	// keep-alive 4, bodies 5, pipelined 2, redirect mid-connection 3
	// (the loop answers the redirect over TLS itself), split 1,
	// resumption 4, still 1; hand-offs: HTTP/1.0, malformed, HTTP/2.
	if st.Requests < 20 || st.Handoffs != 3 {
		t.Fatalf("event loop served %d requests and handed off %d connections, want at least 20 and 3", st.Requests, st.Handoffs)
	}
}

// exchangeTLSState sends one request on a new TLS connection, reads the
// answer to the end and returns the connection's state.
func exchangeTLSState(t *testing.T, addr string, cfg *tls.Config, req string) tls.ConnectionState {
	t.Helper()
	c, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(c)
	if err != nil || !strings.HasPrefix(string(b), "HTTP/1.1 200") {
		t.Fatalf("answer %q, %v", b, err)
	}
	return c.ConnectionState()
}

// TestEnginesAgreeMTLS: on a listener that asks for client certificates,
// a load balancer with mTLS authentication is handed off by the event loop
// with the handshake's state (the certificate the client showed), and
// answers as the goroutine engine does, with a certificate and without;
// another load balancer of the listener is served by the loop.
func TestEnginesAgreeMTLS(t *testing.T) {
	ca, err := dptest.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	origin := headerEcho(t)
	cfg := func(port int) string {
		return certYAML(t, ca, "srv", true, "*.example.test") + certYAML(t, ca, "clientca", false, "ca") + pool("a", hostOf(origin.URL)) + fmt.Sprintf(`---
apiVersion: meridian/v1
kind: HTTPLoadBalancer
metadata: {name: secure, namespace: t}
spec:
  domains: ["secure.example.test"]
  listeners: [{port: %[1]d, address: 127.0.0.1, tls: {certificateRef: srv}}]
  defaultPool: a
  authentication: {mtls: {caRef: clientca}}
---
apiVersion: meridian/v1
kind: HTTPLoadBalancer
metadata: {name: open, namespace: t}
spec:
  domains: ["open.example.test"]
  listeners: [{port: %[1]d, address: 127.0.0.1, tls: {certificateRef: srv}}]
  defaultPool: a
`, port)
	}
	addrs, servers := startEngines(t, cfg, func(string) Options {
		return Options{Stages: map[string]StageFactory{"authn": certStageFactory}}
	})
	clientCert, err := ca.TLSCert("client-one")
	if err != nil {
		t.Fatal(err)
	}
	withCert := &tls.Config{RootCAs: ca.Pool, ServerName: "secure.example.test", Certificates: []tls.Certificate{clientCert}, NextProtos: []string{"http/1.1"}}
	without := &tls.Config{RootCAs: ca.Pool, ServerName: "secure.example.test", NextProtos: []string{"http/1.1"}}
	for _, c := range []struct {
		name string
		tc   *tls.Config
		host string
	}{
		{"mtls with a certificate", withCert, "secure.example.test"},
		{"mtls without", without, "secure.example.test"},
		{"open load balancer", without, "open.example.test"},
	} {
		t.Run(c.name, func(t *testing.T) {
			reqs := []string{
				"GET /1 HTTP/1.1\r\nHost: " + c.host + "\r\n\r\n",
				"GET /2 HTTP/1.1\r\nHost: " + c.host + "\r\n\r\n",
			}
			want := exchangeTLS(t, addrs[EngineGoroutine], c.tc, reqs...)
			got := exchangeTLS(t, addrs[EngineEvloop], c.tc, reqs...)
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("evloop:\n%q\ngoroutine:\n%q", got, want)
			}
			if c.tc == withCert && (!strings.HasPrefix(got[0], "200") || !strings.Contains(got[0], "X-Client-Cn: client-one")) ||
				c.tc == without && c.host == "secure.example.test" && !strings.HasPrefix(got[0], "401") {
				t.Fatalf("answer %q", got[0])
			}
		})
	}
	if st := servers[EngineEvloop].evStats(t, addrs[EngineEvloop]); st.Requests < 2 || st.Handoffs < 2 {
		t.Fatalf("event loop served %d requests and handed off %d connections, want at least 2 and 2", st.Requests, st.Handoffs)
	}
}

// certStage stands in the "authn" slot for load balancers with mTLS (the
// node's authentication package cannot be imported here): it refuses a
// request whose connection showed no client certificate, and names the
// one shown to the origin.
type certStage struct{}

func certStageFactory(vh *config.VHost, _ *StageEnv) Stage {
	if vh.Authn == nil {
		return nil
	}
	return certStage{}
}

func (certStage) Name() string { return "authn" }

func (certStage) OnRequestHeaders(x *Exchange) Action {
	certs := x.PeerCertificates()
	if len(certs) == 0 {
		x.Reply = Reply{Status: 401, ContentType: "text/plain", Body: []byte("client certificate required\n")}
		return Respond
	}
	x.ReqHeaders.Set("X-Client-Cn", certs[0].Subject.CommonName)
	return Continue
}
