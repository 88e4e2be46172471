package wafstage

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"golang.org/x/net/http2"

	v1 "github.com/meridian-platform/meridian/api/v1"
)

// h2cClient speaks cleartext HTTP/2 with prior knowledge.
func h2cClient() *http.Client {
	return &http.Client{Transport: &http2.Transport{AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		}}}
}

// Over HTTP/2 a body may come without Content-Length (DATA frames until
// the stream ends): the WAF must still inspect it.
func TestHTTP2BodyWithoutContentLength(t *testing.T) {
	addr := startFrontWith(t, "h2body", v1.AppFirewallSpec{RequestBody: v1.WAFRequestBody{Limit: 8192}}, reflectBackend(t), nil,
		func(s *v1.HTTPLoadBalancerSpec) { s.Listeners[0].H2C = true })
	c := h2cClient()
	const attack = `{"comment":"<script>alert(document.cookie)</script>"}`
	for _, c0 := range []struct {
		name string
		body func() io.Reader
	}{
		{"with Content-Length", func() io.Reader { return strings.NewReader(attack) }},
		// A reader of unknown length: the client sends no Content-Length.
		{"without Content-Length", func() io.Reader { return io.MultiReader(strings.NewReader(attack)) }},
	} {
		req, _ := http.NewRequest("POST", "http://"+addr+"/api", c0.body())
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0")
		req.Header.Set("Accept", "application/json")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", c0.name, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.ProtoMajor != 2 || resp.StatusCode != 403 {
			t.Errorf("%s: XSS in an HTTP/2 body answered %s %d, want 403", c0.name, resp.Proto, resp.StatusCode)
		}
	}
	for _, c0 := range []struct {
		name, method, target string
		body                 io.Reader
		want                 int
	}{
		{"benign POST streamed without Content-Length", "POST", "/api", io.MultiReader(strings.NewReader(`{"name":"alice"}`)), 200},
		{"benign GET", "GET", "/api/users?id=42", nil, 200},
		{"SQL injection in a GET", "GET", "/search?q=1%27%20UNION%20SELECT%20password%20FROM%20users--", nil, 403},
		// A method that carries a body, sent without one and without
		// Content-Length: no body callback comes, the score is added up
		// on the response headers at the latest.
		// A GET whose body comes without Content-Length is inspected
		// too: the engine says a body follows whatever the method.
		{"XSS in a GET body without Content-Length", "GET", "/api", io.MultiReader(strings.NewReader(`{"comment":"<script>alert(document.cookie)</script>"}`)), 403},
		{"SQL injection in a bodiless PUT-like method", "REPORT", "/search?q=1%27%20UNION%20SELECT%20password%20FROM%20users--", nil, 403},
	} {
		req, _ := http.NewRequest(c0.method, "http://"+addr+c0.target, c0.body)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0")
		req.Header.Set("Accept", "application/json")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", c0.name, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c0.want {
			t.Errorf("%s: answered %d, want %d", c0.name, resp.StatusCode, c0.want)
		}
	}
}
