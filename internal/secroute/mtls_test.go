package secroute_test

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/meridian-platform/meridian/internal/dataplane"
	"github.com/meridian-platform/meridian/internal/dataplane/dptest"
	"github.com/meridian-platform/meridian/internal/node"
	"github.com/meridian-platform/meridian/internal/testfixture"
)

func indent(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimSpace(s), "\n", "\n    ") + "\n"
}

// TestMTLSRouteAndSNIPolicy: a route authenticates with client
// certificates (the listener asks for them because of it), another route
// stays open; claims of the certificate and the SNI reach policies.
func TestMTLSRouteAndSNIPolicy(t *testing.T) {
	sec := node.NewSecurity(io.Discard)
	testMTLSRoute(t, true, func(doc string) {
		applyDoc(t, startDataplane(t, dataplane.Options{Stages: sec.Stages}), sec, doc)
	})
}

// testMTLSRoute runs the cases of TestMTLSRouteAndSNIPolicy on the data
// plane start gives the objects to (forward: the route forwards the
// certificate's subject to the origin).
func testMTLSRoute(t *testing.T, forward bool, start func(doc string)) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "client="+r.Header.Get("X-Client"))
	}))
	defer backend.Close()
	serverCA, err := dptest.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	clientCA, err := dptest.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	otherCA, _ := dptest.NewCA()
	certPEM, keyPEM, err := serverCA.Issue("api.example.com", "other.example.com")
	if err != nil {
		t.Fatal(err)
	}
	port := testfixture.FreePort(t)
	doc := fmt.Sprintf(`
apiVersion: meridian/v1
kind: OriginPool
metadata: {name: backend, namespace: shop}
spec: {endpoints: [{address: "%s"}]}
---
apiVersion: meridian/v1
kind: Certificate
metadata: {name: tls, namespace: shop}
spec:
  certificate: |
%s  privateKey: |
%s---
apiVersion: meridian/v1
kind: Certificate
metadata: {name: clients, namespace: shop}
spec:
  certificate: |
%s---
apiVersion: meridian/v1
kind: ServicePolicy
metadata: {name: api-host-only, namespace: shop}
spec: {rules: [{name: other-sni, action: deny, status: 421, match: {sni: [other.example.com]}}]}
---
apiVersion: meridian/v1
kind: HTTPLoadBalancer
metadata: {name: api, namespace: shop}
spec:
  domains: ["*"]
  listeners: [{port: %d, address: 127.0.0.1, tls: {certificateRef: tls}}]
  defaultPool: backend
  routes:
    - match: {pathPrefix: /internal}
      servicePolicies: [api-host-only]
      authentication:
        mtls: {caRef: clients, allowedNames: [svc-a.internal]}
`, strings.TrimPrefix(backend.URL, "http://"), indent(certPEM), indent(keyPEM), indent(clientCA.CertPEM), port)
	client := ""
	if forward {
		doc += "        forwardClaims: [{claim: sub, header: X-Client}]\n"
		client = "svc-a.internal"
	}
	start(doc)
	get := func(sni, path string, cert *tls.Certificate) (int, string) {
		t.Helper()
		cfg := &tls.Config{RootCAs: serverCA.Pool, ServerName: sni}
		if cert != nil {
			cfg.Certificates = []tls.Certificate{*cert}
		}
		c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
		defer c.CloseIdleConnections()
		resp, err := c.Get(fmt.Sprintf("https://127.0.0.1:%d%s", port, path))
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	good, err := clientCA.TLSCert("svc-a.internal")
	if err != nil {
		t.Fatal(err)
	}
	wrongName, _ := clientCA.TLSCert("svc-b.internal")
	foreign, _ := otherCA.TLSCert("svc-a.internal")
	for _, tc := range []struct {
		name, sni, path string
		cert            *tls.Certificate
		want            int
		body            string
	}{
		{"open route without a certificate", "api.example.com", "/", nil, 200, "client="},
		{"mtls route without a certificate", "api.example.com", "/internal/x", nil, 401, ""},
		{"mtls route", "api.example.com", "/internal/x", &good, 200, "client=" + client},
		{"name not allowed", "api.example.com", "/internal/x", &wrongName, 403, ""},
		{"untrusted CA", "api.example.com", "/internal/x", &foreign, 401, ""},
		{"SNI policy after authentication", "other.example.com", "/internal/x", &good, 421, ""},
	} {
		code, body := get(tc.sni, tc.path, tc.cert)
		if code != tc.want || tc.body != "" && body != tc.body {
			t.Errorf("%s: %d %q, want %d %q", tc.name, code, body, tc.want, tc.body)
		}
	}
}
