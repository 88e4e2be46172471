//go:build linux

package secroute_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/meridian-platform/meridian/internal/dataplane"
	"github.com/meridian-platform/meridian/internal/dataplane/dptest"
	"github.com/meridian-platform/meridian/internal/node"
	"github.com/meridian-platform/meridian/internal/testfixture"
)

// loopObjects is a load balancer without security of its own whose routes
// have their own: a firewall on /waf, a denying policy on /deny, and (with
// FIREWALL2 naming a paranoia-level-2 firewall) one the loops cannot run.
const loopObjects = `
apiVersion: meridian/v1
kind: OriginPool
metadata: {name: backend, namespace: shop}
spec: {endpoints: [{address: "BACKEND"}]}
---
apiVersion: meridian/v1
kind: AppFirewall
metadata: {name: crs, namespace: shop}
spec: {}
---
apiVersion: meridian/v1
kind: AppFirewall
metadata: {name: crs-pl2, namespace: shop}
spec: {paranoiaLevel: 2}
---
apiVersion: meridian/v1
kind: ServicePolicy
metadata: {name: deny-all, namespace: shop}
spec: {defaultAction: deny, rules: [{name: nobody, action: deny, status: 451, match: {pathPrefix: /}}]}
---
apiVersion: meridian/v1
kind: HTTPLoadBalancer
metadata: {name: loop, namespace: shop}
spec:
  domains: ["*"]
  listeners: [{port: PORT, address: 127.0.0.1}]
  defaultPool: backend
  routes:
    - match: {pathPrefix: /waf}
      appFirewall: FIREWALL
    - match: {pathPrefix: /deny}
      servicePolicies: [deny-all]
`

// TestRouteSecurityOnEventLoop: a load balancer whose routes carry their
// own firewall and policies (the slots' dispatchers) is served by the
// event loops when every stage they dispatch to is loop-servable: the
// route's firewall blocks on its route only, the route's policy denies
// on its route only, the connection goes on, nothing is handed off. With
// a route firewall the loops cannot run (paranoia level 2 inspects
// responses), the load balancer goes to the goroutine engine, which
// still applies it.
func TestRouteSecurityOnEventLoop(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	defer backend.Close()
	const xss = "q=%3Cscript%3Ealert(1)%3C/script%3E"
	for _, tc := range []struct {
		firewall       string
		reqs, handoffs float64
		answers        []int
	}{
		{"crs", 6, 0, []int{200, 403, 200, 451, 200, 200}},
		{"crs-pl2", 0, 1, []int{200, 403, 200, 451, 200, 200}},
	} {
		t.Run(tc.firewall, func(t *testing.T) {
			var events bytes.Buffer
			sec := node.NewSecurityWith(&events, node.SecurityOptions{})
			secCtx, stopSec := context.WithCancel(context.Background())
			secDone := make(chan struct{})
			go func() { sec.Run(secCtx); close(secDone) }()
			defer func() { stopSec(); <-secDone }()
			reg := prometheus.NewRegistry()
			dp := startDataplane(t, dataplane.Options{Stages: sec.Stages, Metrics: reg, HTTP1Engine: dataplane.EngineEvloop})
			port := testfixture.FreePort(t)
			doc := strings.NewReplacer("BACKEND", strings.TrimPrefix(backend.URL, "http://"), "PORT", fmt.Sprint(port),
				"FIREWALL", tc.firewall).Replace(loopObjects)
			applyDoc(t, dp, sec, doc)

			c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			br := bufio.NewReader(c)
			paths := []string{"/waf/a", "/waf/b?" + xss, "/other?" + xss, "/deny/x", "/waf/c", "/"}
			for i, p := range paths {
				c.SetDeadline(time.Now().Add(10 * time.Second))
				fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: shop.test\r\nUser-Agent: Mozilla/5.0\r\nAccept: */*\r\n\r\n", p)
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatalf("GET %s: %v", p, err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != tc.answers[i] {
					t.Errorf("GET %s: %d, want %d", p, resp.StatusCode, tc.answers[i])
				}
			}
			reqs, handoffs := dptest.EvloopCounts(t, reg)
			if reqs != tc.reqs || handoffs != tc.handoffs {
				t.Errorf("the loops served %v requests and handed off %v, want %v and %v", reqs, handoffs, tc.reqs, tc.handoffs)
			}
			stopSec() // flushes the events
			<-secDone
			if ev := events.String(); !strings.Contains(ev, "/waf/b") || strings.Contains(ev, `"/other`) || !strings.Contains(ev, "deny-all") {
				t.Errorf("security events: want the /waf/b block and the deny-all denial, not /other:\n%s", ev)
			}
		})
	}
}

// TestMTLSOnEventLoop is TestMTLSRouteAndSNIPolicy without forwarded
// claims on the event loops: the route's client-certificate
// authentication and the SNI policy run on the loops with the state of
// the loop's handshake (the listener's configuration, as the goroutine
// engine has it), with the same answers, and nothing is handed off.
func TestMTLSOnEventLoop(t *testing.T) {
	sec := node.NewSecurity(io.Discard)
	reg := prometheus.NewRegistry()
	testMTLSRoute(t, false, func(doc string) {
		applyDoc(t, startDataplane(t, dataplane.Options{Stages: sec.Stages, Metrics: reg, HTTP1Engine: dataplane.EngineEvloop}), sec, doc)
	})
	if reqs, handoffs := dptest.EvloopCounts(t, reg); reqs != 6 || handoffs != 0 {
		t.Errorf("the loops served %v requests and handed off %v, want 6 and 0", reqs, handoffs)
	}
}
