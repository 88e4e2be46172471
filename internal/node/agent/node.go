package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/meridian-platform/meridian/internal/dataplane"
	"github.com/meridian-platform/meridian/internal/dataplane/config"
	"github.com/meridian-platform/meridian/internal/node/noderun"
	"github.com/meridian-platform/meridian/internal/secevents"
)

// NodeOptions configure `meridian node --console URL`.
type NodeOptions struct {
	// Console is the console URL (--console https://HOST:PORT).
	Console string
	// Token is the SiteToken (--token), needed for the first start only.
	Token string
	// Name is the site name (--name).
	Name string
	// DataDir keeps identity and last-known-good state (--data-dir,
	// suggested default ./.meridian-node).
	DataDir string
	// CAFile is the console CA to trust at registration (--ca-file; the
	// console writes it to its DATA_DIR/ca.crt). Not needed when the
	// console's certificate chains to the system roots, nor once
	// registered.
	CAFile string
	// CAData is the console CA in PEM (instead of CAFile; in-process use).
	CAData []byte
	// NodeVersion is reported to the console.
	NodeVersion string
	// AdminListen serves /metrics, /healthz, /readyz and /config (--admin,
	// default "127.0.0.1:9901"; "" disables it).
	AdminListen string
	// DrainTimeout bounds the graceful shutdown (default 30s).
	DrainTimeout time.Duration
	AccessLog    io.Writer
	Logger       *slog.Logger
	// Stages and Collectors are as in node.Options: the capabilities the
	// command assembles (authn, policy, ratelimit, waf) and their metrics.
	Stages     map[string]dataplane.StageFactory
	Collectors []prometheus.Collector
	// SecurityEvents is as in node.Options (NetworkPolicy verdicts).
	SecurityEvents secevents.Sink
	// Compile is as in node.Options (which GeoIP databases policies may
	// use).
	Compile []config.CompileOption
	// OnAgent, when set, is called with the agent before it runs (e.g. to
	// forward security events to the console with RecordEvent).
	OnAgent func(*Agent)
	// HTTP1Engine serves HTTP/1.1 listeners (TLS included) as in node.Options:
	// "evloop" (the default, also "", on Linux) or "goroutine"
	// (--http1-engine).
	HTTP1Engine string
}

// RunNode runs a console-managed node until ctx ends or SIGTERM/SIGINT:
// the data plane, started from the last-known-good snapshot, kept in step
// with the console.
func RunNode(ctx context.Context, o NodeOptions) error {
	if o.Console == "" || o.Name == "" {
		return errors.New("starting node: --console and --name are required")
	}
	if o.DataDir == "" {
		o.DataDir = ".meridian-node"
	}
	if o.DrainTimeout <= 0 {
		o.DrainTimeout = 30 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewJSONHandler(os.Stderr, nil))
	}
	caData := o.CAData
	switch {
	case len(caData) > 0:
	case o.CAFile != "":
		b, err := os.ReadFile(o.CAFile)
		if err != nil {
			return fmt.Errorf("starting node: reading --ca-file: %w", err)
		}
		caData = b
	default:
		if b, err := os.ReadFile(filepath.Join(o.DataDir, caFile)); err == nil {
			caData = b
		}
	}
	rt, err := noderun.New(noderun.Options{Logger: o.Logger, AccessLog: o.AccessLog, Stages: o.Stages,
		Collectors: o.Collectors, SecurityEvents: o.SecurityEvents, HTTP1Engine: o.HTTP1Engine})
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	reg, dp := rt.Metrics, rt.DP
	a, err := New(Options{ConsoleURL: o.Console, Token: o.Token, Name: o.Name, DataDir: o.DataDir, CAData: caData,
		NodeVersion: o.NodeVersion, Applier: &DataplaneApplier{DP: dp, Compile: o.Compile}, ObjectMetrics: reg, Logger: o.Logger})
	if err != nil {
		return err
	}
	if o.OnAgent != nil {
		o.OnAgent(a)
	}
	if _, err := rt.ServeAdmin(o.AdminListen, a.adminHandler(reg, dp)); err != nil {
		return err
	}
	runErr := a.Run(ctx)
	if err := rt.Drain(o.DrainTimeout); err != nil {
		o.Logger.Warn("drain ended with connections still open", "error", err)
	}
	return runErr
}

func (a *Agent) adminHandler(reg *prometheus.Registry, dp *dataplane.Server) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if a.Version() == "" {
			http.Error(w, "no configuration yet (neither from the console nor from disk)", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /config", func(w http.ResponseWriter, _ *http.Request) {
		t := dp.Table()
		out := struct {
			Version string `json:"version"`
			Site    string `json:"site,omitempty"`
			Objects any    `json:"objects"`
		}{Version: a.Version(), Objects: t.Objects}
		if id := a.identity(); id != nil {
			out.Site = id.rec.Site
		}
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(out)
	})
	return mux
}
