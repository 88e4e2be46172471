package console

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/meridian-platform/meridian/internal/cli"
	"github.com/meridian-platform/meridian/internal/fsutil"
)

// devTokenPath keeps the dev admin token so that a restarted `meridian dev`
// can print it and rewrite the CLI context (dev only: a production console
// shows the token once and keeps only its hash).
func devTokenPath(dataDir string) string { return filepath.Join(dataDir, "admin.token") }

// NewDevCommand returns `meridian dev`: the platform on embedded defaults,
// for a first look.
func NewDevCommand(out, errOut io.Writer) *cobra.Command {
	var o Options
	var cliConfig, logLevel, demoAddr string
	var withNode bool
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run the platform on embedded defaults for a first look",
		Long: `Run a console on embedded defaults (bbolt store and generated keys under
./.meridian), print its URL and an admin token, and write a CLI context named
"dev" so that 'meridian get namespaces' works at once in another shell.

Beside the console it runs one node registered to it (site "dev-node"), a
small demo backend on 127.0.0.1:9000, and applies examples/demo.yaml: an
HTTP load balancer on port 8080 in front of the backend.`,
		Example: `  go run ./cmd/meridian dev
  # in another shell
  go run ./cmd/meridian get namespaces`,
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
			b := c.Bootstrap()
			token := b.AdminToken
			tokPath := devTokenPath(c.opts.DataDir)
			if b.Created {
				if err := fsutil.WriteFileAtomic(tokPath, []byte(token+"\n"), 0o600); err != nil {
					return fmt.Errorf("saving dev admin token: %w", err)
				}
			} else {
				data, err := os.ReadFile(tokPath)
				if errors.Is(err, os.ErrNotExist) {
					return fmt.Errorf("%s holds a console that was not started by 'meridian dev' (no %s): use 'meridian console' or another --data-dir", c.opts.DataDir, tokPath)
				}
				if err != nil {
					return fmt.Errorf("reading dev admin token: %w", err)
				}
				token = strings.TrimSpace(string(data))
			}
			tenant := b.DefaultTenant
			if tenant == "" {
				tenant = "default"
			}
			ctxt := cli.Context{Name: "dev", Server: url, CAData: string(c.CACertPEM()), Token: token,
				Tenant: tenant, ActAsTenant: true, Namespace: "default"}
			if err := cli.WriteContext(cliConfig, ctxt, true); err != nil {
				return fmt.Errorf("writing CLI context: %w", err)
			}
			serveErr := make(chan error, 1)
			go func() { serveErr <- c.Serve(ctx) }()

			demoLine := ""
			if withNode {
				if err := c.startDevNode(ctx, token, tenant, demoAddr, errOut); err != nil {
					fmt.Fprintf(errOut, "warning: %v (the console keeps running)\n", err)
				} else {
					demoLine = "  Demo app:     curl -s http://127.0.0.1:8080/api/hello   (load balancer \"demo\" on the dev node)\n" +
						"  Blocked:      curl -s -o /dev/null -w '%{http_code}\\n' 'http://127.0.0.1:8080/api/hello?q=<script>alert(1)</script>'\n"
				}
			}
			fmt.Fprintf(out, "Meridian dev is running.\n\n")
			fmt.Fprintf(out, "  API:          %s\n", url)
			fmt.Fprintf(out, "  Console CA:   %s\n", CACertPath(c.opts.DataDir))
			fmt.Fprintf(out, "  Admin token:  %s\n", token)
			fmt.Fprintf(out, "  Data:         %s\n", c.opts.DataDir)
			fmt.Fprint(out, demoLine)
			fmt.Fprintf(out, "\nThe CLI context \"dev\" is current (tenant %q, namespace \"default\"). In another shell try:\n", tenant)
			fmt.Fprintf(out, "  go run ./cmd/meridian get namespaces\n")
			fmt.Fprintf(out, "  go run ./cmd/meridian get sites -o wide\n")
			fmt.Fprintf(out, "  go run ./cmd/meridian get httploadbalancers -n demo -o wide\n")
			fmt.Fprintf(out, "  go run ./cmd/meridian apply -f examples/console/\n")
			if demoLine != "" {
				fmt.Fprintf(out, "  go run ./cmd/meridian events -n demo   (the WAF block above, with its rule ids)\n")
			}
			fmt.Fprintf(out, "  go run ./cmd/meridian audit log\n\nPress Ctrl-C to stop.\n")
			return <-serveErr
		},
	}
	cmd.Flags().StringVar(&o.DataDir, "data-dir", "./.meridian", "directory for the embedded store, keys and CA")
	cmd.Flags().StringVar(&o.Listen, "listen", "127.0.0.1:7443", "TLS listen address of the API")
	cmd.Flags().StringVar(&cliConfig, "cli-config", "", "CLI config file to write the dev context into (default: $MERIDIAN_CONFIG or the user config dir)")
	cmd.Flags().StringVar(&logLevel, "log-level", "warn", "log level: debug, info, warn, error")
	cmd.Flags().BoolVar(&withNode, "node", true, "also run a node registered to the console, a demo backend and the demo configuration")
	cmd.Flags().StringVar(&demoAddr, "demo-backend", "127.0.0.1:9000", "listen address of the demo backend (examples/demo.yaml points at 127.0.0.1:9000)")
	return cmd
}
