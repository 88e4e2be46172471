//go:build linux

package dataplane

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// TestEvloopEndpointAccounting checks that the requests the event loop
// forwards are counted on their pool endpoint as the goroutine engine
// counts its own: in flight (meridian_endpoint_active_requests, which a
// leastRequest pool picks by, so such pools are served by the loop),
// requests, 5xx answers, connect failures and open connections.
func TestEvloopEndpointAccounting(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(release) }) })
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/slow":
			<-release
		case "/fail":
			w.WriteHeader(503)
		}
		fmt.Fprint(w, "ok")
	}))
	t.Cleanup(origin.Close)
	port := freePort(t)
	reg := prometheus.NewRegistry()
	s := startServer(t, fmt.Sprintf(`apiVersion: meridian/v1
kind: OriginPool
metadata: {name: a, namespace: t}
spec:
  loadBalancing: leastRequest
  endpoints: [{address: %q}]
`, hostOf(origin.URL))+"---\n"+pool("dead", deadAddr)+
		lbDoc([]string{listenerAt(port)}, "{match: {pathPrefix: /dead}, pool: dead}", "{match: {pathPrefix: /}, pool: a}"), Options{HTTP1Engine: EngineEvloop, Metrics: reg})
	key := fmt.Sprintf("127.0.0.1:%d", port)
	metric := func(name, endpoint string) float64 {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != name {
				continue
			}
			for _, m := range mf.GetMetric() {
				for _, lp := range m.GetLabel() {
					if lp.GetName() == "endpoint" && lp.GetValue() == endpoint {
						return m.GetCounter().GetValue() + m.GetGauge().GetValue()
					}
				}
			}
		}
		return -1
	}
	waitMetric := func(name, endpoint string, want float64) {
		t.Helper()
		for deadline := time.Now().Add(15 * time.Second); metric(name, endpoint) != want && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
		}
		if got := metric(name, endpoint); got != want {
			t.Fatalf("%s{endpoint=%s} = %v, want %v", name, endpoint, got, want)
		}
	}
	ep := hostOf(origin.URL)
	done := make(chan string, 1)
	go func() {
		resp, body := get(t, "http://"+key+"/slow", nil)
		done <- fmt.Sprint(resp.StatusCode, " ", body)
	}()
	waitMetric("meridian_endpoint_active_requests", ep, 1)
	once.Do(func() { close(release) })
	if got := <-done; got != "200 ok" {
		t.Fatalf("slow request: %s", got)
	}
	waitMetric("meridian_endpoint_active_requests", ep, 0)
	for _, path := range []string{"/x", "/fail", "/fail"} {
		get(t, "http://"+key+path, nil)
	}
	waitMetric("meridian_endpoint_requests_total", ep, 4)
	waitMetric("meridian_endpoint_responses_5xx_total", ep, 2)
	if resp, body := get(t, "http://"+key+"/dead", nil); resp.StatusCode != 502 || !strings.Contains(body, "bad gateway") {
		t.Fatalf("dead endpoint: %d %q (want the loop's 502)", resp.StatusCode, body)
	}
	waitMetric("meridian_endpoint_connect_failures_total", deadAddr, 1)
	waitMetric("meridian_endpoint_active_requests", deadAddr, 0)
	waitMetric("meridian_endpoint_connections", deadAddr, 0)
	// The loops keep their origin connections open (one here: the
	// requests came one after another) until the origin closes them.
	if n := metric("meridian_endpoint_connections", ep); n < 1 || n > 2 {
		t.Fatalf("%v connections to the origin counted, want 1 or 2", n)
	}
	origin.CloseClientConnections()
	waitMetric("meridian_endpoint_connections", ep, 0)
	if st := s.evStats(t, key); st.Requests != 5 || st.Handoffs != 0 {
		t.Fatalf("the event loop served %d requests and handed off %d, want 5 and 0", st.Requests, st.Handoffs)
	}
}

// TestEvloopOutlierEjection checks that pools with outlier detection are
// served by the event loop, which feeds it (TestOutlierEjection: the
// failing endpoint is ejected, the good one serves the rest).
func TestEvloopOutlierEjection(t *testing.T) {
	s, key := outlierEjection(t, Options{HTTP1Engine: EngineEvloop})
	if st := s.evStats(t, key); st.Requests != 20 || st.Handoffs != 0 {
		t.Fatalf("the event loop served %d requests and handed off %d, want 20 and 0", st.Requests, st.Handoffs)
	}
}
