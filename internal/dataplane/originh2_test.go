package dataplane

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/internal/dataplane/dptest"
)

// h2Origin is an origin that reports the protocol it was spoken to and
// counts its connections.
type h2Origin struct {
	srv   *httptest.Server
	conns atomic.Int64
}

func newH2Origin(t *testing.T, ca *dptest.CA, tlsOn bool) *h2Origin {
	o := &h2Origin{}
	o.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Origin-Proto", r.Proto)
		w.Header().Set("Connection", "x-hop") // must not reach the client
		fmt.Fprintf(w, "proto=%s method=%s uri=%s host=%s xff=%s body=%s", r.Proto, r.Method, r.RequestURI, r.Host, r.Header.Get("X-Forwarded-For"), b)
	}))
	o.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			o.conns.Add(1)
		}
	}
	if tlsOn {
		c, err := ca.TLSCert("origin.test")
		if err != nil {
			t.Fatal(err)
		}
		o.srv.EnableHTTP2 = true
		o.srv.TLS = &tls.Config{Certificates: []tls.Certificate{c}}
		o.srv.StartTLS()
		t.Cleanup(o.srv.Close)
	} else {
		startH2C(t, o.srv, false)
	}
	return o
}

// TestOriginPoolHTTP2 sends HTTP/1.1 and HTTP/2 clients' requests to
// pools that speak HTTP/2 to their origins, over TLS with ALPN and over
// h2c, and checks the requests share a few connections.
func TestOriginPoolHTTP2(t *testing.T) {
	ca, err := dptest.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	tlsOrigin, h2cOrigin := newH2Origin(t, ca, true), newH2Origin(t, ca, false)
	port := freePort(t)
	src := certYAML(t, ca, "origin-ca", false, "ca") +
		poolWith("tls", hostOf(tlsOrigin.srv.URL), "protocol: http2, tls: {caRef: origin-ca, sni: origin.test}") +
		poolWith("plain", hostOf(h2cOrigin.srv.URL), "protocol: h2c") +
		lbDoc([]string{listenerAt(port, "h2c: true")}, "{match: {pathPrefix: /tls}, pool: tls, prefixRewrite: /rewritten}", "{match: {pathPrefix: /h2c}, pool: plain}")
	startServer(t, src, Options{})
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	clients := map[string]*http.Client{"http/1.1 client": {}, "h2c client": h2cClient()}
	cases := []struct {
		name, path, body string
		want             []string
	}{
		{"tls+alpn", "/tls/a?q=1", "", []string{"proto=HTTP/2.0", "method=GET", "uri=/rewritten/a?q=1", "host=shop.test", "xff=127.0.0.1"}},
		{"tls+alpn with body", "/tls/post", "hello h2", []string{"proto=HTTP/2.0", "method=POST", "body=hello h2"}},
		{"h2c", "/h2c/x", "", []string{"proto=HTTP/2.0", "uri=/h2c/x"}},
		{"h2c with body", "/h2c/y", strings.Repeat("z", 100<<10), []string{"proto=HTTP/2.0", "method=POST", "body=zzzz"}},
	}
	for cname, c := range clients {
		for _, tc := range cases {
			t.Run(cname+"/"+tc.name, func(t *testing.T) {
				method := "GET"
				var rd io.Reader
				if tc.body != "" {
					method, rd = "POST", strings.NewReader(tc.body)
				}
				req, _ := http.NewRequest(method, base+tc.path, rd)
				req.Host = "shop.test"
				resp, err := c.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || resp.Header.Get("X-Origin-Proto") != "HTTP/2.0" || resp.Header.Get("X-Hop") != "" {
					t.Fatalf("%d %v %q", resp.StatusCode, resp.Header, b)
				}
				for _, w := range tc.want {
					if !strings.Contains(string(b), w) {
						t.Fatalf("answer %.200q lacks %q", b, w)
					}
				}
				if tc.body != "" && !strings.HasSuffix(string(b), tc.body) {
					t.Fatalf("body not passed whole: %d bytes back", len(b))
				}
			})
		}
	}
	// Many concurrent requests share the endpoint's multiplexed connection.
	tlsBefore, h2cBefore := tlsOrigin.conns.Load(), h2cOrigin.conns.Load()
	var wg sync.WaitGroup
	var failed atomic.Int64
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			path := "/tls/c"
			if i%2 == 0 {
				path = "/h2c/c"
			}
			resp, err := http.Get(base + path)
			if err != nil {
				failed.Add(1)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				failed.Add(1)
			}
		}(i)
	}
	wg.Wait()
	if failed.Load() > 0 {
		t.Fatalf("%d concurrent requests failed", failed.Load())
	}
	if n := tlsOrigin.conns.Load() - tlsBefore + h2cOrigin.conns.Load() - h2cBefore; n > 2 {
		t.Fatalf("40 concurrent requests opened %d new origin connections; HTTP/2 should multiplex", n)
	}
}

func TestOriginPoolProtocolValidation(t *testing.T) {
	cases := []struct {
		name  string
		spec  v1.OriginPoolSpec
		field string
	}{
		{"http2 without tls", v1.OriginPoolSpec{Protocol: "http2"}, "spec.protocol"},
		{"h2c with tls", v1.OriginPoolSpec{Protocol: "h2c", TLS: &v1.OriginTLS{}}, "spec.protocol"},
		{"unknown", v1.OriginPoolSpec{Protocol: "spdy"}, "spec.protocol"},
		{"proxy protocol on shared connections", v1.OriginPoolSpec{Protocol: "h2c", ProxyProtocol: 2}, "spec.proxyProtocol"},
		{"http1", v1.OriginPoolSpec{Protocol: "http1"}, ""},
		{"http2 with tls", v1.OriginPoolSpec{Protocol: "http2", TLS: &v1.OriginTLS{}}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := &v1.OriginPool{Spec: c.spec}
			p.Spec.Endpoints = []v1.OriginEndpoint{{Address: "127.0.0.1:1"}}
			p.Default()
			var got string
			for _, e := range p.Validate() {
				if strings.HasPrefix(e.Field, "spec.protocol") || strings.HasPrefix(e.Field, "spec.proxyProtocol") {
					got = e.Field
				}
			}
			if got != c.field {
				t.Fatalf("error field %q, want %q (%v)", got, c.field, p.Validate())
			}
		})
	}
}
