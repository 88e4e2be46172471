package cli

import (
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

func newConfigCommand(streams IOStreams) *cobra.Command {
	f := &factory{streams: streams}
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Manage the CLI's contexts (console, credentials, tenant, namespace)",
		Long: `Manage the contexts of the CLI config file: $` + ConfigEnv + `, else
<user config dir>/meridian/config.yaml (see --config).`,
		Example: `  meridian config get-contexts
  meridian config use-context prod
  meridian config set-context prod --namespace retail`,
	}
	f.bindConfig(cmd.PersistentFlags())
	cmd.AddCommand(
		&cobra.Command{
			Use:     "use-context NAME",
			Short:   "Make a context the current one",
			Example: `  meridian config use-context prod`,
			Args:    cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				cfg, p, err := f.loadConfig()
				if err != nil {
					return err
				}
				if _, ok := cfg.Context(args[0]); !ok {
					return fmt.Errorf("no context named %q in %s (see `meridian config get-contexts`)", args[0], p)
				}
				cfg.CurrentContext = args[0]
				if err := cfg.Save(p); err != nil {
					return err
				}
				fmt.Fprintf(streams.Out, "Switched to context %q.\n", args[0])
				return nil
			},
		},
		&cobra.Command{
			Use:     "get-contexts",
			Short:   "List the contexts (tokens are not shown)",
			Example: `  meridian config get-contexts`,
			Args:    cobra.NoArgs,
			RunE: func(cmd *cobra.Command, args []string) error {
				cfg, _, err := f.loadConfig()
				if err != nil {
					return err
				}
				tw := tabwriter.NewWriter(streams.Out, 0, 8, 3, ' ', 0)
				fmt.Fprintln(tw, "CURRENT\tNAME\tSERVER\tTENANT\tNAMESPACE")
				for _, c := range cfg.Contexts {
					cur := ""
					if c.Name == cfg.CurrentContext {
						cur = "*"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", cur, c.Name, c.Server, c.Tenant, c.Namespace)
				}
				return tw.Flush()
			},
		},
		&cobra.Command{
			Use:     "current-context",
			Short:   "Print the name of the current context",
			Example: `  meridian config current-context`,
			Args:    cobra.NoArgs,
			RunE: func(cmd *cobra.Command, args []string) error {
				cfg, p, err := f.loadConfig()
				if err != nil {
					return err
				}
				if cfg.CurrentContext == "" {
					return fmt.Errorf("no current context in %s", p)
				}
				fmt.Fprintln(streams.Out, cfg.CurrentContext)
				return nil
			},
		},
		newSetContextCommand(f),
		&cobra.Command{
			Use:     "delete-context NAME",
			Short:   "Remove a context",
			Example: `  meridian config delete-context old`,
			Args:    cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				cfg, p, err := f.loadConfig()
				if err != nil {
					return err
				}
				kept := cfg.Contexts[:0]
				found := false
				for _, c := range cfg.Contexts {
					if c.Name == args[0] {
						found = true
						continue
					}
					kept = append(kept, c)
				}
				if !found {
					return fmt.Errorf("no context named %q in %s", args[0], p)
				}
				cfg.Contexts = kept
				if cfg.CurrentContext == args[0] {
					cfg.CurrentContext = ""
				}
				if err := cfg.Save(p); err != nil {
					return err
				}
				fmt.Fprintf(streams.Out, "Deleted context %q.\n", args[0])
				return nil
			},
		},
	)
	return cmd
}

func newSetContextCommand(f *factory) *cobra.Command {
	var (
		server, caFile, token, tenant, namespace string
		actAs, current                           bool
	)
	cmd := &cobra.Command{
		Use:   "set-context NAME",
		Short: "Create a context or change some of its fields",
		Long: `Create a context, or change the fields given as flags in an existing one.
With --act-as-tenant a system-tenant admin's requests carry
X-Meridian-Tenant: <tenant>.`,
		Example: `  # A context for a console, trusting its CA, with an API token
  meridian config set-context prod --server https://console:7443 \
      --certificate-authority ca.pem --token "$TOKEN" --namespace retail --current

  # Change only the default namespace
  meridian config set-context prod --namespace payments`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, p, err := f.loadConfig()
			if err != nil {
				return err
			}
			c, _ := cfg.Context(args[0])
			c.Name = args[0]
			fl := cmd.Flags()
			if fl.Changed("server") {
				c.Server = server
			}
			if fl.Changed("certificate-authority") {
				if caFile == "" {
					c.CAData = ""
				} else {
					pem, err := os.ReadFile(caFile)
					if err != nil {
						return fmt.Errorf("reading --certificate-authority: %w", err)
					}
					c.CAData = string(pem)
				}
			}
			if fl.Changed("token") {
				c.Token = token
			}
			if fl.Changed("tenant") {
				c.Tenant = tenant
			}
			if fl.Changed("namespace") {
				c.Namespace = namespace
			}
			if fl.Changed("act-as-tenant") {
				c.ActAsTenant = actAs
			}
			cfg.Set(c)
			if current || cfg.CurrentContext == "" {
				cfg.CurrentContext = c.Name
			}
			if err := cfg.Save(p); err != nil {
				return err
			}
			fmt.Fprintf(f.streams.Out, "Context %q set.\n", c.Name)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&server, "server", "", "console URL")
	fl.StringVar(&caFile, "certificate-authority", "", "PEM file of the console CA (empty: system roots)")
	fl.StringVar(&token, "token", "", "API or session token")
	fl.StringVar(&tenant, "tenant", "", "tenant")
	fl.StringVarP(&namespace, "namespace", "n", "", "default namespace")
	fl.BoolVar(&actAs, "act-as-tenant", false, "send X-Meridian-Tenant: <tenant> (system admins acting in a tenant)")
	fl.BoolVar(&current, "current", false, "make it the current context")
	return cmd
}
