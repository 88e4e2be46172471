package lb

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// logBuffer collects log output safely across goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// newTestRegistry returns a registry closed at the end of the test, with its
// log captured.
func newTestRegistry(t testing.TB, opts RegistryOptions) (*Registry, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	r := NewRegistry(opts)
	t.Cleanup(r.Close)
	return r, logs
}

// addrs returns n loopback-style addresses 10.0.0.1:80 ... (never dialled).
func addrs(n int) []string {
	a := make([]string, n)
	for i := range a {
		a[i] = fmt.Sprintf("10.0.%d.%d:8080", i/250, i%250+1)
	}
	return a
}

func endpoints(as []string, weights ...int) []EndpointConfig {
	eps := make([]EndpointConfig, len(as))
	for i, a := range as {
		eps[i] = EndpointConfig{Address: a, Weight: 1}
		if i < len(weights) {
			eps[i].Weight = weights[i]
		}
	}
	return eps
}

// mustPool applies one pool and returns it.
func mustPool(t testing.TB, r *Registry, cfg PoolConfig) *Pool {
	t.Helper()
	if cfg.ID == "" {
		cfg.ID = "t/ns/pool"
	}
	if err := r.Update(context.Background(), []PoolConfig{cfg}); err != nil {
		t.Fatalf("Update: %v", err)
	}
	p := r.Pool(cfg.ID)
	if p == nil {
		t.Fatalf("pool %q missing after Update", cfg.ID)
	}
	return p
}

// setHealth forces an endpoint's health state, as a checker would.
func setHealth(p *Pool, e *Endpoint, s HealthState) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.setHealthLocked(e, s)
	p.recountLocked()
}

func byAddr(p *Pool, addr string) *Endpoint {
	for _, e := range p.Endpoints() {
		if e.Addr() == addr {
			return e
		}
	}
	return nil
}

// eventually polls cond every 5ms until it holds or timeout passes.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
