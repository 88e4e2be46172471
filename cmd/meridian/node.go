package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/meridian-platform/meridian/internal/dataplane"
	"github.com/meridian-platform/meridian/internal/node"
	"github.com/meridian-platform/meridian/internal/node/agent"
	"github.com/meridian-platform/meridian/internal/policy/geoip"
)

// version is reported by nodes to the console.
const version = "0.1.0-dev"

// newNodeCommand returns `meridian node`: a site's data plane, standalone
// (--config) or managed by a console (--console).
func newNodeCommand(_, errOut io.Writer) *cobra.Command {
	var o node.Options
	var a agent.NodeOptions
	var eventsPath string
	var geoDBs []string
	var geoASNDB string
	var gcPercent int
	cmd := &cobra.Command{
		Use:   "node",
		Short: "Run a node: the data plane of a site",
		Long: `Run a Meridian node.

With --config it runs standalone from local YAML (a file or a folder of files
with HTTPLoadBalancer, TCPLoadBalancer, OriginPool, HealthCheck, Certificate,
AppFirewall, ServicePolicy and RateLimiter objects, the same YAML the console
accepts). Edits are applied live: in-flight requests finish, unchanged
listeners keep their connections, and an invalid edit is reported with its
field path while the last good configuration keeps serving.

With --console it registers with a console using a SiteToken (first start
only), keeps one sync stream to it over mTLS, writes every snapshot it
applies to DATA_DIR (encrypted) and serves from that copy while the console
is unreachable. See docs/sites.md for renewal, re-enrolment and recommission.`,
		Example: `  meridian node --config ./site.yaml
  meridian node --config ./conf.d/ --admin 127.0.0.1:9901 --pprof
  curl -s http://127.0.0.1:9901/config    # the effective configuration, secrets redacted

  meridian node --console https://console.example.com:7443 --ca-file ca.crt \
      --token TOKEN --name station-0001 --data-dir /var/lib/meridian`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if (o.ConfigPath == "") == (a.Console == "") {
				return errors.New("give either --config PATH (standalone) or --console URL (managed by a console)")
			}
			// The compiled AppFirewall rules are a live heap of tens of MiB
			// that every collection marks again, while the request path
			// allocates little: a higher GOGC trades a bounded amount of
			// memory for CPU (about 10-25% of a WAF-inspected GET at 400).
			// The GOGC environment variable, when set, wins.
			if os.Getenv("GOGC") == "" && gcPercent != 0 {
				debug.SetGCPercent(gcPercent)
			}
			events := io.Writer(errOut)
			if eventsPath != "" {
				f, err := os.OpenFile(eventsPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
				if err != nil {
					return fmt.Errorf("opening --events-log: %w", err)
				}
				defer f.Close()
				events = f
			}
			ctx, cancel := context.WithCancel(cmd.Context())
			defer cancel()
			var secOpts node.SecurityOptions
			if len(geoDBs) > 0 || geoASNDB != "" {
				if geoASNDB != "" {
					chk, err := geoip.OpenFiles("", geoASNDB)
					if err != nil {
						return fmt.Errorf("--geoip-asn-db: %w", err)
					}
					chk.Close()
				}
				db, err := geoip.Open(append(append([]string(nil), geoDBs...), geoASNDB)...)
				if err != nil {
					return fmt.Errorf("--geoip-db: %w", err)
				}
				defer db.Close()
				secOpts.GeoIP = db
			}
			sec := node.NewSecurityWith(events, secOpts)
			secDone := make(chan struct{})
			go func() { sec.Run(ctx); close(secDone) }()
			var err error
			if err := dataplane.CheckHTTP1Engine(o.HTTP1Engine); err != nil {
				return fmt.Errorf("--http1-engine: %w", err)
			}
			if a.Console != "" {
				a.AdminListen, a.DrainTimeout = o.AdminListen, o.DrainTimeout
				a.NodeVersion = version
				a.Stages, a.Collectors, a.SecurityEvents = sec.Stages, sec.Collectors, sec.Events()
				a.OnAgent = sec.ForwardToAgent // security events also go to the console
				a.Compile = sec.CompileOptions()
				a.HTTP1Engine = o.HTTP1Engine
				err = agent.RunNode(ctx, a)
			} else {
				o.Stages, o.Collectors, o.SecurityEvents = sec.Stages, sec.Collectors, sec.Events()
				o.Compile = sec.CompileOptions()
				err = node.RunStandalone(ctx, o)
			}
			cancel() // flushes the security events before the process exits
			<-secDone
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.ConfigPath, "config", "", "YAML/JSON file or folder of objects to serve (standalone mode)")
	f.StringVar(&a.Console, "console", "", "console URL (managed mode), e.g. https://127.0.0.1:7443")
	f.StringVar(&a.Token, "token", "", "SiteToken for the first registration (managed mode)")
	f.StringVar(&a.Name, "name", "", "site name (managed mode)")
	f.StringVar(&a.DataDir, "data-dir", ".meridian-node", "identity and last-known-good configuration (managed mode)")
	f.StringVar(&a.CAFile, "ca-file", "", "console CA certificate to trust at registration (the console's DATA_DIR/ca.crt)")
	f.StringVar(&o.AdminListen, "admin", "127.0.0.1:9901", "admin listener (/metrics, /healthz, /readyz, /config); empty disables it")
	f.BoolVar(&o.EnablePprof, "pprof", false, "serve /debug/pprof on the admin listener (standalone mode)")
	f.DurationVar(&o.PollInterval, "poll-interval", 0, "how often the configuration is checked for changes (default 1s)")
	f.StringVar(&eventsPath, "events-log", "", "file to append security events to as JSON lines (default: standard error)")
	f.DurationVar(&o.DrainTimeout, "drain-timeout", 0, "graceful shutdown deadline on SIGTERM (default 30s)")
	f.StringSliceVar(&geoDBs, "geoip-db", nil, "MaxMind DB file(s) for country and ASN matches of service policies: a (Geo)Lite2 Country or City database, optionally followed by an ASN one (the kind is read from each file)")
	f.StringVar(&geoASNDB, "geoip-asn-db", "", "MaxMind ASN database (GeoLite2-ASN) for asns matches of service policies")
	f.StringVar(&o.HTTP1Engine, "http1-engine", dataplane.DefaultHTTP1Engine(), "how HTTP/1.1 listeners, with or without TLS (not h2c or PROXY protocol ones), are served: evloop (epoll event loops that make the TLS handshakes, forward the requests of load balancers without security stages themselves and hand other connections, HTTP/2 included, to the goroutine engine; Linux only, the default there) or goroutine (a goroutine per connection)")
	f.IntVar(&gcPercent, "gc-percent", 400, "garbage-collector target percentage (Go's GOGC; the GOGC environment variable wins; 0 keeps Go's default of 100, negative disables collection)")
	return cmd
}
