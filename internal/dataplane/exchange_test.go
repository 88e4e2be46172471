package dataplane

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"golang.org/x/net/http2"

	"github.com/meridian-platform/meridian/internal/dataplane/config"
	"github.com/meridian-platform/meridian/internal/dataplane/dptest"
)

// seen is what the recording stage copied out of one exchange.
type seen struct {
	target, proto, sni, peerCN string
	names                      []string
}

type viewStage struct {
	mu   sync.Mutex
	last seen
}

func (s *viewStage) Name() string { return "waf" }
func (s *viewStage) OnRequestHeaders(x *Exchange) Action {
	v := seen{target: string(x.RawTarget), proto: x.Proto, sni: x.SNI()}
	if c := x.PeerCertificates(); len(c) > 0 {
		v.peerCN = c[0].Subject.CommonName
	}
	x.VisitRawHeaders(func(n, _ []byte) { v.names = append(v.names, string(n)) })
	s.mu.Lock()
	s.last = v
	s.mu.Unlock()
	return Continue
}

func (s *viewStage) get() seen {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

// TestExchangeRawView checks the request view stages get: the target and
// header names as received, the protocol spoken, the TLS server name and
// the client certificate, on HTTP/1.0, HTTP/1.1 and HTTP/2.
func TestExchangeRawView(t *testing.T) {
	ca, err := dptest.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	a, _ := echoBackend(t, "a")
	plain, tlsPort := freePort(t), freePort(t)
	st := &viewStage{}
	src := certYAML(t, ca, "srv", true, "api.example.test") + certYAML(t, ca, "clientca", false, "ca") + pool("a", hostOf(a.URL)) + fmt.Sprintf(`---
apiVersion: meridian/v1
kind: HTTPLoadBalancer
metadata: {name: lb, namespace: t}
spec:
  domains: ["*"]
  listeners: [{port: %d, address: 127.0.0.1}, {port: %d, address: 127.0.0.1, tls: {certificateRef: srv}}]
  defaultPool: a
  authentication: {mtls: {caRef: clientca}}
`, plain, tlsPort)
	startServer(t, src, Options{Stages: map[string]StageFactory{"waf": func(*config.VHost, *StageEnv) Stage { return st }}})
	plainAddr, tlsAddr := fmt.Sprintf("127.0.0.1:%d", plain), fmt.Sprintf("127.0.0.1:%d", tlsPort)

	cases := []struct {
		name, req string
		want      seen
	}{
		{"http/1.1 raw target and names", "GET /a/../b%2Fc//d?x=%41&y HTTP/1.1\r\nhost: a\r\nX-MiXed: 1\r\nzz-last: 2\r\nConnection: close\r\n\r\n",
			seen{target: "/a/../b%2Fc//d?x=%41&y", proto: "HTTP/1.1", names: []string{"host", "X-MiXed", "zz-last", "Connection"}}},
		{"http/1.0", "GET /x HTTP/1.0\r\nHost: a\r\n\r\n", seen{target: "/x", proto: "HTTP/1.0", names: []string{"Host"}}},
		{"absolute form", "GET http://a/p?q HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", seen{target: "http://a/p?q", proto: "HTTP/1.1", names: []string{"Host", "Connection"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st.mu.Lock()
			st.last = seen{}
			st.mu.Unlock()
			if got := rawExchange(t, plainAddr, c.req); !strings.Contains(got, " 200 OK") {
				t.Fatalf("answer %q", got)
			}
			if got := st.get(); fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Fatalf("stage saw %+v, want %+v", got, c.want)
			}
		})
	}
	if got := rawExchange(t, plainAddr, "GET / HTTP/1.7\r\nHost: a\r\n\r\n"); !strings.HasPrefix(got, "HTTP/1.1 505") {
		t.Fatalf("HTTP/1.7: %q", got)
	}

	clientCert, err := ca.TLSCert("client-one")
	if err != nil {
		t.Fatal(err)
	}
	tc := &tls.Config{RootCAs: ca.Pool, ServerName: "api.example.test", Certificates: []tls.Certificate{clientCert}}
	for _, c := range []struct {
		name  string
		rt    http.RoundTripper
		proto string
	}{
		{"https http/1.1", &http.Transport{TLSClientConfig: tc}, "HTTP/1.1"},
		{"https http/2", &http2.Transport{TLSClientConfig: tc}, "HTTP/2.0"},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp, err := (&http.Client{Transport: c.rt}).Get("https://" + tlsAddr + "/t/%7e?z=1")
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			got := st.get()
			if got.proto != c.proto || got.target != "/t/%7e?z=1" || got.sni != "api.example.test" || got.peerCN != "client-one" {
				t.Fatalf("stage saw %+v", got)
			}
		})
	}
}
