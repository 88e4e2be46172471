package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/summerwind/h2spec/config"
	"github.com/summerwind/h2spec/generic"
	"github.com/summerwind/h2spec/hpack"
	h2spechttp2 "github.com/summerwind/h2spec/http2"
	"github.com/summerwind/h2spec/spec"

	"github.com/meridian-platform/meridian/internal/testcert"
	"github.com/meridian-platform/meridian/internal/testfixture"
)

// h2specTimeout is how long h2spec waits for each answer it expects. No
// case of a passing run waits for it (the suite takes a few seconds per
// listener), so it is long enough for a loaded machine to answer through
// the origin.
const h2specTimeout = 10 * time.Second

// TestH2Spec runs the h2spec conformance suite (generic, RFC 9113 http2
// and RFC 7541 hpack sections) against a node's HTTP/2 listeners, TLS
// with ALPN h2 and cleartext h2c with prior knowledge, whose load balancer
// forwards to a real origin. Every failing case must be listed, with its
// reason, in testdata/h2spec-exclusions.txt.
func TestH2Spec(t *testing.T) {
	// The origin answers at once, except when more than a few requests
	// are in flight: then it holds them until the client is gone, so that
	// the case that opens more streams than the node allows finds them
	// all still open however fast the machine is.
	var inflight atomic.Int64
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer inflight.Add(-1)
		if inflight.Add(1) > 8 {
			select {
			case <-r.Context().Done():
			case <-time.After(15 * time.Second):
			}
		}
		_, _ = io.Copy(io.Discard, r.Body)
		io.WriteString(w, "hello from the origin\n")
	}))
	defer backend.Close()
	excluded := readH2SpecExclusions(t, filepath.Join("testdata", "h2spec-exclusions.txt"))

	certPEM, keyPEM := testcert.SelfSigned(t, "localhost")
	// A node per HTTP/1.1 engine: with the default (the event loops on
	// Linux) the loop makes the TLS handshake and hands an h2 connection over; with
	// goroutines the accept loop serves it. h2c listeners are the
	// goroutine engine's with either.
	startNode := func(engine string) (tlsPort, h2cPort, directPort int) {
		tlsPort, h2cPort, directPort = testfixture.FreePort(t), testfixture.FreePort(t), testfixture.FreePort(t)
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, "conf", "h2.yaml"), fmt.Sprintf(`apiVersion: meridian/v1
kind: OriginPool
metadata: {name: web}
spec:
  endpoints: [{address: %s}]
---
apiVersion: meridian/v1
kind: Certificate
metadata: {name: local}
spec:
  certificate: %q
  privateKey: %q
---
apiVersion: meridian/v1
kind: HTTPLoadBalancer
metadata: {name: web}
spec:
  domains: ["*"]
  listeners:
  - {port: %d, address: 127.0.0.1, tls: {certificateRef: local}}
  - {port: %d, address: 127.0.0.1, h2c: true}
  defaultPool: web
---
apiVersion: meridian/v1
kind: HTTPLoadBalancer
metadata: {name: direct}
spec:
  domains: ["*"]
  listeners: [{port: %d, address: 127.0.0.1, h2c: true}]
  routes: [{directResponse: {status: 200, body: "the node's own answer"}}]
`, strings.TrimPrefix(backend.URL, "http://"), certPEM, keyPEM, tlsPort, h2cPort, directPort))
		args := []string{"node", "--config", filepath.Join(dir, "conf"), "--admin", ""}
		if engine != "" {
			args = append(args, "--http1-engine", engine)
		}
		p := start(t, nil, args...)
		p.waitFor(regexp.MustCompile(`configuration applied`), 60*time.Second)
		return tlsPort, h2cPort, directPort
	}
	tlsPort, h2cPort, directPort := startNode("")
	tlsGoroutinePort, _, _ := startNode("goroutine")

	for _, tc := range []struct {
		name string
		tls  bool
		port int
	}{{"tls", true, tlsPort}, {"h2c", false, h2cPort}, {"tls-goroutine-engine", true, tlsGoroutinePort},
		{"h2c-direct-response", false, directPort}} {
		t.Run(tc.name, func(t *testing.T) {
			waitListening(t, tc.port)
			failed, passed, skipped, log := runH2Spec(t, &config.Config{
				Host: "127.0.0.1", Port: tc.port, Path: "/", Timeout: h2specTimeout,
				MaxHeaderLen: 4000, TLS: tc.tls, Insecure: true, Strict: true,
			})
			t.Logf("h2spec over %s: %d passed, %d failed, %d skipped", tc.name, len(passed), len(failed), skipped)
			bad := false
			for _, id := range failed {
				reason, ok := excluded[tc.name+":"+id]
				if !ok {
					reason, ok = excluded[id]
				}
				if !ok {
					t.Errorf("h2spec case %s fails", id)
					bad = true
				} else {
					t.Logf("h2spec case %s fails, as allowed: %s", id, reason)
				}
			}
			if bad {
				t.Logf("h2spec output:\n%s", log)
			}
		})
	}
}

// runH2Spec runs every h2spec case (the strict ones included) against c and returns the
// ids ("http2/5.1/3") of the failed ones, the passed ones and the
// suite's printed report. h2spec prints to os.Stdout, which is redirected
// to a file for the run.
func runH2Spec(t *testing.T, c *config.Config) (failed []string, passed map[string]bool, skipped int, log string) {
	t.Helper()
	out, err := os.CreateTemp(t.TempDir(), "h2spec-*.log")
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	stdout := os.Stdout
	os.Stdout = out
	groups := []*spec.TestGroup{generic.Spec(), h2spechttp2.Spec(), hpack.Spec()}
	func() {
		defer func() { os.Stdout = stdout }()
		for _, g := range groups {
			g.Test(c)
		}
	}()
	b, _ := os.ReadFile(out.Name())
	passed = map[string]bool{}
	var walk func(g *spec.TestGroup)
	walk = func(g *spec.TestGroup) {
		for _, tc := range append(g.Tests, g.StrictTests...) {
			if tc.Result == nil {
				continue
			}
			id := fmt.Sprintf("%s/%d", g.ID(), tc.Result.Sequence)
			switch {
			case tc.Result.Failed:
				failed = append(failed, id)
			case tc.Result.Skipped:
				skipped++
			default:
				passed[id] = true
			}
		}
		for _, sg := range g.Groups {
			walk(sg)
		}
	}
	for _, g := range groups {
		walk(g)
	}
	if len(passed) == 0 {
		t.Fatalf("h2spec ran no case:\n%s", b)
	}
	sort.Strings(failed)
	return failed, passed, skipped, string(b)
}

// readH2SpecExclusions reads the list of h2spec cases allowed to fail: one
// case id a line ("http2/5.1.2/1", or "h2c-direct-response:http2/5.1.2/1"
// for one run of TestH2Spec), followed by the reason; # starts a comment.
func readH2SpecExclusions(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m := map[string]string{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		id, reason, _ := strings.Cut(line, " ")
		if strings.TrimSpace(reason) == "" {
			t.Fatalf("%s:%d: case %s has no reason", path, n, id)
		}
		m[id] = strings.TrimSpace(reason)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return m
}

// waitListening waits until the port accepts connections: h2spec exits the
// process when it cannot dial.
func waitListening(t *testing.T, port int) {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	testfixture.WaitFor(t, addr+" accepting connections", func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
}
