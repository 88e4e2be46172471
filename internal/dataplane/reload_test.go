package dataplane

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meridian-platform/meridian/internal/dataplane/config"
	"github.com/meridian-platform/meridian/internal/testfixture"
)

func lbYAML(port int, pool string) string {
	return fmt.Sprintf(`---
apiVersion: meridian/v1
kind: HTTPLoadBalancer
metadata: {name: lb, namespace: t}
spec: {domains: ["*"], listeners: [{port: %d, address: 127.0.0.1}], defaultPool: %s}
`, port, pool)
}

func TestReloadKeepsConnectionsAndState(t *testing.T) {
	release := make(chan struct{})
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			<-release
		}
		fmt.Fprint(w, "slow-backend")
	}))
	defer slow.Close()
	defer unblock() // before slow.Close, which waits for its handlers
	fast, _ := echoBackend(t, "fast")
	port := freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	s := startServer(t, pool("a", hostOf(slow.URL))+"---\n"+pool("b", hostOf(fast.URL))+lbYAML(port, "a"), Options{})

	// A keep-alive connection used before and after the reload.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	roundTrip := func(path string) string {
		t.Helper()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return string(b)
	}
	if got := roundTrip("/"); got != "slow-backend" {
		t.Fatalf("before: %q", got)
	}
	ep := s.Registry().Pool("t/a").Endpoints()[0]
	// An in-flight request on another connection.
	inflight := make(chan string, 1)
	go func() {
		resp, err := http.Get("http://" + addr + "/slow")
		if err != nil {
			inflight <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		inflight <- string(b)
	}()
	testfixture.WaitFor(t, "the request to /slow in flight", func() bool { return ep.ActiveRequests() == 1 })
	// Reload: the default pool changes; pool "a" stays.
	apply(t, s, pool("a", hostOf(slow.URL))+"---\n"+pool("b", hostOf(fast.URL))+lbYAML(port, "b"))
	if got := roundTrip("/"); !strings.Contains(got, "backend=fast") {
		t.Fatalf("same connection after reload: %q", got)
	}
	unblock()
	if got := <-inflight; got != "slow-backend" {
		t.Fatalf("in-flight request: %q", got)
	}
	if s.Registry().Pool("t/a").Endpoints()[0] != ep {
		t.Fatal("endpoint runtime state replaced by the reload")
	}
	// A broken object in the next table is skipped; the rest applies.
	tab := config.Compile(decodeObjects(t, pool("a", hostOf(slow.URL))+"---\n"+pool("b", hostOf(fast.URL))+lbYAML(port, "b")+`---
apiVersion: meridian/v1
kind: HTTPLoadBalancer
metadata: {name: broken, namespace: t}
spec: {domains: [x.test], listeners: [{port: 1}], defaultPool: missing}
`))
	if len(tab.Errors) != 1 {
		t.Fatalf("errors %v", tab.Errors)
	}
	if err := s.Apply(context.Background(), tab); err != nil {
		t.Fatal(err)
	}
	if got := roundTrip("/"); !strings.Contains(got, "backend=fast") {
		t.Fatalf("after partial apply: %q", got)
	}
	// Removing the listener closes it; a new one on another port starts.
	port2 := freePort(t)
	apply(t, s, pool("b", hostOf(fast.URL))+lbYAML(port2, "b"))
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Fatal("old listener still accepting")
	}
	resp, body := get(t, fmt.Sprintf("http://127.0.0.1:%d/", port2), nil)
	if resp.StatusCode != 200 || !strings.Contains(body, "backend=fast") {
		t.Fatalf("new listener: %d %q", resp.StatusCode, body)
	}
}

func TestGracefulShutdown(t *testing.T) {
	release := make(chan struct{})
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
		fmt.Fprint(w, "done")
	}))
	defer slow.Close()
	defer unblock() // before slow.Close, which waits for its handlers
	port := freePort(t)
	s := New(Options{Logger: quietLoggerT(), AccessLog: io.Discard, HTTP1Engine: testEngine})
	apply(t, s, pool("a", hostOf(slow.URL))+lbYAML(port, "a"))
	res := make(chan string, 1)
	go func() {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
		if err != nil {
			res <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		res <- string(b)
	}()
	// (The endpoint counts it on both engines; the event loops, which
	// serve only pools without a circuit breaker, leave the pool's count
	// alone.)
	ep := s.Registry().Pool("t/a").Endpoints()[0]
	testfixture.WaitFor(t, "the request in flight", func() bool { return ep.ActiveRequests() == 1 })
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		done <- s.Shutdown(ctx)
	}()
	// The listener closes while the request is still in flight (the
	// shutdown goroutine may take a while to get there on a loaded machine).
	testfixture.WaitFor(t, "the listener closed during shutdown", func() bool {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	select {
	case err := <-done:
		t.Fatalf("shutdown ended with a request in flight: %v", err)
	default:
	}
	unblock()
	if got := <-res; got != "done" {
		t.Fatalf("in-flight request: %q", got)
	}
	if err := <-done; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
}
