package testfixture

import (
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// FreePort returns a loopback TCP port that was free a moment ago (for a
// process or listener that must be given a port number up front).
//
// The port is taken below the kernel's ephemeral range
// (net.ipv4.ip_local_port_range), where no listener on port 0 and no
// outgoing connection of any process gets a port: a port found by binding
// port 0 goes back to that pool when it is closed, and another test binary
// running in parallel could be given it before the caller binds it. Ports
// are handed out in turn from a random start, so one test binary never
// gets the same port twice.
func FreePort(t testing.TB) int {
	t.Helper()
	lo, hi := portsBelowEphemeral()
	if hi > lo {
		for range 256 {
			n := int(nextPort.Add(1))
			p := lo + n%(hi-lo)
			ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
			if err != nil {
				continue
			}
			ln.Close()
			return p
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// nextPort is the turn of FreePort's ports, from a random start so test
// binaries running in parallel start far from each other.
var nextPort = func() *atomic.Int64 {
	var n atomic.Int64
	n.Store(rand.Int64N(1 << 20))
	return &n
}()

// portsBelowEphemeral is the range [lo, hi) of up to 12,000 ports just
// under the kernel's ephemeral range; lo == hi when it is unknown (FreePort
// then binds port 0).
func portsBelowEphemeral() (lo, hi int) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0, 0
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0, 0
	}
	first, err := strconv.Atoi(f[0])
	if err != nil || first <= 11000 {
		return 0, 0
	}
	return max(10000, first-12000), first
}

// WaitFor polls f every 20ms until it holds, failing the test after 15s.
func WaitFor(t testing.TB, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Get GETs url with a 2s timeout and returns the status code and body; on
// a transport error, 0 and the error's text.
func Get(url string) (int, string) {
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
