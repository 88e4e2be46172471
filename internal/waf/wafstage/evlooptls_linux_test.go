//go:build linux

package wafstage

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/internal/dataplane/dptest"
)

// TestWAFOnEventLoopTLS is TestWAFOnEventLoop on a TLS listener: the loops
// serve the benign GET, answer the attack themselves (403 with the
// security event's request id) through the connection's TLS session, the
// connection goes on after the block, redirect and direct-response routes
// are answered on the loop too (the redirect keeps "https"), and an answer
// that closes the connection ends it with close_notify.
func TestWAFOnEventLoopTLS(t *testing.T) {
	ca, cert := shopCert(t)
	f := startLoopFront(t, "loopwaftls", &v1.AppFirewallSpec{}, []v1.Object{cert}, func(s *v1.HTTPLoadBalancerSpec) {
		s.Listeners[0].TLS = &v1.ListenerTLS{CertificateRef: "shop-cert"}
		s.Routes = []v1.HTTPRoute{
			{Match: v1.HTTPRouteMatch{PathPrefix: "/old"}, Redirect: &v1.HTTPRedirect{Path: "/new", Code: 301}},
			{Match: v1.HTTPRouteMatch{PathPrefix: "/teapot"}, DirectResponse: &v1.HTTPDirectResponse{Status: 418, Body: "short and stout\n"}},
		}
	})
	dial := func() *conn {
		tc, err := tls.Dial("tcp", f.addr, &tls.Config{ServerName: "shop.test", RootCAs: ca.Pool, NextProtos: []string{"http/1.1"}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tc.Close() })
		return &conn{t: t, c: tc, br: bufio.NewReader(tc)}
	}
	c := dial()

	benignThenBlocked(t, f, c, "t/loopwaftls")

	// Keep-alive goes on after the block, and the loop's own answers.
	resp, body := c.do("GET", "/after", "")
	if resp.StatusCode != 200 || body != "origin" {
		t.Fatalf("GET after the block: %d %q", resp.StatusCode, body)
	}
	resp, _ = c.do("GET", "/old/x?k=v", "")
	if loc := resp.Header.Get("Location"); resp.StatusCode != 301 || loc != "https://shop.test/new?k=v" {
		t.Fatalf("redirect over TLS: %d Location %q", resp.StatusCode, loc)
	}
	resp, body = c.do("GET", "/teapot", "")
	if resp.StatusCode != 418 || body != "short and stout\n" {
		t.Fatalf("direct response over TLS: %d %q", resp.StatusCode, body)
	}
	// An attack on the direct-response route is blocked before it.
	resp, _ = c.do("GET", "/teapot?q=<script>alert(1)</script>", "")
	if resp.StatusCode != 403 {
		t.Fatalf("XSS on the direct-response route: %d", resp.StatusCode)
	}
	// Pipelined: two requests in one write, both answered in order.
	c.c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c.c, "GET /p1?q=1%27%20OR%201=1-- HTTP/1.1\r\nHost: shop.test\r\n"+browserFields+"\r\nGET /p2 HTTP/1.1\r\nHost: shop.test\r\n"+browserFields+"\r\n"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []int{403, 200} {
		resp, err := http.ReadResponse(c.br, nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("pipelined: %d, want %d", resp.StatusCode, want)
		}
	}
	if reqs, handoffs := dptest.EvloopCounts(t, f.reg); reqs != 8 || handoffs != 0 {
		t.Fatalf("the loops served %v requests and handed off %v, want 8 and 0", reqs, handoffs)
	}

	// A block that closes the connection: the answer, then close_notify
	// (crypto/tls takes a cut at a record boundary for an end, so the
	// test reads the records: over TLS 1.2 an alert's record type is in
	// the clear).
	for i := 0; i < 2; i++ {
		raw, err := net.Dial("tcp", f.addr)
		if err != nil {
			t.Fatal(err)
		}
		rec := &recordingConn{Conn: raw}
		tc := tls.Client(rec, &tls.Config{ServerName: "shop.test", RootCAs: ca.Pool, MaxVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}})
		c := &conn{t: t, c: tc, br: bufio.NewReader(tc)}
		if i == 1 { // one that served requests before
			if resp, _ := c.do("GET", "/before", ""); resp.StatusCode != 200 {
				t.Fatalf("GET before the closing block: %d", resp.StatusCode)
			}
		}
		c.c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(c.c, "GET /bye?q=<script>alert(1)</script> HTTP/1.1\r\nHost: shop.test\r\n"+browserFields+"Connection: close\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(c.br, nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 403 || !resp.Close || !strings.Contains(string(body), "Request blocked") {
			t.Fatalf("connection %d: closing block: %d close=%v %q", i, resp.StatusCode, resp.Close, body)
		}
		if rest, err := io.ReadAll(c.br); err != nil || len(rest) != 0 {
			t.Fatalf("connection %d: after the closing answer: %q, %v", i, rest, err)
		}
		tc.Close()
		if types := rec.recordTypes(); len(types) < 2 || types[len(types)-1] != 21 || types[len(types)-2] != 23 {
			t.Fatalf("connection %d: record types %v, want the answer (23) then an alert (21: close_notify)", i, types)
		}
	}
	if reqs, handoffs := dptest.EvloopCounts(t, f.reg); reqs != 11 || handoffs != 0 {
		t.Fatalf("the loops served %v requests and handed off %v, want 11 and 0", reqs, handoffs)
	}

	// A body still goes to the goroutine engine, as the *tls.Conn.
	c = dial()
	resp, _ = c.do("POST", "/form", "q=1%27%20UNION%20SELECT%20password%20FROM%20users--")
	if resp.StatusCode != 403 {
		t.Fatalf("SQLi POST: %d", resp.StatusCode)
	}
	if _, handoffs := dptest.EvloopCounts(t, f.reg); handoffs != 1 {
		t.Fatalf("the POST was not handed off (%v hand-offs)", handoffs)
	}
	if resp, body := c.do("GET", "/after2", ""); resp.StatusCode != 200 || body != "origin" {
		t.Fatalf("GET after the POST: %d %q", resp.StatusCode, body)
	}
}

// recordingConn keeps what the server sent, to read its TLS records.
type recordingConn struct {
	net.Conn
	mu  sync.Mutex
	got []byte
}

func (c *recordingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	c.got = append(c.got, p[:n]...)
	c.mu.Unlock()
	return n, err
}

// recordTypes is the content type of each record the server sent.
func (c *recordingConn) recordTypes() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	var types []byte
	for b := c.got; len(b) >= 5; {
		n := int(b[3])<<8 | int(b[4])
		types = append(types, b[0])
		if len(b) < 5+n {
			break
		}
		b = b[5+n:]
	}
	return types
}

// shopCert is a CA and a Certificate object "shop-cert" for shop.test
// it issued.
func shopCert(tb testing.TB) (*dptest.CA, *v1.Certificate) {
	tb.Helper()
	ca, err := dptest.NewCA()
	if err != nil {
		tb.Fatal(err)
	}
	certPEM, keyPEM, err := ca.Issue("shop.test")
	if err != nil {
		tb.Fatal(err)
	}
	cert := &v1.Certificate{Spec: v1.CertificateSpec{Certificate: certPEM, PrivateKey: v1.Secret(keyPEM)}}
	cert.Kind, cert.APIVersion = "Certificate", "meridian/v1"
	cert.Metadata.Namespace, cert.Metadata.Name = "t", "shop-cert"
	return ca, cert
}

// BenchmarkLoopGETTLS is BenchmarkLoopGET over TLS (one keep-alive
// connection, the WAF on the loop); BenchmarkLoopGETTLSNoWAF without the
// WAF.
func BenchmarkLoopGETTLS(b *testing.B) { benchLoopGETTLS(b, &v1.AppFirewallSpec{}) }

func BenchmarkLoopGETTLSNoWAF(b *testing.B) { benchLoopGETTLS(b, nil) }

func benchLoopGETTLS(b *testing.B, fw *v1.AppFirewallSpec) {
	ca, cert := shopCert(b)
	f := startLoopFrontTo(b, dptest.CannedOrigin(b), nil, "benchtls", fw, []v1.Object{cert}, func(s *v1.HTTPLoadBalancerSpec) {
		s.AccessLog = nil
		s.Listeners[0].TLS = &v1.ListenerTLS{CertificateRef: "shop-cert"}
	})
	c, err := tls.Dial("tcp", f.addr, &tls.Config{ServerName: "shop.test", RootCAs: ca.Pool, NextProtos: []string{"http/1.1"}})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	runLoopGET(b, f, c)
}
