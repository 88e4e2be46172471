package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"sigs.k8s.io/yaml"

	"github.com/meridian-platform/meridian/internal/fsutil"
)

// ConfigEnv overrides the path of the CLI configuration file.
const ConfigEnv = "MERIDIAN_CONFIG"

// Context is one console the CLI can talk to, with the credentials and
// defaults to use there.
type Context struct {
	Name string `json:"name"`
	// Server is the console's URL, e.g. https://127.0.0.1:7443.
	Server string `json:"server"`
	// CAData is the PEM of the console CA the CLI trusts for Server.
	CAData string `json:"caData,omitempty"`
	// Token is an API token or a session token from `meridian login`.
	Token string `json:"token,omitempty"`
	// Tenant is the tenant logged into (and, for system admins acting in
	// another tenant, sent as X-Meridian-Tenant when ActAs is set).
	Tenant string `json:"tenant,omitempty"`
	// ActAsTenant makes a system-tenant admin act inside Tenant.
	ActAsTenant bool `json:"actAsTenant,omitempty"`
	// Namespace is the default for -n.
	Namespace string `json:"namespace,omitempty"`
}

// Config is the CLI configuration file.
type Config struct {
	CurrentContext string    `json:"current-context,omitempty"`
	Contexts       []Context `json:"contexts,omitempty"`
}

// DefaultConfigPath is $MERIDIAN_CONFIG, else <user config dir>/meridian/config.yaml.
func DefaultConfigPath() (string, error) {
	if p := os.Getenv(ConfigEnv); p != "" {
		return p, nil
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("finding the user config directory (set %s): %w", ConfigEnv, err)
	}
	return filepath.Join(dir, "meridian", "config.yaml"), nil
}

// LoadConfig reads the configuration at path; a missing file is an empty
// configuration.
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &Config{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading CLI config: %w", err)
	}
	cfg := &Config{}
	if err := yaml.UnmarshalStrict(data, cfg); err != nil {
		return nil, fmt.Errorf("reading CLI config %s: %w", path, err)
	}
	return cfg, nil
}

// Save writes the configuration to path (mode 0600: it holds tokens),
// atomically.
func (c *Config) Save(path string) error {
	sort.SliceStable(c.Contexts, func(i, j int) bool { return c.Contexts[i].Name < c.Contexts[j].Name })
	data, err := yaml.Marshal(c)
	if err != nil {
		return fmt.Errorf("encoding CLI config: %w", err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("writing CLI config: %w", err)
	}
	if err := fsutil.WriteFileAtomic(path, data, 0o600); err != nil {
		return fmt.Errorf("writing CLI config: %w", err)
	}
	return nil
}

// Context returns the context called name.
func (c *Config) Context(name string) (Context, bool) {
	for _, x := range c.Contexts {
		if x.Name == name {
			return x, true
		}
	}
	return Context{}, false
}

// Current returns the current context.
func (c *Config) Current() (Context, bool) {
	if c.CurrentContext == "" {
		return Context{}, false
	}
	return c.Context(c.CurrentContext)
}

// Set adds or replaces the context with ctx's name.
func (c *Config) Set(ctx Context) {
	for i := range c.Contexts {
		if c.Contexts[i].Name == ctx.Name {
			c.Contexts[i] = ctx
			return
		}
	}
	c.Contexts = append(c.Contexts, ctx)
}

// WriteContext adds or replaces ctx in the configuration file at path
// (DefaultConfigPath when empty), making it the current context when
// makeCurrent is set. `meridian dev` uses it to hand its console to the CLI.
func WriteContext(path string, ctx Context, makeCurrent bool) error {
	if ctx.Name == "" {
		return errors.New("writing CLI context: the context has no name")
	}
	if path == "" {
		p, err := DefaultConfigPath()
		if err != nil {
			return err
		}
		path = p
	}
	cfg, err := LoadConfig(path)
	if err != nil {
		return err
	}
	cfg.Set(ctx)
	if makeCurrent || cfg.CurrentContext == "" {
		cfg.CurrentContext = ctx.Name
	}
	return cfg.Save(path)
}
