package lb

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fastCheck is a health check that runs every 10ms.
func fastCheck(hc HealthCheckConfig) *HealthCheckConfig {
	hc.Interval = 10 * time.Millisecond
	if hc.Timeout == 0 {
		hc.Timeout = 500 * time.Millisecond
	}
	hc.HealthyThreshold = 2
	hc.UnhealthyThreshold = 2
	return &hc
}

func waitHealth(t *testing.T, e *Endpoint, want HealthState) {
	t.Helper()
	eventually(t, 5*time.Second, "endpoint "+e.Addr()+" "+want.String(), func() bool { return e.Health() == want })
}

func TestHTTPHealthCheck(t *testing.T) {
	var status atomic.Int32
	status.Store(204)
	type seen struct{ method, path, host, ua string }
	var mu sync.Mutex
	var last seen
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		last = seen{r.Method, r.URL.Path, r.Host, r.UserAgent()}
		mu.Unlock()
		w.WriteHeader(int(status.Load()))
	}))
	defer srv.Close()

	r, logs := newTestRegistry(t, RegistryOptions{})
	p := mustPool(t, r, PoolConfig{
		Endpoints: []EndpointConfig{{Address: srv.Listener.Addr().String()}},
		HealthCheck: fastCheck(HealthCheckConfig{HTTP: &HTTPCheck{
			Path: "/healthz", Host: "shop.internal", Method: "HEAD", ExpectedStatus: []int{200, 204},
		}}),
	})
	e := p.Endpoints()[0]
	if got := e.Health(); got != HealthUnknown && got != HealthHealthy {
		t.Fatalf("fresh endpoint health %v, want unknown (treated as healthy)", got)
	}
	if !e.Available() {
		t.Fatal("fresh endpoint is not available")
	}
	waitHealth(t, e, HealthHealthy)
	mu.Lock()
	got := last
	mu.Unlock()
	if got != (seen{"HEAD", "/healthz", "shop.internal", "meridian-health-check"}) {
		t.Errorf("probe request %+v", got)
	}

	status.Store(503)
	waitHealth(t, e, HealthUnhealthy)
	if e.Available() {
		t.Error("unhealthy endpoint is available")
	}
	if s := p.Stats(); s.Available != 0 || s.Endpoints[0].Health != HealthUnhealthy {
		t.Errorf("stats after failure: %+v", s)
	}
	status.Store(200)
	waitHealth(t, e, HealthHealthy)

	// Transitions are logged.
	for _, want := range []string{"endpoint unhealthy", "unexpected status 503", "from=unhealthy", "pool=t/ns/pool"} {
		eventually(t, 5*time.Second, "log line "+want, func() bool { return contains(logs.String(), want) })
	}
}

func TestHTTPHealthCheckThresholds(t *testing.T) {
	// A probe that alternates fail/ok never reaches a threshold of 2 in a
	// row, so the state does not flap.
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%2 == 0 {
			w.WriteHeader(500)
		}
	}))
	defer srv.Close()
	r, _ := newTestRegistry(t, RegistryOptions{})
	p := mustPool(t, r, PoolConfig{
		Endpoints:   []EndpointConfig{{Address: srv.Listener.Addr().String()}},
		HealthCheck: fastCheck(HealthCheckConfig{HTTP: &HTTPCheck{}}),
	})
	e := p.Endpoints()[0]
	waitHealth(t, e, HealthHealthy)
	start := n.Load()
	eventually(t, 5*time.Second, "10 more probes", func() bool { return n.Load() >= start+10 })
	if got := e.Health(); got != HealthHealthy {
		t.Fatalf("alternating probes made the endpoint %v", got)
	}
}

func TestHTTPSHealthCheck(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil {
			w.WriteHeader(400)
		}
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	defer srv.Close()
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	r, _ := newTestRegistry(t, RegistryOptions{})
	good := &tls.Config{RootCAs: roots, ServerName: "example.com"}
	p := mustPool(t, r, PoolConfig{
		Endpoints:   []EndpointConfig{{Address: srv.Listener.Addr().String()}},
		HealthCheck: fastCheck(HealthCheckConfig{HTTP: &HTTPCheck{}, TLS: good}),
	})
	e := p.Endpoints()[0]
	waitHealth(t, e, HealthHealthy)
	// An untrusted server certificate fails the check.
	mustPool(t, r, PoolConfig{
		Endpoints:   []EndpointConfig{{Address: srv.Listener.Addr().String()}},
		HealthCheck: fastCheck(HealthCheckConfig{HTTP: &HTTPCheck{}, TLS: &tls.Config{ServerName: "example.com"}}),
	})
	waitHealth(t, e, HealthUnhealthy)
}

// echoServer answers "PONG\n" to a "PING\n" line, or "NOPE\n" to anything
// else, until closed.
func echoServer(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(2 * time.Second))
				line, err := bufio.NewReader(c).ReadString('\n')
				if err != nil {
					return
				}
				if line == "PING\n" {
					_, _ = io.WriteString(c, "PONG\n")
				} else {
					_, _ = io.WriteString(c, "NOPE\n")
				}
			}()
		}
	}()
	return ln
}

func TestTCPHealthCheck(t *testing.T) {
	ln := echoServer(t)
	addr := ln.Addr().String()
	r, logs := newTestRegistry(t, RegistryOptions{})
	cfg := PoolConfig{
		Endpoints:   []EndpointConfig{{Address: addr}},
		HealthCheck: fastCheck(HealthCheckConfig{TCP: &TCPCheck{Send: "PING\n", Expect: "PONG"}}),
	}
	p := mustPool(t, r, cfg)
	e := p.Endpoints()[0]
	waitHealth(t, e, HealthHealthy)

	// A wrong reply fails the check.
	cfg.HealthCheck = fastCheck(HealthCheckConfig{TCP: &TCPCheck{Send: "HELLO\n", Expect: "PONG"}})
	mustPool(t, r, cfg)
	waitHealth(t, e, HealthUnhealthy)
	eventually(t, 5*time.Second, "mismatch logged", func() bool { return contains(logs.String(), `does not start with \"PONG\"`) })

	// Connect-only check recovers it; closing the listener fails it.
	cfg.HealthCheck = fastCheck(HealthCheckConfig{TCP: &TCPCheck{}})
	mustPool(t, r, cfg)
	waitHealth(t, e, HealthHealthy)
	ln.Close()
	waitHealth(t, e, HealthUnhealthy)
	eventually(t, 5*time.Second, "connect failure logged", func() bool { return contains(logs.String(), "connection refused") })
}

func TestHealthCheckTimeout(t *testing.T) {
	// A server that accepts but never answers fails by timeout.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	}()
	r, _ := newTestRegistry(t, RegistryOptions{})
	p := mustPool(t, r, PoolConfig{
		Endpoints:   []EndpointConfig{{Address: ln.Addr().String()}},
		HealthCheck: fastCheck(HealthCheckConfig{HTTP: &HTTPCheck{}, Timeout: 30 * time.Millisecond}),
	})
	waitHealth(t, p.Endpoints()[0], HealthUnhealthy)
}

func TestHealthCheckJitterAndDialerHooks(t *testing.T) {
	ln := echoServer(t)
	defer ln.Close()
	var jitterCalls, dials atomic.Int64
	d := &countingDialer{n: &dials}
	r, _ := newTestRegistry(t, RegistryOptions{
		Dialer: d,
		Jitter: func(max time.Duration) time.Duration {
			jitterCalls.Add(1)
			if max != 7*time.Millisecond {
				t.Errorf("jitter asked for %v", max)
			}
			return max / 2
		},
	})
	hc := fastCheck(HealthCheckConfig{TCP: &TCPCheck{}})
	hc.Jitter = 7 * time.Millisecond
	p := mustPool(t, r, PoolConfig{Endpoints: []EndpointConfig{{Address: ln.Addr().String()}}, HealthCheck: hc})
	waitHealth(t, p.Endpoints()[0], HealthHealthy)
	eventually(t, 5*time.Second, "jitter and dialer used", func() bool { return jitterCalls.Load() >= 2 && dials.Load() >= 2 })
}

type countingDialer struct {
	n *atomic.Int64
	d net.Dialer
}

func (c *countingDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	c.n.Add(1)
	return c.d.DialContext(ctx, network, addr)
}

func TestHealthCheckRemovedAndPoolRemoved(t *testing.T) {
	var probes atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		probes.Add(1)
		w.WriteHeader(500)
	}))
	defer srv.Close()
	r, _ := newTestRegistry(t, RegistryOptions{})
	cfg := PoolConfig{
		ID:          "a",
		Endpoints:   []EndpointConfig{{Address: srv.Listener.Addr().String()}},
		HealthCheck: fastCheck(HealthCheckConfig{HTTP: &HTTPCheck{}}),
	}
	p := mustPool(t, r, cfg)
	e := p.Endpoints()[0]
	waitHealth(t, e, HealthUnhealthy)

	// Without a health check the endpoint goes back to unknown (available).
	cfg.HealthCheck = nil
	mustPool(t, r, cfg)
	if e.Health() != HealthUnknown || !e.Available() {
		t.Fatalf("after removing the check: health %v available %v", e.Health(), e.Available())
	}
	before := probes.Load()
	time.Sleep(50 * time.Millisecond)
	if n := probes.Load(); n > before+1 {
		t.Errorf("%d probes after the check was removed", n-before)
	}

	// Removing the pool stops its checker.
	cfg.HealthCheck = fastCheck(HealthCheckConfig{HTTP: &HTTPCheck{}})
	mustPool(t, r, cfg)
	eventually(t, 5*time.Second, "probes resume", func() bool { return probes.Load() > before+2 })
	if err := r.Update(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if r.Pool("a") != nil {
		t.Fatal("removed pool still registered")
	}
	// The checker ends (the registry's goroutines are its pools'); a probe
	// it had sent may still reach the server after that, no other.
	stopped := make(chan struct{})
	go func() { r.wg.Wait(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("the removed pool's checker still runs")
	}
	before = probes.Load()
	time.Sleep(60 * time.Millisecond)
	if n := probes.Load(); n > before+1 {
		t.Errorf("%d probes after the pool was removed", n-before)
	}
	// The removed pool still answers Pick for in-flight users.
	if _, err := p.Pick(0, nil); err != nil {
		t.Errorf("Pick on removed pool: %v", err)
	}
}

func TestHealthStateString(t *testing.T) {
	for s, want := range map[HealthState]string{HealthUnknown: "unknown", HealthHealthy: "healthy", HealthUnhealthy: "unhealthy", 7: "HealthState(7)"} {
		if got := s.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", s, got, want)
		}
	}
	if !strings.Contains(HealthState(9).String(), "9") {
		t.Error("unknown value not shown")
	}
}

func TestTCPHealthCheckShortReply(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = io.WriteString(c, "PO")
			c.Close()
		}
	}()
	r, logs := newTestRegistry(t, RegistryOptions{})
	p := mustPool(t, r, PoolConfig{
		Endpoints:   []EndpointConfig{{Address: ln.Addr().String()}},
		HealthCheck: fastCheck(HealthCheckConfig{TCP: &TCPCheck{Expect: "PONG"}}),
	})
	e := p.Endpoints()[0]
	if e.Pool() != p {
		t.Fatal("Endpoint.Pool")
	}
	waitHealth(t, e, HealthUnhealthy)
	eventually(t, 5*time.Second, "short reply logged", func() bool { return contains(logs.String(), `reply \"PO\" is shorter`) })
}

// TestHTTP2HealthCheck probes origins that speak HTTP/2 only, over h2c
// and over TLS with ALPN: an HTTP/2 probe finds them healthy, an HTTP/1.1
// probe does not.
func TestHTTP2HealthCheck(t *testing.T) {
	var protos sync.Map
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		protos.Store(r.Proto, true)
		w.WriteHeader(204)
	})
	h2c := httptest.NewUnstartedServer(h)
	h2c.Config.Protocols = new(http.Protocols)
	h2c.Config.Protocols.SetUnencryptedHTTP2(true) // and not HTTP/1
	h2c.Config.ErrorLog = log.New(io.Discard, "", 0)
	h2c.Start()
	defer h2c.Close()
	h2 := httptest.NewUnstartedServer(h)
	h2.EnableHTTP2 = true
	h2.Config.ErrorLog = log.New(io.Discard, "", 0)
	h2.StartTLS()
	defer h2.Close()
	roots := x509.NewCertPool()
	roots.AddCert(h2.Certificate())
	tlsCfg := &tls.Config{RootCAs: roots, ServerName: "example.com"}
	cases := []struct {
		name  string
		addr  string
		tls   *tls.Config
		http2 bool
		want  HealthState
	}{
		{"h2c probe", h2c.Listener.Addr().String(), nil, true, HealthHealthy},
		{"http/1.1 probe of an h2c-only origin", h2c.Listener.Addr().String(), nil, false, HealthUnhealthy},
		{"h2 over tls probe", h2.Listener.Addr().String(), tlsCfg, true, HealthHealthy},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, _ := newTestRegistry(t, RegistryOptions{})
			p := mustPool(t, r, PoolConfig{
				Endpoints:   []EndpointConfig{{Address: c.addr}},
				HealthCheck: fastCheck(HealthCheckConfig{HTTP: &HTTPCheck{ExpectedStatus: []int{204}, HTTP2: c.http2}, TLS: c.tls}),
			})
			waitHealth(t, p.Endpoints()[0], c.want)
		})
	}
	if _, ok := protos.Load("HTTP/2.0"); !ok {
		t.Fatal("no probe arrived over HTTP/2")
	}
}
