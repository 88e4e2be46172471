package config

import (
	"strings"
	"testing"
	"time"
)

// TestSharedListenerTimeouts checks what a shared port means for timeouts:
// the listener gets the strictest of its load balancers' (they apply
// before the Host header is known), each virtual host keeps its own, and
// the order the objects come in does not matter.
func TestSharedListenerTimeouts(t *testing.T) {
	a := `apiVersion: meridian/v1
kind: HTTPLoadBalancer
metadata: {name: a, namespace: t}
spec:
  domains: [a.test]
  listeners: [{port: 8080, address: 127.0.0.1}]
  directResponse: {status: 200}
  timeouts: {requestHeader: 10s, requestBody: 300ms, idle: 90s}
  routes: [{directResponse: {status: 200}}]
`
	b := strings.NewReplacer("name: a,", "name: b,", "a.test", "b.test", "requestHeader: 10s", "requestHeader: 2s", "requestBody: 300ms", "requestBody: 5s", "idle: 90s", "idle: 30s").Replace(a)
	a = strings.Replace(a, "  directResponse: {status: 200}\n", "", 1)
	b = strings.Replace(b, "  directResponse: {status: 200}\n", "", 1)
	want := Timeouts{RequestHeader: 2 * time.Second, RequestBody: 300 * time.Millisecond, Idle: 30 * time.Second}
	for _, order := range [][]string{{a, b}, {b, a}} {
		tab := Compile(decode(t, strings.Join(order, "\n---\n")))
		if len(tab.Errors) > 0 {
			t.Fatal(tab.Errors)
		}
		l := tab.HTTP["127.0.0.1:8080"]
		if l.Timeouts != want {
			t.Fatalf("listener timeouts %+v, want %+v", l.Timeouts, want)
		}
		if got := l.VHost([]byte("a.test")).Timeouts.RequestBody; got != 300*time.Millisecond {
			t.Fatalf("a's body timeout %v", got)
		}
		if got := l.VHost([]byte("b.test")).Timeouts.RequestBody; got != 5*time.Second {
			t.Fatalf("b's body timeout %v", got)
		}
	}
}

func TestTimeoutsStrictest(t *testing.T) {
	s, m := time.Second, time.Minute
	cases := []struct{ a, b, want Timeouts }{
		{Timeouts{s, m, m}, Timeouts{m, s, 0}, Timeouts{s, s, m}},
		{Timeouts{}, Timeouts{s, s, s}, Timeouts{s, s, s}},
		{Timeouts{s, 0, s}, Timeouts{}, Timeouts{s, 0, s}},
	}
	for _, c := range cases {
		if got := c.a.Strictest(c.b); got != c.want {
			t.Errorf("%+v.Strictest(%+v) = %+v, want %+v", c.a, c.b, got, c.want)
		}
	}
}
