//go:build linux

package dataplane

import (
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestEnginesAgreeOnBodyTimeouts checks that each load balancer's request
// body timeout bounds the bodies the event loop reads as it bounds the
// goroutine engine's, when load balancers sharing a listener have
// different ones (the listener's is the strictest): the loop serves both.
func TestEnginesAgreeOnBodyTimeouts(t *testing.T) {
	origin, _, _ := bodyOrigin(t)
	cfg := func(port int) string {
		lb := func(name, domain, timeout string) string {
			return fmt.Sprintf(`---
apiVersion: meridian/v1
kind: HTTPLoadBalancer
metadata: {name: %s, namespace: t}
spec:
  domains: [%q]
  listeners: [{port: %d, address: 127.0.0.1}]
  defaultPool: a
  timeouts: {requestBody: %s}
`, name, domain, port, timeout)
		}
		return pool("a", hostOf(origin.URL)) + lb("short", "short.test", "300ms") + lb("long", "long.test", "4s")
	}
	addrs, servers := startEngines(t, cfg, nil)
	var wg sync.WaitGroup
	for _, engine := range engineNames {
		for _, tc := range []struct {
			host     string
			min, max time.Duration
		}{
			// (Timeouts far enough apart that a loaded machine's delays
			// do not blur which one fired.)
			{"short.test", 200 * time.Millisecond, 3 * time.Second},
			{"long.test", 3900 * time.Millisecond, 10 * time.Second},
		} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := net.Dial("tcp", addrs[engine])
				if err != nil {
					t.Error(err)
					return
				}
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(15 * time.Second))
				t0 := time.Now()
				_, _ = io.WriteString(c, "POST /up HTTP/1.1\r\nHost: "+tc.host+"\r\nContent-Length: 100\r\n\r\nabc")
				got, _ := io.ReadAll(c)
				d := time.Since(t0)
				if !strings.HasPrefix(string(got), "HTTP/1.1 408") || d < tc.min || d > tc.max {
					t.Errorf("%s engine, %s: %q after %v, want 408 after %v to %v", engine, tc.host, got, d, tc.min, tc.max)
				}
			}()
		}
	}
	wg.Wait()
	if st := servers[EngineEvloop].evStats(t, addrs[EngineEvloop]); st.Requests != 2 || st.Handoffs != 0 {
		t.Errorf("the event loop served %d requests and handed off %d, want 2 and 0", st.Requests, st.Handoffs)
	}
}
