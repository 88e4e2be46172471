package console

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
)

// bindOptions adds the flags every console verb shares.
func bindOptions(cmd *cobra.Command, o *Options, defaultDataDir string) {
	f := cmd.Flags()
	f.StringVar(&o.DataDir, "data-dir", defaultDataDir, "directory for the embedded store, the generated master key and the console CA certificate")
	f.StringVar(&o.Store, "store", StoreBolt, "store backend: bolt (embedded file) or etcd")
	f.StringSliceVar(&o.EtcdEndpoints, "etcd-endpoints", nil, "etcd client URLs (with --store etcd), comma-separated")
	f.StringVar(&o.EtcdPrefix, "etcd-prefix", "/meridian", "key prefix of this installation in etcd")
	f.StringVar(&o.MasterKeyFile, "master-key-file", "", "file holding the base64 master key (required with --store etcd, or set $"+MasterKeyEnv+")")
}

// NewCommand returns `meridian console` and its maintenance verbs.
func NewCommand(out, errOut io.Writer) *cobra.Command {
	var o Options
	var logLevel string
	cmd := &cobra.Command{
		Use:   "console",
		Short: "Run the control plane (REST API, store, RBAC, audit, CA)",
		Long: `Run the Meridian console: the multi-tenant control plane.

The API is served over TLS only. On first start the console generates its CA
(written to DATA_DIR/ca.crt for clients) and prints a bootstrap admin token
of the system tenant; use it with ` + "`meridian login`" + `.`,
		Example: `  # embedded store (bbolt) in ./data, API on 127.0.0.1:7443
  meridian console --data-dir ./data --listen 127.0.0.1:7443

  # then, in another shell
  meridian login --server https://127.0.0.1:7443 --certificate-authority ./data/ca.crt --token TOKEN

  # two replicas sharing an etcd cluster and one master key
  meridian console --data-dir ./c1 --listen 127.0.0.1:7443 --store etcd \
      --etcd-endpoints http://127.0.0.1:2379 --master-key-file ./master.key`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Logger = newLogger(errOut, logLevel)
			ctx, stop := runCtx(cmd)
			defer stop()
			c, err := New(ctx, o)
			if err != nil {
				return err
			}
			defer c.Close()
			url, err := c.Listen()
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "Meridian console listening on %s\n", url)
			fmt.Fprintf(out, "Console CA certificate: %s\n", CACertPath(c.opts.DataDir))
			if b := c.Bootstrap(); b.Created {
				fmt.Fprintf(out, "\nFirst start: created tenant %q and the system admin.\n", b.DefaultTenant)
				fmt.Fprintf(out, "Admin token (shown once, keep it safe):\n  %s\n\n", b.AdminToken)
				fmt.Fprintf(out, "Log in with:\n  meridian login --server %s --certificate-authority %s --token %s --tenant %s\n",
					url, CACertPath(c.opts.DataDir), b.AdminToken, b.DefaultTenant)
			}
			return c.Serve(ctx)
		},
	}
	bindOptions(cmd, &o, "./.meridian")
	cmd.Flags().StringVar(&o.Listen, "listen", "127.0.0.1:7443", "TLS listen address of the API")
	cmd.Flags().StringSliceVar(&o.Hosts, "host", nil, "extra DNS names or IPs for the serving certificate")
	cmd.Flags().StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn, error")
	cmd.AddCommand(newBackupCommand(out), newRestoreCommand(out), newRotateKeyCommand(out))
	return cmd
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	switch strings.ToLower(level) {
	case "debug":
		l = slog.LevelDebug
	case "warn":
		l = slog.LevelWarn
	case "error":
		l = slog.LevelError
	default:
		l = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l}))
}

// runCtx is the command's context, cancelled on SIGINT/SIGTERM.
func runCtx(cmd *cobra.Command) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
}
