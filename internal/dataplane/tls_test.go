package dataplane

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"sigs.k8s.io/yaml"

	"github.com/meridian-platform/meridian/internal/dataplane/dptest"
)

func certYAML(t *testing.T, ca *dptest.CA, name string, withKey bool, names ...string) string {
	t.Helper()
	c, k, err := ca.Issue(names...)
	if err != nil {
		t.Fatal(err)
	}
	spec := map[string]any{"certificate": c}
	if withKey {
		spec["privateKey"] = k
	} else {
		spec["certificate"] = ca.CertPEM
	}
	b, err := yaml.Marshal(map[string]any{"apiVersion": "meridian/v1", "kind": "Certificate",
		"metadata": map[string]any{"name": name, "namespace": "t"}, "spec": spec})
	if err != nil {
		t.Fatal(err)
	}
	return string(b) + "---\n"
}

// sniCertsYAML is three certificates with their keys for SNI selection:
// "def" for default.test, "wild" for *.example.test, "api" for
// api.example.test.
func sniCertsYAML(t *testing.T, ca *dptest.CA) string {
	return certYAML(t, ca, "def", true, "default.test") + certYAML(t, ca, "wild", true, "*.example.test") +
		certYAML(t, ca, "api", true, "api.example.test")
}

// sniLBYAML is sniCertsYAML, the pool "a" of the origin at originURL and
// the load balancer "lb" for every domain on a TLS listener at
// 127.0.0.1:port choosing among the three certificates by SNI (def the
// default), with the more spec lines (YAML at the spec's indentation).
func sniLBYAML(t *testing.T, ca *dptest.CA, originURL string, port int, more string) string {
	return sniCertsYAML(t, ca) + pool("a", hostOf(originURL)) + fmt.Sprintf(`---
apiVersion: meridian/v1
kind: HTTPLoadBalancer
metadata: {name: lb, namespace: t}
spec:
  domains: ["*"]
  listeners: [{port: %d, address: 127.0.0.1, tls: {certificateRef: def, certificateRefs: [wild, api]}}]
`, port) + more
}

func TestTLSSNIAndHTTP2(t *testing.T) {
	ca, err := dptest.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	a, _ := echoBackend(t, "a")
	port := freePort(t)
	src := sniLBYAML(t, ca, a.URL, port, "  defaultPool: a\n")
	startServer(t, src, Options{})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	for sni, want := range map[string]string{"api.example.test": "api.example.test", "www.example.test": "*.example.test", "other.test": "default.test", "": "default.test"} {
		c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: sni, RootCAs: ca.Pool, InsecureSkipVerify: sni == "" || sni == "other.test"})
		if err != nil {
			t.Fatalf("sni %q: %v", sni, err)
		}
		if got := c.ConnectionState().PeerCertificates[0].Subject.CommonName; got != want {
			t.Errorf("sni %q: cert %q, want %q", sni, got, want)
		}
		c.Close()
	}
	// HTTP/1.1 over TLS.
	h1c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool, ServerName: "api.example.test"}}}
	resp, err := h1c.Get("https://" + addr + "/x")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.Proto != "HTTP/1.1" || !strings.Contains(string(b), "xfp=https") {
		t.Fatalf("h1 over tls: %s %q", resp.Proto, b)
	}
	// HTTP/2 over TLS (ALPN).
	h2c := &http.Client{Transport: &http2.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool, ServerName: "api.example.test"}}}
	resp, err = h2c.Get("https://" + addr + "/h2?x=1")
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 2 || !strings.Contains(string(b), "uri=/h2?x=1") || !strings.Contains(string(b), "xfp=https") || resp.Header.Get("X-Backend") != "a" {
		t.Fatalf("h2: %s %q %v", resp.Proto, b, resp.Header)
	}
}

func TestOriginTLS(t *testing.T) {
	ca, err := dptest.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	backend := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "tls=%v client=%s", r.TLS != nil, r.TLS.PeerCertificates[0].Subject.CommonName)
	}))
	srvCert, err := ca.TLSCert("origin.internal")
	if err != nil {
		t.Fatal(err)
	}
	backend.TLS = &tls.Config{Certificates: []tls.Certificate{srvCert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: ca.Pool}
	backend.StartTLS()
	defer backend.Close()
	port := freePort(t)
	src := certYAML(t, ca, "ca", false, "unused") + certYAML(t, ca, "client", true, "proxy-client") + fmt.Sprintf(`apiVersion: meridian/v1
kind: OriginPool
metadata: {name: a, namespace: t}
spec: {endpoints: [{address: %q}], tls: {sni: origin.internal, caRef: ca, clientCertRef: client}}
---
apiVersion: meridian/v1
kind: HTTPLoadBalancer
metadata: {name: lb, namespace: t}
spec: {domains: ["*"], listeners: [{port: %d, address: 127.0.0.1}], defaultPool: a}
`, hostOf(backend.URL), port)
	startServer(t, src, Options{})
	resp, body := get(t, fmt.Sprintf("http://127.0.0.1:%d/", port), nil)
	if resp.StatusCode != 200 || body != "tls=true client=proxy-client" {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
}

func TestGRPCOverH2CAndTLS(t *testing.T) {
	ca, err := dptest.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	// gRPC origin over h2c.
	gaddr, hs := grpcHealthOrigin(t, []string{"shop"})
	p1, p2 := freePort(t), freePort(t)
	src := certYAML(t, ca, "cert", true, "grpc.test") + pool("g", gaddr) + fmt.Sprintf(`---
apiVersion: meridian/v1
kind: HTTPLoadBalancer
metadata: {name: lb, namespace: t}
spec:
  domains: ["*"]
  listeners: [{port: %d, address: 127.0.0.1, h2c: true}, {port: %d, address: 127.0.0.1, tls: {certificateRef: cert}}]
  defaultPool: g
`, p1, p2)
	startServer(t, src, Options{})
	dials := map[string]grpc.DialOption{
		"h2c": grpc.WithTransportCredentials(insecure.NewCredentials()),
		"tls": grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: ca.Pool, ServerName: "grpc.test"})),
	}
	for name, opt := range dials {
		t.Run(name, func(t *testing.T) {
			port := p1
			if name == "tls" {
				port = p2
			}
			cc, err := grpc.NewClient(fmt.Sprintf("127.0.0.1:%d", port), opt)
			if err != nil {
				t.Fatal(err)
			}
			defer cc.Close()
			hc := healthpb.NewHealthClient(cc)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			// Unary call; the status travels in trailers.
			r, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: "shop"})
			if err != nil || r.Status != healthpb.HealthCheckResponse_SERVING {
				t.Fatalf("check: %v %v", r, err)
			}
			if _, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: "nope"}); err == nil || !strings.Contains(err.Error(), "NotFound") {
				t.Fatalf("unknown service: %v", err)
			}
			// Server streaming.
			w, err := hc.Watch(ctx, &healthpb.HealthCheckRequest{Service: "shop"})
			if err != nil {
				t.Fatal(err)
			}
			m, err := w.Recv()
			if err != nil || m.Status != healthpb.HealthCheckResponse_SERVING {
				t.Fatalf("watch 1: %v %v", m, err)
			}
			hs.SetServingStatus("shop", healthpb.HealthCheckResponse_NOT_SERVING)
			m, err = w.Recv()
			if err != nil || m.Status != healthpb.HealthCheckResponse_NOT_SERVING {
				t.Fatalf("watch 2: %v %v", m, err)
			}
			hs.SetServingStatus("shop", healthpb.HealthCheckResponse_SERVING)
			// Deadlines propagate.
			dctx, dcancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer dcancel()
			w2, err := hc.Watch(dctx, &healthpb.HealthCheckRequest{Service: "shop"})
			if err == nil {
				_, _ = w2.Recv()
				_, err = w2.Recv()
			}
			// The call ends at its deadline: the client reports its own
			// deadline, or the origin's answer to the propagated one.
			if err == nil || !strings.Contains(err.Error(), "DeadlineExceeded") && !strings.Contains(err.Error(), "Canceled") {
				t.Fatalf("deadline: %v", err)
			}
			// (The health service's Watch answers Canceled when the deadline
			// reaches it through grpc-timeout: that too shows propagation.)
		})
	}
}

func TestWebSocketUpgrade(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			http.Error(w, "upgrade required", http.StatusUpgradeRequired)
			return
		}
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		fmt.Fprintf(brw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nX-Xff: %s\r\nX-Secret-Seen: %q\r\n\r\n",
			r.Header.Get("X-Forwarded-For"), r.Header.Get("X-Secret"))
		brw.Flush()
		// Echo lines back.
		for {
			line, err := brw.ReadString('\n')
			if err != nil {
				return
			}
			brw.WriteString("echo " + line)
			brw.Flush()
		}
	}))
	defer backend.Close()
	port := freePort(t)
	startServer(t, pool("ws", hostOf(backend.URL))+fmt.Sprintf(`---
apiVersion: meridian/v1
kind: HTTPLoadBalancer
metadata: {name: lb, namespace: t}
spec: {domains: ["*"], listeners: [{port: %d, address: 127.0.0.1}], defaultPool: ws}
`, port), Options{})
	c := dialFor(t, fmt.Sprintf("127.0.0.1:%d", port), 5*time.Second)
	defer c.Close()
	// X-Secret is named in Connection: hop-by-hop, so the origin must not
	// see it (RFC 9110 7.6.1).
	io.WriteString(c, "GET /chat HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade, X-Secret\r\nX-Secret: s\r\nSec-WebSocket-Key: x\r\nSec-WebSocket-Version: 13\r\n\r\n")
	br := bufio.NewReader(c)
	status, err := br.ReadString('\n')
	if err != nil || !strings.Contains(status, "101") {
		t.Fatalf("status %q %v", status, err)
	}
	var xff, secret string
	for {
		l, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(l, "X-Xff:") {
			xff = strings.TrimSpace(l[6:])
		}
		if strings.HasPrefix(l, "X-Secret-Seen:") {
			secret = strings.TrimSpace(l[14:])
		}
		if l == "\r\n" {
			break
		}
	}
	if xff != "127.0.0.1" {
		t.Fatalf("xff %q", xff)
	}
	if secret != `""` {
		t.Fatalf("the origin saw X-Secret, a field the client named in Connection: %s", secret)
	}
	for _, msg := range []string{"one\n", "two\n"} {
		io.WriteString(c, msg)
		got, err := br.ReadString('\n')
		if err != nil || got != "echo "+msg {
			t.Fatalf("got %q %v", got, err)
		}
	}
}

func TestTCPPassthroughBySNI(t *testing.T) {
	ca, err := dptest.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	mk := func(name string) *httptest.Server {
		s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "%s saw %s", name, r.RemoteAddr)
		}))
		c, err := ca.TLSCert(name + ".example.test")
		if err != nil {
			t.Fatal(err)
		}
		s.TLS = &tls.Config{Certificates: []tls.Certificate{c}}
		s.StartTLS()
		t.Cleanup(s.Close)
		return s
	}
	a, b := mk("a"), mk("b")
	plain, _ := echoBackend(t, "plain")
	port := freePort(t)
	startServer(t, pool("a", hostOf(a.URL))+"---\n"+pool("b", hostOf(b.URL))+"---\n"+pool("plain", hostOf(plain.URL))+fmt.Sprintf(`---
apiVersion: meridian/v1
kind: TCPLoadBalancer
metadata: {name: tcp, namespace: t}
spec:
  listeners: [{port: %d, address: 127.0.0.1}]
  routes: [{sni: [a.example.test], pool: a}, {sni: ["*.example.test"], pool: b}]
  pool: plain
`, port), Options{})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	for sni, want := range map[string]string{"a.example.test": "a", "b.example.test": "b"} {
		cl := &http.Client{Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: ca.Pool, ServerName: sni, InsecureSkipVerify: sni != want+".example.test"},
			DialContext:     func(ctx context.Context, _, _ string) (net.Conn, error) { return net.Dial("tcp", addr) },
		}}
		resp, err := cl.Get("https://" + sni + "/")
		if err != nil {
			t.Fatalf("%s: %v", sni, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.HasPrefix(string(body), want+" saw") {
			t.Fatalf("%s: %q", sni, body)
		}
	}
	// Plain TCP (no TLS) goes to the default pool.
	got := rawExchange(t, addr, "GET /plain HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	if !strings.Contains(got, "backend=plain") {
		t.Fatalf("plain: %q", got)
	}
}

func TestTLSMinVersion(t *testing.T) {
	ca, err := dptest.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	a, _ := echoBackend(t, "a")
	port := freePort(t)
	startServer(t, certYAML(t, ca, "c", true, "v13.test")+pool("a", hostOf(a.URL))+fmt.Sprintf(`---
apiVersion: meridian/v1
kind: HTTPLoadBalancer
metadata: {name: lb, namespace: t}
spec:
  domains: ["*"]
  listeners: [{port: %d, address: 127.0.0.1, tls: {certificateRef: c, minVersion: "1.3"}, http2: false}]
  defaultPool: a
`, port), Options{})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	if c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: ca.Pool, ServerName: "v13.test", MaxVersion: tls.VersionTLS12}); err == nil {
		c.Close()
		t.Fatal("TLS 1.2 accepted on a 1.3-only listener")
	}
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: ca.Pool, ServerName: "v13.test", NextProtos: []string{"h2", "http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if st := c.ConnectionState(); st.Version != tls.VersionTLS13 || st.NegotiatedProtocol == "h2" {
		t.Fatalf("version %x alpn %q", st.Version, st.NegotiatedProtocol)
	}
}
