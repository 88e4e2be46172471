package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/client"
)

// defaultNamespace is used when neither -n nor the context names one.
const defaultNamespace = "default"

// factory holds the connection flags of one verb and builds clients from
// them and the CLI config file.
type factory struct {
	streams IOStreams

	configPath  string
	contextName string
	server      string
	token       string
	tenant      string
	caFile      string
	namespace   string
}

// bindPersistent adds the connection flags to cmd (and its sub-commands).
func (f *factory) bindPersistent(cmd *cobra.Command, withNamespace bool) {
	fs := cmd.PersistentFlags()
	f.bindConfig(fs)
	fs.StringVar(&f.contextName, "context", "", "context to use (default: the current context)")
	fs.StringVar(&f.server, "server", "", "console URL (overrides the context)")
	fs.StringVar(&f.token, "token", "", "bearer token (overrides the context)")
	fs.StringVar(&f.tenant, "tenant", "", "act inside this tenant (system admins; sends X-Meridian-Tenant)")
	fs.StringVar(&f.caFile, "certificate-authority", "", "PEM file of the console CA (overrides the context)")
	if withNamespace {
		fs.StringVarP(&f.namespace, "namespace", "n", "", `namespace (default: the context's namespace, else "default")`)
	}
}

func (f *factory) bindConfig(fs *pflag.FlagSet) {
	fs.StringVar(&f.configPath, "config", "", "CLI config file (default: $"+ConfigEnv+", else <user config dir>/meridian/config.yaml)")
}

// path returns the CLI config file in use.
func (f *factory) path() (string, error) {
	if f.configPath != "" {
		return f.configPath, nil
	}
	return DefaultConfigPath()
}

func (f *factory) loadConfig() (*Config, string, error) {
	p, err := f.path()
	if err != nil {
		return nil, "", err
	}
	cfg, err := LoadConfig(p)
	if err != nil {
		return nil, "", err
	}
	return cfg, p, nil
}

// currentContext resolves the context with the flags applied on top.
func (f *factory) currentContext() (Context, error) {
	cfg, p, err := f.loadConfig()
	if err != nil {
		return Context{}, err
	}
	var ctx Context
	switch {
	case f.contextName != "":
		c, ok := cfg.Context(f.contextName)
		if !ok {
			return Context{}, fmt.Errorf("context %q not found in %s", f.contextName, p)
		}
		ctx = c
	default:
		if c, ok := cfg.Current(); ok {
			ctx = c
		} else if cfg.CurrentContext != "" {
			return Context{}, fmt.Errorf("current context %q not found in %s", cfg.CurrentContext, p)
		}
	}
	if f.server != "" {
		if !sameServer(f.server, ctx.Server) {
			// Another console (say a replica or a restored copy): keep the
			// credentials, as kubectl does, but trust its CA only when
			// given with --certificate-authority.
			ctx.CAData = ""
		}
		ctx.Server = f.server
	}
	if f.token != "" {
		ctx.Token = f.token
	}
	if f.tenant != "" {
		ctx.Tenant = f.tenant
		ctx.ActAsTenant = true
	}
	if f.caFile != "" {
		b, err := os.ReadFile(f.caFile)
		if err != nil {
			return Context{}, fmt.Errorf("reading --certificate-authority: %w", err)
		}
		ctx.CAData = string(b)
	}
	if ctx.Server == "" {
		return Context{}, fmt.Errorf("no console to talk to: run `meridian login --server URL ...`, `meridian config use-context NAME`, or pass --server (config file: %s)", p)
	}
	return ctx, nil
}

// client returns a client for the resolved context.
func (f *factory) client() (*client.Client, Context, error) {
	ctx, err := f.currentContext()
	if err != nil {
		return nil, Context{}, err
	}
	c, err := clientFor(ctx)
	return c, ctx, err
}

// NewClient returns an API client for a CLI context (server, CA, token,
// and X-Meridian-Tenant when ActAsTenant is set), for tools and tests.
func NewClient(ctx Context) (*client.Client, error) { return clientFor(ctx) }

func clientFor(ctx Context) (*client.Client, error) {
	cfg := client.Config{Server: ctx.Server, Token: ctx.Token, CAData: []byte(ctx.CAData), UserAgent: "meridian-cli"}
	if ctx.ActAsTenant {
		cfg.Tenant = ctx.Tenant
	}
	return client.New(cfg)
}

// nsFor returns the namespace a request about kind ki uses: f.ns for
// namespaced kinds, "" for tenant-scoped and system kinds.
func (f *factory) nsFor(ki v1.KindInfo, cctx Context) string {
	if ki.Scope != v1.ScopeNamespaced {
		return ""
	}
	return f.ns(cctx)
}

// ns returns the namespace to use: -n, else the context's, else "default".
func (f *factory) ns(ctx Context) string {
	if f.namespace != "" {
		return f.namespace
	}
	if ctx.Namespace != "" {
		return ctx.Namespace
	}
	return defaultNamespace
}

// signalContext returns cmd's context, cancelled on SIGINT.
func signalContext(cmd *cobra.Command) (context.Context, context.CancelFunc) {
	parent := cmd.Context()
	if parent == nil {
		parent = context.Background()
	}
	return signal.NotifyContext(parent, os.Interrupt)
}

// resolveKind turns a kind argument (Kind, plural, singular or short name,
// any case) into the registry entry.
func resolveKind(name string) (v1.KindInfo, error) {
	if ki, ok := v1.LookupKind(name); ok {
		return ki, nil
	}
	return v1.KindInfo{}, fmt.Errorf("unknown kind %q (`meridian api-resources` lists the kinds)", name)
}

// splitKindName accepts "KIND NAME..." and "KIND/NAME ..." forms.
func splitKindName(args []string) (string, []string, error) {
	if len(args) == 0 {
		return "", nil, errors.New("a kind is required (`meridian api-resources` lists the kinds)")
	}
	if k, n, ok := strings.Cut(args[0], "/"); ok {
		names := []string{n}
		for _, a := range args[1:] {
			k2, n2, ok := strings.Cut(a, "/")
			if !ok || !strings.EqualFold(k2, k) {
				return "", nil, fmt.Errorf("mixing KIND/NAME and other arguments is not supported: %q", a)
			}
			names = append(names, n2)
		}
		return k, names, nil
	}
	return args[0], args[1:], nil
}

// displayName is how the CLI names an object: "originpool/shop".
func displayName(ki v1.KindInfo, name string) string {
	return ki.Singular + "/" + name
}

// kindInfoFor resolves the kind of an object, falling back to a guess for
// kinds this build does not know.
func kindInfoFor(kind string) v1.KindInfo {
	if ki, ok := v1.LookupKind(kind); ok {
		return ki
	}
	low := strings.ToLower(kind)
	res := client.ResourceFor(kind, "")
	return v1.KindInfo{Kind: kind, Plural: res.Plural, Singular: low}
}
