package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/internal/dataplane"
	"github.com/meridian-platform/meridian/internal/dataplane/config"
	"github.com/meridian-platform/meridian/internal/node/noderun"
	"github.com/meridian-platform/meridian/internal/secevents"
)

// Options configures a standalone node (`meridian node --config PATH`).
type Options struct {
	// ConfigPath is a YAML/JSON file or a folder of them (read
	// recursively; hidden files and folders are skipped). Required.
	ConfigPath string
	// AdminListen is the admin listener address (/metrics, /healthz,
	// /readyz, /config, and /debug/pprof with EnablePprof); "" disables it.
	// Suggested flag: --admin (default "127.0.0.1:9901").
	AdminListen string
	// EnablePprof serves /debug/pprof on the admin listener.
	// Suggested flag: --pprof.
	EnablePprof bool
	// PollInterval is how often the configuration is checked for changes
	// (default 1s). Suggested flag: --poll-interval.
	PollInterval time.Duration
	// DrainTimeout bounds the graceful shutdown on SIGTERM or when ctx ends
	// (default 30s). Suggested flag: --drain-timeout.
	DrainTimeout time.Duration
	// AccessLog receives JSON access-log lines (default os.Stdout).
	AccessLog io.Writer
	// Logger receives the node's own log (default JSON on stderr).
	Logger *slog.Logger
	// Stages fills slots of dataplane.Order ("authn", "policy",
	// "ratelimit", "waf", ...) with the factories of those capabilities;
	// the command that assembles the node passes them (see
	// dataplane.Options.Stages).
	Stages map[string]dataplane.StageFactory
	// Collectors are extra metrics served on /metrics (for example the
	// policy and rate-limit registries behind Stages).
	Collectors []prometheus.Collector
	// SecurityEvents receives the data plane's own security events
	// (NetworkPolicy verdicts at accept time), e.g. Security.Events().
	SecurityEvents secevents.Sink
	// Compile are options of every configuration compile (for example
	// Security.CompileOptions: which GeoIP databases policies may use).
	Compile []config.CompileOption
	// HTTP1Engine serves HTTP/1.1 listeners (TLS included): "evloop" (the default,
	// also "", on Linux) or "goroutine" (see dataplane.Options.HTTP1Engine).
	// Suggested flag: --http1-engine.
	HTTP1Engine string
}

// RunStandalone runs a node from local configuration until ctx ends or the
// process gets SIGTERM/SIGINT, then drains and returns. Edits to the
// configuration are applied live; an invalid edit is logged and reported
// on /config (with its field path) while the last good version of the
// object keeps serving. It returns an error only when the node cannot
// start (no configuration, admin listener cannot bind).
func RunStandalone(ctx context.Context, opts Options) error {
	if opts.ConfigPath == "" {
		return errors.New("starting node: a configuration path is required")
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = time.Second
	}
	if opts.DrainTimeout <= 0 {
		opts.DrainTimeout = 30 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewJSONHandler(os.Stderr, nil))
	}
	if _, err := os.Stat(opts.ConfigPath); err != nil {
		return fmt.Errorf("starting node: reading configuration: %w", err)
	}
	rt, err := noderun.New(noderun.Options{Logger: opts.Logger, AccessLog: opts.AccessLog, Stages: opts.Stages,
		Collectors: opts.Collectors, SecurityEvents: opts.SecurityEvents, HTTP1Engine: opts.HTTP1Engine})
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	reg, dp := rt.Metrics, rt.DP
	n := &node{opts: opts, log: opts.Logger.With("component", "node"), dp: dp, lastGood: map[string]v1.Object{},
		lastFiles: map[string][]v1.Object{}}
	n.reloads = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "meridian_config_reloads_total",
		Help: "Configuration loads by result (ok: applied with no error; partial: some objects skipped)."}, []string{"result"})
	n.objErrors = prometheus.NewGauge(prometheus.GaugeOpts{Name: "meridian_config_object_errors",
		Help: "Objects (or files) of the current configuration that were skipped."})
	n.lastReload = prometheus.NewGauge(prometheus.GaugeOpts{Name: "meridian_config_last_reload_timestamp_seconds",
		Help: "When the configuration was last applied."})
	reg.MustRegister(n.reloads, n.objErrors, n.lastReload)

	if addr, err := rt.ServeAdmin(opts.AdminListen, n.adminHandler(reg)); err != nil {
		return err
	} else if addr != nil {
		n.log.Info("admin listener started", "address", addr.String())
	}
	n.reload(ctx)
	sig := signature(opts.ConfigPath)
	t := time.NewTicker(opts.PollInterval)
	defer t.Stop()
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-t.C:
			if s := signature(opts.ConfigPath); s != sig {
				sig = s
				n.reload(ctx)
			}
		}
	}
	n.log.Info("shutting down", "drainTimeout", opts.DrainTimeout.String())
	if err := rt.Drain(opts.DrainTimeout); err != nil {
		n.log.Warn("drain ended with connections still open", "error", err)
	}
	return nil
}

type node struct {
	opts Options
	log  *slog.Logger
	dp   *dataplane.Server

	reloads    *prometheus.CounterVec
	objErrors  prometheus.Gauge
	lastReload prometheus.Gauge

	mu         sync.Mutex
	generation int64
	appliedAt  time.Time
	problems   []Problem
	ready      bool
	lastGood   map[string]v1.Object   // objectKey -> last version that compiled
	lastFiles  map[string][]v1.Object // file -> last objects that decoded
}

// Problem is one reported configuration problem.
type Problem struct {
	File      string `json:"file,omitempty"`
	Kind      string `json:"kind,omitempty"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name,omitempty"`
	Error     string `json:"error"`
	// Fields lists the field paths at fault, when known.
	Fields []v1.FieldError `json:"fields,omitempty"`
	// Serving says an older good version of the object (or file) is still
	// in force.
	Serving string `json:"serving,omitempty"`
}

// reload reads the configuration and applies it. Objects that fail keep
// their last good version.
func (n *node) reload(ctx context.Context) {
	n.mu.Lock()
	defer n.mu.Unlock()
	files, err := loadFiles(n.opts.ConfigPath)
	if err != nil {
		n.log.Error("configuration not reloaded", "error", err)
		n.reloads.WithLabelValues("error").Inc()
		return
	}
	var problems []Problem
	var objs []v1.Object
	names := make([]string, 0, len(files))
	for f := range files {
		names = append(names, f)
	}
	sort.Strings(names)
	for _, f := range names {
		fo := files[f]
		if fo.err != nil {
			p := Problem{File: f, Error: fo.err.Error()}
			var de *v1.DecodeError
			if errors.As(fo.err, &de) {
				p.Kind, p.Name, p.Fields = de.Kind, de.Name, de.FieldErrors()
			}
			if prev, ok := n.lastFiles[f]; ok {
				p.Serving = "last good version of the file"
				objs = append(objs, prev...)
			}
			problems = append(problems, p)
			continue
		}
		n.lastFiles[f] = fo.objs
		objs = append(objs, fo.objs...)
	}
	for f := range n.lastFiles {
		if _, ok := files[f]; !ok {
			delete(n.lastFiles, f)
		}
	}
	// Metadata checks the compiler does not make.
	var checked []v1.Object
	for _, o := range objs {
		// Defaults first, as the console applies them before validating
		// (defaulting is idempotent; the compiler does it again).
		v1.DefaultObject(o)
		if errs := v1.ValidateObject(o); len(errs) > 0 {
			problems = append(problems, n.objectProblem(o, errs, &checked))
			continue
		}
		checked = append(checked, o)
	}
	tab := config.Compile(checked, n.opts.Compile...)
	if len(tab.Errors) > 0 {
		// Put back the last good version of each failed object and compile
		// again, so a bad edit does not take the object away.
		failed := map[string]config.ObjectError{}
		for _, e := range tab.Errors {
			failed[e.Kind+" "+e.Namespace+"/"+e.Name] = e
		}
		var retry []v1.Object
		for _, o := range checked {
			k := objectKey(o)
			if e, bad := failed[k]; bad {
				p := Problem{Kind: e.Kind, Namespace: e.Namespace, Name: e.Name, Error: e.Err.Error()}
				var fe v1.FieldErrors
				if errors.As(e.Err, &fe) {
					p.Fields = fe
				}
				if prev, ok := n.lastGood[k]; ok {
					p.Serving = "last good version"
					retry = append(retry, prev)
				}
				problems = append(problems, p)
				continue
			}
			retry = append(retry, o)
		}
		tab = config.Compile(retry, n.opts.Compile...)
		checked = retry
	}
	failedNow := map[string]bool{}
	for _, e := range tab.Errors {
		failedNow[e.Kind+" "+e.Namespace+"/"+e.Name] = true
	}
	seen := map[string]bool{}
	for _, o := range checked {
		k := objectKey(o)
		seen[k] = true
		if !failedNow[k] {
			n.lastGood[k] = o
		}
	}
	for k := range n.lastGood {
		if !seen[k] {
			delete(n.lastGood, k)
		}
	}
	if err := n.dp.Apply(ctx, tab); err != nil {
		problems = append(problems, Problem{Error: err.Error()})
	}
	for _, p := range problems {
		n.log.Error("configuration problem", "file", p.File, "kind", p.Kind, "namespace", p.Namespace, "name", p.Name,
			"error", p.Error, "serving", p.Serving)
	}
	for _, w := range tab.NetPolicyWarnings() {
		n.log.Warn("network policy not enforced on a shared listener", "namespace", w.Namespace, "name", w.Name, "reason", w.Err.Error())
	}
	n.generation++
	n.appliedAt = time.Now()
	n.problems = problems
	n.ready = true
	n.objErrors.Set(float64(len(problems)))
	n.lastReload.SetToCurrentTime()
	result := "ok"
	if len(problems) > 0 {
		result = "partial"
	}
	n.reloads.WithLabelValues(result).Inc()
	n.log.Info("configuration applied", "generation", n.generation, "objects", len(checked), "problems", len(problems))
}

func (n *node) objectProblem(o v1.Object, errs v1.FieldErrors, keep *[]v1.Object) Problem {
	m := o.GetMetadata()
	p := Problem{Kind: o.GetTypeMeta().Kind, Namespace: m.Namespace, Name: m.Name, Error: errs.Error(), Fields: errs}
	if prev, ok := n.lastGood[objectKey(o)]; ok {
		p.Serving = "last good version"
		*keep = append(*keep, prev)
	}
	return p
}
