package dataplane

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// TestGRPCDeadlines: the proxy ends a gRPC call at its grpc-timeout even
// when the origin ignores it (DEADLINE_EXCEEDED), and tells the origin the
// nearer of the call's deadline and the route's timeout.
func TestGRPCDeadlines(t *testing.T) {
	stop := make(chan struct{})
	deadlines := make(chan time.Duration, 8)
	gaddr, _ := grpcHealthOrigin(t, []string{"stuck", "shop"}, grpc.UnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		if dl, ok := ctx.Deadline(); ok {
			deadlines <- time.Until(dl)
		} else {
			deadlines <- -1
		}
		if r, ok := req.(*healthpb.HealthCheckRequest); ok && r.Service == "stuck" {
			<-stop // ignores its deadline
		}
		return h(ctx, req)
	}))
	defer close(stop) // before the server stops (the test's cleanup)
	port := freePort(t)
	startServer(t, pool("g", gaddr)+lbDoc([]string{listenerAt(port, "h2c: true")},
		`{match: {pathPrefix: /grpc.health.v1.Health/Check, headers: [{name: x-short, exact: "1"}]}, pool: g, timeout: 2s}`, "{pool: g}"), Options{})
	c := h2cClient()
	call := func(service, timeout string, short bool) (*http.Response, time.Duration) {
		t.Helper()
		msg := []byte{0x0a, byte(len(service))}
		msg = append(msg, service...)
		frame := append([]byte{0, 0, 0, 0, byte(len(msg))}, msg...)
		req, _ := http.NewRequest("POST", fmt.Sprintf("http://127.0.0.1:%d/grpc.health.v1.Health/Check", port), bytes.NewReader(frame))
		req.Header.Set("Content-Type", "application/grpc")
		req.Header.Set("Te", "trailers")
		if timeout != "" {
			req.Header.Set("Grpc-Timeout", timeout)
		}
		if short {
			req.Header.Set("X-Short", "1")
		}
		t0 := time.Now()
		resp, err := c.Do(req) // no deadline of its own: only grpc-timeout
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, time.Since(t0)
	}
	status := func(r *http.Response) string {
		if v := r.Trailer.Get("Grpc-Status"); v != "" {
			return v
		}
		return r.Header.Get("Grpc-Status")
	}
	// An origin that ignores the deadline: the proxy ends the call.
	resp, took := call("stuck", "300m", false)
	if status(resp) != "4" || took > 2*time.Second {
		t.Fatalf("stuck call: grpc-status %q after %v, want 4 (DEADLINE_EXCEEDED) near 300ms", status(resp), took)
	}
	if d := <-deadlines; d <= 0 || d > 300*time.Millisecond {
		t.Fatalf("origin deadline %v, want at most 300ms", d)
	}
	// The route's timeout is nearer than the call's: the origin gets it.
	if resp, _ := call("shop", "10S", true); status(resp) != "0" {
		t.Fatalf("short route: grpc-status %q", status(resp))
	}
	if d := <-deadlines; d <= 0 || d > 2*time.Second {
		t.Fatalf("origin deadline %v, want at most the route's 2s", d)
	}
	// The call's is nearer: passed on as it is (less the time spent).
	if resp, _ := call("shop", "1500m", true); status(resp) != "0" {
		t.Fatalf("grpc-status %q", status(resp))
	}
	if d := <-deadlines; d <= time.Second || d > 1500*time.Millisecond {
		t.Fatalf("origin deadline %v, want about 1.5s", d)
	}
}

func TestGRPCTimeoutCodec(t *testing.T) {
	for _, c := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"1S", time.Second, true}, {"250m", 250 * time.Millisecond, true}, {"99999999n", 99999999, true},
		{"2H", 2 * time.Hour, true}, {"3M", 3 * time.Minute, true}, {"7u", 7 * time.Microsecond, true},
		{"123456789S", 0, false}, {"10", 0, false}, {"S", 0, false}, {"1x", 0, false}, {"-1S", 0, false}, {"", 0, false},
	} {
		got, ok := grpcTimeout(c.in)
		if got != c.want || ok != c.ok {
			t.Errorf("grpcTimeout(%q) = %v %v, want %v %v", c.in, got, ok, c.want, c.ok)
		}
	}
	for _, d := range []time.Duration{1, 999, time.Millisecond, 1500 * time.Millisecond, 10 * time.Second, 3 * time.Hour, 2000000 * time.Hour} {
		s := encodeGRPCTimeout(d)
		got, ok := grpcTimeout(s)
		if !ok || got < d || len(s) > 9 {
			t.Errorf("encodeGRPCTimeout(%v) = %q, read back %v %v", d, s, got, ok)
		}
	}
}
