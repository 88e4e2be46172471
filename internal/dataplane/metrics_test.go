package dataplane

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// TestMetricsOfRemovedObjectsDisappear scrapes /metrics before and after a
// reload that removes a load balancer, a route, a pool, an endpoint, a TCP
// load balancer and a listener: their series are gone, the others keep
// their values.
func TestMetricsOfRemovedObjectsDisappear(t *testing.T) {
	a, _ := echoBackend(t, "a")
	b, _ := echoBackend(t, "b")
	c, _ := echoBackend(t, "c")
	reg := prometheus.NewRegistry()
	scrape := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer scrape.Close()
	metricsText := func() string {
		resp, err := http.Get(scrape.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return string(body)
	}
	p1, p2, tcpPort := freePort(t), freePort(t), freePort(t)
	httpLB := func(name string, port int, routes string) string {
		return fmt.Sprintf(`---
apiVersion: meridian/v1
kind: HTTPLoadBalancer
metadata: {name: %s, namespace: t}
spec:
  domains: [%s.test]
  listeners: [{port: %d, address: 127.0.0.1}]
  defaultPool: keep
%s`, name, name, port, routes)
	}
	tcpLB := fmt.Sprintf(`---
apiVersion: meridian/v1
kind: TCPLoadBalancer
metadata: {name: tcp, namespace: t}
spec:
  listeners: [{port: %d, address: 127.0.0.1}]
  pool: gone
`, tcpPort)
	before := pool("keep", hostOf(a.URL), hostOf(c.URL)) + "---\n" + pool("gone", hostOf(b.URL)) +
		httpLB("one", p1, "  routes: [{match: {pathPrefix: /old}, pool: gone}]\n") +
		httpLB("two", p2, "") + tcpLB
	s := startServer(t, before, Options{Metrics: reg})
	for _, req := range []struct {
		port       int
		host, path string
	}{{p1, "one.test", "/old"}, {p1, "one.test", "/x"}, {p2, "two.test", "/"}} {
		if resp, body := get(t, fmt.Sprintf("http://127.0.0.1:%d%s", req.port, req.path), map[string]string{"Host": req.host}); resp.StatusCode != 200 {
			t.Fatalf("%s%s: %d %q", req.host, req.path, resp.StatusCode, body)
		}
	}
	conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", tcpPort))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(conn, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	_, _ = io.ReadAll(conn)
	conn.Close()

	gone := []string{
		`loadbalancer="two"`, // the removed load balancer
		`route="t/one#0"`,    // the removed route
		`pool="t/gone"`,      // the removed pool (and its endpoint)
		`endpoint="` + hostOf(c.URL) + `"`,
		`meridian_tcp_sessions_total{loadbalancer="t/tcp"`,
		fmt.Sprintf(`listener="127.0.0.1:%d"`, p2),
	}
	kept := []string{
		`meridian_http_requests_total{code="2xx",loadbalancer="one",namespace="t",pool="keep",route="t/one#default"} 1`,
		`meridian_http_request_bytes_total{loadbalancer="one",namespace="t"}`,
		`endpoint="` + hostOf(a.URL) + `"`,
		fmt.Sprintf(`listener="127.0.0.1:%d"`, p1),
	}
	// A request or a TCP session is counted once it has ended, which may
	// be a moment after the client has read its answer: scrape until every
	// series shows.
	var text string
	lacks := func() string {
		text = metricsText()
		for _, want := range append(append([]string{}, gone...), kept...) {
			if !strings.Contains(text, want) {
				return want
			}
		}
		return ""
	}
	for deadline := time.Now().Add(15 * time.Second); lacks() != "" && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	if want := lacks(); want != "" {
		t.Fatalf("before the reload, /metrics lacks %s:\n%s", want, text)
	}
	apply(t, s, pool("keep", hostOf(a.URL))+httpLB("one", p1, ""))
	text = metricsText()
	for _, g := range gone {
		if strings.Contains(text, g) {
			t.Errorf("after the reload, /metrics still has %s", g)
		}
	}
	for _, k := range kept {
		if !strings.Contains(text, k) {
			t.Errorf("after the reload, /metrics lost %s", k)
		}
	}
}
