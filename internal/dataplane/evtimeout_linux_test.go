//go:build linux

package dataplane

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// blackHole returns the address of a listener whose accept queue is full:
// a connect to it gets no answer (the SYN is dropped) until it times out.
func blackHole(t *testing.T) string {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", sa.(*unix.SockaddrInet4).Port)
	for i := 0; i < 8; i++ {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err != nil {
			return addr // the queue is full
		}
		t.Cleanup(func() { c.Close() })
	}
	t.Skip("could not fill the accept queue of a loopback listener")
	return ""
}

// TestEnginesAgreeOnTimeouts checks that a route's timeout and its pool's
// connect timeout bound the exchanges the event loop serves as they bound
// the goroutine engine's (the loop serving them itself): an origin that
// does not answer in time gets 504, and so does one that cannot be
// reached in time, both well before the defaults (60s, 5s). (The
// goroutine engine answers a connect timeout with 502 or 504, depending
// on which of its timers fires first; the loop with 504.)
func TestEnginesAgreeOnTimeouts(t *testing.T) {
	stop := make(chan struct{})
	// /slow is answered only when the test ends: an answer before that is
	// the route timeout's.
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			select {
			case <-stop:
			case <-r.Context().Done():
			}
		}
		fmt.Fprint(w, "ok")
	}))
	t.Cleanup(origin.Close)
	t.Cleanup(func() { close(stop) })
	hole := blackHole(t)
	cfg := func(port int) string {
		return pool("a", hostOf(origin.URL)) + poolWith("hole", hole, "connectTimeout: 300ms") + lbDoc([]string{listenerAt(port)},
			"{match: {pathPrefix: /slow}, pool: a, timeout: 300ms}", "{match: {pathPrefix: /hole}, pool: hole}", "{match: {pathPrefix: /}, pool: a}")
	}
	addrs, servers := startEngines(t, cfg, nil)
	for _, tc := range []struct {
		path        string
		status, alt int
	}{
		{"/fast", 200, 200},
		{"/slow", 504, 504},
		{"/hole", 504, 502},
	} {
		for _, engine := range engineNames {
			t0 := time.Now()
			resp, body := get(t, "http://"+addrs[engine]+tc.path, nil)
			took := time.Since(t0)
			// (4s: room for a loaded machine, under the 5s default
			// connect timeout and the client's 5s.)
			if resp.StatusCode != tc.status && (engine == EngineEvloop || resp.StatusCode != tc.alt) || took > 4*time.Second || tc.status != 200 && took < 250*time.Millisecond {
				t.Errorf("%s engine, %s: %d %q after %v; want %d after about 300ms", engine, tc.path, resp.StatusCode,
					strings.TrimSpace(body), took, tc.status)
			}
		}
	}
	if st := servers[EngineEvloop].evStats(t, addrs[EngineEvloop]); st.Requests != 3 || st.Handoffs != 0 {
		t.Errorf("the event loop served %d requests and handed off %d, want 3 and 0", st.Requests, st.Handoffs)
	}
}
