package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// origin is a net/http server on loopback that counts what it serves.
type origin struct {
	*httptest.Server
	hits atomic.Int64
}

func newOrigin(t *testing.T) *origin {
	o := &origin{}
	hang := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		o.hits.Add(1)
		w.Write([]byte("hello, rategen"))
	})
	mux.HandleFunc("/chunked", func(w http.ResponseWriter, r *http.Request) {
		o.hits.Add(1)
		w.Write([]byte("first"))
		w.(http.Flusher).Flush() // no length known: chunked
		w.Write([]byte("second"))
	})
	mux.HandleFunc("/close", func(w http.ResponseWriter, r *http.Request) {
		o.hits.Add(1)
		w.Header().Set("Connection", "close")
		w.Write([]byte("bye"))
	})
	mux.HandleFunc("/busy", func(w http.ResponseWriter, r *http.Request) {
		o.hits.Add(1)
		http.Error(w, "busy", http.StatusServiceUnavailable)
	})
	mux.HandleFunc("/hang", func(w http.ResponseWriter, r *http.Request) {
		o.hits.Add(1)
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	})
	o.Server = httptest.NewServer(mux)
	t.Cleanup(o.Close)
	t.Cleanup(func() { close(hang) }) // runs first: no handler left waiting
	return o
}

// TestRunAgainstNetHTTP sends at a fixed rate to a real server and checks
// the counts (exact) and the rate achieved (generous bounds only: the
// machine may be loaded).
func TestRunAgainstNetHTTP(t *testing.T) {
	o := newOrigin(t)
	tests := []struct {
		path              string
		rate              float64
		conns             int
		wantOK, wantNon2x bool
	}{
		{path: "/", rate: 2000, conns: 16, wantOK: true},
		{path: "/chunked", rate: 500, conns: 4, wantOK: true},
		{path: "/close", rate: 300, conns: 4, wantOK: true},
		{path: "/busy", rate: 500, conns: 4, wantNon2x: true},
	}
	for _, tt := range tests {
		t.Run(strings.TrimPrefix(tt.path, "/"), func(t *testing.T) {
			before := o.hits.Load()
			cfg := config{url: o.URL + tt.path, rate: tt.rate, duration: 500 * time.Millisecond, warmup: 100 * time.Millisecond,
				conns: tt.conns, timeout: 10 * time.Second}
			r := mustRun(t, cfg)
			t.Log(summary(r))
			want := uint64(tt.rate / 2)
			if r.sent != want || r.all != uint64(tt.rate*0.6) {
				t.Fatalf("sent %d (%d with the warm-up), want %d (%d)", r.sent, r.all, want, uint64(tt.rate*0.6))
			}
			if r.errors != 0 || r.connErrs != 0 {
				t.Fatalf("%d errors, %d failed connections: %s", r.errors, r.connErrs, r.firstErr)
			}
			if got := o.hits.Load() - before; got != int64(r.all) {
				t.Fatalf("the server answered %d requests, rategen sent %d", got, r.all)
			}
			if tt.wantOK && (r.ok != want || r.non2xx != 0) || tt.wantNon2x && (r.non2xx != want || r.ok != 0) {
				t.Fatalf("2xx %d, other %d", r.ok, r.non2xx)
			}
			if r.lat.n != want || r.lag.n != want || r.svc.n != want {
				t.Fatalf("%d latencies, %d send lags and %d from the send recorded, want %d", r.lat.n, r.lag.n, r.svc.n, want)
			}
			// From the send is part of from the intended time.
			if r.svc.max > r.lat.max || r.svc.min > r.lat.min {
				t.Fatalf("from the send: min %d max %d; from the intended time: min %d max %d", r.svc.min, r.svc.max, r.lat.min, r.lat.max)
			}
			// The rate is the one asked unless the machine stalled the
			// run for seconds.
			if a := r.achieved(); a > tt.rate*1.0001 || a < tt.rate/100 {
				t.Fatalf("achieved %.1f requests/s, asked %g", a, tt.rate)
			}
			if r.span < cfg.duration || r.lat.min <= 0 || r.lat.quantile(0.5) > r.lat.max {
				t.Fatalf("span %v, latency min %d p50 %d max %d", r.span, r.lat.min, r.lat.quantile(0.5), r.lat.max)
			}
			if r.cpu <= 0 {
				t.Fatalf("CPU time %v", r.cpu)
			}
		})
	}
}

// TestRunTimeouts: requests that get no answer count as timeouts and
// errors, not as latencies.
func TestRunTimeouts(t *testing.T) {
	o := newOrigin(t)
	cfg := config{url: o.URL + "/hang", rate: 50, duration: 200 * time.Millisecond, conns: 20, timeout: 300 * time.Millisecond}
	r := mustRun(t, cfg)
	if r.sent != 10 || r.timeouts != 10 || r.errors != 10 || r.responses() != 0 || r.lat.n != 0 {
		t.Fatalf("got %s", summary(r))
	}
	if !strings.Contains(r.firstErr, "no response within 300ms") {
		t.Fatalf("first error %q", r.firstErr)
	}
}

func TestRunRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cfg := config{url: "http://" + addr + "/", rate: 10, duration: time.Second, conns: 2, timeout: 5 * time.Second}
	tgt, err := parseTarget(cfg.url)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := run(context.Background(), cfg, tgt); err == nil || !strings.Contains(err.Error(), "connecting to "+addr) {
		t.Fatalf("error %v, want one about connecting to %s", err, addr)
	}
}

// TestMainOutAndMerge runs the command twice with -out and merges the two
// result files.
func TestMainOutAndMerge(t *testing.T) {
	o := newOrigin(t)
	dir := t.TempDir()
	var files []string
	for i := range 2 {
		f := filepath.Join(dir, "r"+string(rune('1'+i)))
		var out, errb bytes.Buffer
		if code := mainErr([]string{"-url", o.URL + "/", "-rate", "400", "-duration", "250ms", "-conns", "4", "-out", f}, &out, &errb); code != 0 {
			t.Fatalf("exit %d: %s", code, errb.String())
		}
		if !regexp.MustCompile(`(?m)^rategen url=\S+ rate=400 conns=4 .*sent=100 ok=100 non2xx=0 errors=0 .*p99_ms=[0-9.]+ .*cpu_us_per_req=[0-9.]+$`).Match(out.Bytes()) {
			t.Fatalf("no summary line in:\n%s", out.String())
		}
		files = append(files, f)
	}
	var out, errb bytes.Buffer
	if code := mainErr(append([]string{"-merge"}, files...), &out, &errb); code != 0 {
		t.Fatalf("merge: exit %d: %s", code, errb.String())
	}
	if !regexp.MustCompile(`(?m)^rategen .*window_s=0\.500 .*sent=200 ok=200 `).Match(out.Bytes()) {
		t.Fatalf("merged:\n%s", out.String())
	}
}

func TestMainBadInput(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing")
	notResult := filepath.Join(t.TempDir(), "x")
	if err := os.WriteFile(notResult, []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{}, 2, "-url: required"},
		{[]string{"-url", "https://x/"}, 2, `scheme "https", want http`},
		{[]string{"-url", "http:///x"}, 2, "no host"},
		{[]string{"-url", "http://127.0.0.1:1/", "-rate", "0"}, 2, "-rate: 0 requests/s"},
		{[]string{"-url", "http://127.0.0.1:1/", "-conns", "0"}, 2, "-conns: 0"},
		{[]string{"-url", "http://127.0.0.1:1/", "-duration", "-1s"}, 2, "-duration"},
		{[]string{"-url", "http://127.0.0.1:1/", "-timeout", "0s"}, 2, "-timeout"},
		{[]string{"-url", "http://127.0.0.1:1/", "-warmup", "-1s"}, 2, "-warmup"},
		{[]string{"-url", "http://127.0.0.1:1/", "extra"}, 2, "unexpected arguments"},
		{[]string{"-merge"}, 2, "no result files"},
		{[]string{"-merge", missing}, 1, "reading a result"},
		{[]string{"-merge", notResult}, 1, "not a rategen result"},
	} {
		var out, errb bytes.Buffer
		code := mainErr(tt.args, &out, &errb)
		if code != tt.code || !strings.Contains(errb.String(), tt.want) {
			t.Errorf("%q: exit %d, stderr %q; want %d and %q", tt.args, code, errb.String(), tt.code, tt.want)
		}
	}
}

// TestRunServerHangsUp: a server that accepts and closes every connection
// at once answers nothing; every request counts as an error (sent or,
// when no connection held long enough, never sent) and the run ends.
func TestRunServerHangsUp(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	cfg := config{url: "http://" + l.Addr().String() + "/", rate: 200, duration: 250 * time.Millisecond, conns: 4, timeout: time.Second}
	r := mustRun(t, cfg)
	if r.responses() != 0 || r.errors != 50 || r.sent > 50 || r.firstErr == "" {
		t.Fatalf("got %s (first error %q)", summary(r), r.firstErr)
	}
}

// mustRun runs rategen with cfg and fails the test if it cannot.
func mustRun(t *testing.T, cfg config) *result {
	t.Helper()
	tgt, err := parseTarget(cfg.url)
	if err != nil {
		t.Fatal(err)
	}
	r, err := run(context.Background(), cfg, tgt)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
