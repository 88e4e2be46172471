package dataplane

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/internal/dataplane/config"
)

// freePort returns a loopback port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func decodeObjects(t testing.TB, src string) []v1.Object {
	t.Helper()
	var out []v1.Object
	for _, doc := range strings.Split(src, "\n---\n") {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		var tm v1.TypeMeta
		if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
			t.Fatal(err)
		}
		o, ok := v1.New(tm.Kind)
		if !ok {
			t.Fatalf("unknown kind %q", tm.Kind)
		}
		if err := yaml.UnmarshalStrict([]byte(doc), o); err != nil {
			t.Fatalf("decoding %s: %v\n%s", tm.Kind, err, doc)
		}
		out = append(out, o)
	}
	return out
}

// testEngine is the HTTP/1.1 engine the package's tests run with: the
// default ("": the event-loop engine in front of the goroutine engine);
// DATAPLANE_HTTP1_ENGINE=goroutine runs them all with the goroutine engine
// alone. TestOtherHTTP1Engine runs a part of them with the other engine,
// TestEnginesAgree compares the two.
var testEngine = os.Getenv("DATAPLANE_HTTP1_ENGINE")

func quietLoggerT() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// startServer compiles src and applies it to a new server; it fails the
// test on any compile or apply error.
func startServer(t testing.TB, src string, opts Options) *Server {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = quietLoggerT()
	}
	if opts.AccessLog == nil {
		opts.AccessLog = io.Discard
	}
	if opts.HTTP1Engine == "" {
		opts.HTTP1Engine = testEngine
	}
	s := New(opts)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
	})
	apply(t, s, src)
	return s
}

func apply(t testing.TB, s *Server, src string) {
	t.Helper()
	tab := config.Compile(decodeObjects(t, src))
	if len(tab.Errors) > 0 {
		t.Fatalf("compile errors: %v", tab.Errors)
	}
	if err := s.Apply(context.Background(), tab); err != nil {
		t.Fatalf("apply: %v", err)
	}
}

func pool(name string, addrs ...string) string {
	var eps []string
	for _, a := range addrs {
		eps = append(eps, fmt.Sprintf("{address: %q}", a))
	}
	return fmt.Sprintf(`apiVersion: meridian/v1
kind: OriginPool
metadata: {name: %s, namespace: t}
spec: {endpoints: [%s]}
`, name, strings.Join(eps, ", "))
}

func hostOf(url string) string {
	return strings.TrimPrefix(strings.TrimPrefix(url, "http://"), "https://")
}

// deadAddr is an address no test server listens on: connecting to it
// fails at once. (A port found free by freePort may be taken by another
// process before the test connects.)
const deadAddr = "127.0.0.1:1"
