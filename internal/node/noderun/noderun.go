package noderun

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/meridian-platform/meridian/internal/dataplane"
	"github.com/meridian-platform/meridian/internal/secevents"
)

// Options are the parts of a node's options its data plane is built from.
type Options struct {
	Logger    *slog.Logger
	AccessLog io.Writer
	// Stages fill slots of dataplane.Order (see dataplane.Options.Stages).
	Stages map[string]dataplane.StageFactory
	// Collectors are served on /metrics besides the Go and process ones.
	Collectors     []prometheus.Collector
	SecurityEvents secevents.Sink
	// HTTP1Engine is dataplane.Options.HTTP1Engine.
	HTTP1Engine string
}

// Runtime is a node's data plane, its metrics registry and its admin
// listener.
type Runtime struct {
	// Metrics holds the Go, process and Options.Collectors metrics; the
	// node adds its own.
	Metrics *prometheus.Registry
	DP      *dataplane.Server
	admin   *http.Server
}

// New checks the HTTP/1.1 engine, registers the metrics and builds the
// data plane (which serves nothing until a configuration is applied).
func New(o Options) (*Runtime, error) {
	if err := dataplane.CheckHTTP1Engine(o.HTTP1Engine); err != nil {
		return nil, fmt.Errorf("starting node: HTTP1Engine: %w", err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, c := range o.Collectors {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("starting node: registering metrics: %w", err)
		}
	}
	dp := dataplane.New(dataplane.Options{Logger: o.Logger, AccessLog: o.AccessLog, Metrics: reg, Stages: o.Stages,
		SecurityEvents: o.SecurityEvents, HTTP1Engine: o.HTTP1Engine})
	return &Runtime{Metrics: reg, DP: dp}, nil
}

// ServeAdmin serves h on addr until Drain and returns the address bound;
// addr "" serves nothing (nil address).
func (r *Runtime) ServeAdmin(addr string, h http.Handler) (net.Addr, error) {
	if addr == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("starting admin listener: %w", err)
	}
	r.admin = &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = r.admin.Serve(ln) }()
	return ln.Addr(), nil
}

// Drain stops the data plane gracefully, waiting up to timeout for open
// connections, then the admin listener. The error says connections were
// still open when the time was up.
func (r *Runtime) Drain(timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	err := r.DP.Shutdown(ctx)
	if r.admin != nil {
		_ = r.admin.Shutdown(ctx)
	}
	return err
}
