package noderun

import (
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestRuntime(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	if _, err := New(Options{Logger: quiet, HTTP1Engine: "threads"}); err == nil || !strings.Contains(err.Error(), "HTTP1Engine") {
		t.Fatalf("unknown engine: %v", err)
	}
	dup := prometheus.NewCounter(prometheus.CounterOpts{Name: "go_goroutines", Help: "clashes with the Go collector"})
	if _, err := New(Options{Logger: quiet, Collectors: []prometheus.Collector{dup}}); err == nil || !strings.Contains(err.Error(), "registering metrics") {
		t.Fatalf("clashing collector: %v", err)
	}
	extra := prometheus.NewCounter(prometheus.CounterOpts{Name: "noderun_test_total", Help: "an extra collector"})
	rt, err := New(Options{Logger: quiet, AccessLog: io.Discard, Collectors: []prometheus.Collector{extra}})
	if err != nil {
		t.Fatal(err)
	}
	if addr, err := rt.ServeAdmin("", nil); addr != nil || err != nil {
		t.Fatalf("no admin address: %v, %v", addr, err)
	}
	addr, err := rt.ServeAdmin("127.0.0.1:0", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		mfs, _ := rt.Metrics.Gather()
		for _, mf := range mfs {
			io.WriteString(w, mf.GetName()+"\n")
		}
	}))
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + addr.String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"noderun_test_total", "go_goroutines", "process_cpu_seconds_total"} {
		if !strings.Contains(string(body), want+"\n") {
			t.Errorf("metrics lack %s:\n%s", want, body)
		}
	}
	if err := rt.Drain(5 * time.Second); err != nil {
		t.Fatalf("drain: %v", err)
	}
	if _, err := c.Get("http://" + addr.String() + "/"); err == nil {
		t.Fatal("admin listener still serving after Drain")
	}
}
