package cli

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/meridian-platform/meridian/client"
)

func newLoginCommand(streams IOStreams) *cobra.Command {
	f := &factory{streams: streams}
	var (
		server, caFile, tenant, username, token, namespace string
		passwordStdin                                      bool
	)
	cmd := &cobra.Command{
		Use:   "login",
		Short: "Log in to a console and store the session in a context",
		Long: `Log in to a console with a local user's password (asked for without echo,
or read from standard input with --password-stdin), or check and store an
API token with --token. The session token, the server, its CA and the tenant
are stored in a context of the CLI config file, which becomes the current one.

Without --server the current context's console (and CA) is used. The
context written is --context if given; else, for a password login,
"<tenant>-<username>"; else, for a token, the current context when it is
for the same server, or one named after the server's host.`,
		Example: `  # Log in as a local user (the password is prompted for)
  meridian login --server https://console.example.com:7443 --tenant acme --username alice \
      --certificate-authority console-ca.pem

  # Non-interactive
  echo "$PASSWORD" | meridian login --tenant acme --username alice --password-stdin

  # Store an API token instead
  meridian login --server https://127.0.0.1:7443 --token "$MERIDIAN_TOKEN"`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := signalContext(cmd)
			defer cancel()
			cfg, path, err := f.loadConfig()
			if err != nil {
				return err
			}
			var base Context
			cur, hasCur := cfg.Current()
			switch {
			case f.contextName != "":
				if c, ok := cfg.Context(f.contextName); ok {
					base = c
				} else if hasCur && (server == "" || sameServer(server, cur.Server)) {
					// A new context for the current console.
					base = Context{Server: cur.Server, CAData: cur.CAData, Namespace: cur.Namespace}
				}
				base.Name = f.contextName
			case hasCur && (server == "" || sameServer(server, cur.Server)):
				base = cur
			}
			if server != "" {
				if !sameServer(server, base.Server) {
					base.CAData = ""
				}
				base.Server = server
			}
			if base.Server == "" {
				return errors.New("--server is required (no current context to log in to)")
			}
			if f.contextName == "" && token == "" && username != "" {
				t := tenant
				if t == "" {
					t = base.Tenant
				}
				if t != "" {
					name := t + "-" + username
					if existing, ok := cfg.Context(name); ok && sameServer(existing.Server, base.Server) {
						existing.CAData = firstNonEmpty(base.CAData, existing.CAData)
						base = existing
					}
					base.Name = name
				}
			}
			if base.Name == "" {
				base.Name = contextNameFor(base.Server)
			}
			if caFile != "" {
				pem, err := os.ReadFile(caFile)
				if err != nil {
					return fmt.Errorf("reading --certificate-authority: %w", err)
				}
				base.CAData = string(pem)
			}
			if namespace != "" {
				base.Namespace = namespace
			}
			if token != "" {
				base.Token = token
				c, err := clientFor(Context{Server: base.Server, CAData: base.CAData, Token: token})
				if err != nil {
					return err
				}
				who, err := c.WhoAmI(ctx)
				if err != nil {
					return fmt.Errorf("checking the token: %w", err)
				}
				base.Tenant = who.Tenant
				base.ActAsTenant = false
				if tenant != "" && tenant != who.Tenant {
					// A system admin's token acting inside another tenant.
					base.Tenant, base.ActAsTenant = tenant, true
				}
				if err := saveContext(cfg, path, base); err != nil {
					return err
				}
				fmt.Fprintf(streams.Out, "Logged in to %s as %s %q of tenant %q (context %q).\n", base.Server, who.Kind, who.Name, who.Tenant, base.Name)
				return nil
			}
			if tenant == "" {
				tenant = base.Tenant
			}
			if tenant == "" || username == "" {
				return errors.New("give --tenant and --username (or --token)")
			}
			pw, err := readPassword(streams.In, streams.ErrOut, passwordStdin)
			if err != nil {
				return err
			}
			c, err := clientFor(Context{Server: base.Server, CAData: base.CAData})
			if err != nil {
				return err
			}
			res, err := c.Login(ctx, client.LoginRequest{Tenant: tenant, Username: username, Password: pw})
			if err != nil {
				return err
			}
			base.Token, base.Tenant, base.ActAsTenant = res.Token, tenant, false
			if err := saveContext(cfg, path, base); err != nil {
				return err
			}
			exp := ""
			if !res.ExpiresAt.IsZero() {
				exp = "; the session expires " + res.ExpiresAt.Local().Format("2006-01-02 15:04 MST")
			}
			fmt.Fprintf(streams.Out, "Logged in to %s as %q of tenant %q (context %q%s).\n", base.Server, username, tenant, base.Name, exp)
			return nil
		},
	}
	fl := cmd.Flags()
	f.bindConfig(fl)
	fl.StringVar(&f.contextName, "context", "", "name of the context to write (default: the current one, or one named after the server)")
	fl.StringVar(&server, "server", "", "console URL, e.g. https://127.0.0.1:7443 (default: the current context's)")
	fl.StringVar(&caFile, "certificate-authority", "", "PEM file of the console CA to trust")
	fl.StringVar(&tenant, "tenant", "", "tenant of the user")
	fl.StringVarP(&username, "username", "u", "", "local user name")
	fl.BoolVar(&passwordStdin, "password-stdin", false, "read the password from the first line of standard input")
	fl.StringVar(&token, "token", "", "store this API token instead of logging in with a password")
	fl.StringVarP(&namespace, "namespace", "n", "", "default namespace of the context")
	return cmd
}

func saveContext(cfg *Config, path string, ctx Context) error {
	cfg.Set(ctx)
	cfg.CurrentContext = ctx.Name
	return cfg.Save(path)
}

func sameServer(a, b string) bool {
	return strings.TrimRight(a, "/") == strings.TrimRight(b, "/")
}

// contextNameFor names a context after its server's host ("127.0.0.1-7443").
func contextNameFor(server string) string {
	u, err := url.Parse(server)
	if err != nil || u.Host == "" {
		return "default"
	}
	return strings.NewReplacer(":", "-", "[", "", "]", "").Replace(u.Host)
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
