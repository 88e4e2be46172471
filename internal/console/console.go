package console

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/meridian-platform/meridian/internal/apiserver"
	"github.com/meridian-platform/meridian/internal/audit"
	"github.com/meridian-platform/meridian/internal/fsutil"
	"github.com/meridian-platform/meridian/internal/pki"
	"github.com/meridian-platform/meridian/internal/store"
)

// Console is an assembled control plane: open with New, run with Serve,
// release with Close.
type Console struct {
	opts    Options
	log     *slog.Logger
	st      store.Store
	keyring *pki.Keyring
	ca      *pki.CA
	api     *apiserver.Server
	boot    apiserver.BootstrapResult
	audit   *audit.Log
	denials *audit.Denials
	ln      net.Listener
	handler http.Handler
	sites   *siteParts
	events  *EventStore
}

// New opens the store, loads the master key, the data keys and the CA
// (creating them on first start), builds the REST API and bootstraps the
// system tenant and admin on first start. It does not listen yet.
func New(ctx context.Context, opts Options) (*Console, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(opts.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating data directory: %w", err)
	}
	c := &Console{opts: opts, log: opts.Logger}
	if err := c.open(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func (c *Console) open(ctx context.Context) error {
	opts := c.opts
	master, masterID, err := loadMasterKey(opts)
	if err != nil {
		return err
	}
	if c.st, err = openStore(ctx, opts); err != nil {
		return err
	}
	if c.keyring, err = pki.NewKeyring(ctx, c.st, master, masterID); err != nil {
		return fmt.Errorf("loading data keys: %w", err)
	}
	if c.ca, err = pki.LoadOrCreateCA(ctx, c.st, c.keyring, "console"); err != nil {
		return fmt.Errorf("loading console CA: %w", err)
	}
	if err := fsutil.WriteFileAtomic(CACertPath(opts.DataDir), c.ca.CACertPEM(), 0o644); err != nil {
		return fmt.Errorf("writing console CA certificate: %w", err)
	}
	if c.api, err = newAPIServer(ctx, c); err != nil {
		return err
	}
	if c.boot, err = c.api.Bootstrap(ctx, apiserver.BootstrapOptions{AdminPassword: opts.AdminPassword}); err != nil {
		return err
	}
	if err := c.newSiteParts(ctx); err != nil {
		return err
	}
	c.handler = c.routes()
	return nil
}

func loadMasterKey(opts Options) ([]byte, string, error) {
	if opts.Store == StoreEtcd {
		// Replicas must share one key: never generate one silently.
		key, id, err := pki.LoadMasterKey(opts.MasterKeyFile, MasterKeyEnv)
		if err != nil {
			return nil, "", fmt.Errorf("--store etcd needs --master-key-file or $%s (the same key on every console): %w", MasterKeyEnv, err)
		}
		return key, id, nil
	}
	if opts.MasterKeyFile != "" {
		return pki.LoadMasterKey(opts.MasterKeyFile, MasterKeyEnv)
	}
	return pki.LoadOrGenerateMasterKey(MasterKeyPath(opts.DataDir), MasterKeyEnv)
}

// Bootstrap returns what the first start created (the admin token is only
// known on that start).
func (c *Console) Bootstrap() apiserver.BootstrapResult { return c.boot }

// CACertPEM returns the console CA certificate clients should trust.
func (c *Console) CACertPEM() []byte { return c.ca.CACertPEM() }

// Handler returns the console's HTTP handler (for in-process tests).
func (c *Console) Handler() http.Handler { return c.handler }

// Routes lists every method and path the console's REST API answers,
// subresources included (the OpenAPI document must describe them all).
func (c *Console) Routes() []apiserver.Route { return c.api.Routes() }

// Store returns the console's store (for backup and tools).
func (c *Console) Store() store.Store { return c.st }

// Listen binds the TLS listener on Options.Listen and returns the API URL.
func (c *Console) Listen() (string, error) {
	ln, err := net.Listen("tcp", c.opts.Listen)
	if err != nil {
		return "", fmt.Errorf("listening on %s: %w", c.opts.Listen, err)
	}
	c.ln = ln
	return c.URL(), nil
}

// URL is the API URL once listening.
func (c *Console) URL() string {
	if c.ln == nil {
		return "https://" + c.opts.Listen
	}
	return "https://" + c.ln.Addr().String()
}

// Serve serves the API over TLS until ctx ends, then shuts down gracefully.
func (c *Console) Serve(ctx context.Context) error {
	if c.ln == nil {
		if _, err := c.Listen(); err != nil {
			return err
		}
	}
	cfg, err := c.serverTLS()
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           c.handler,
		TLSConfig:         cfg,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(c.log.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	bgCtx, stopBG := context.WithCancel(ctx)
	defer stopBG()
	c.runBackground(bgCtx)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(c.serveSites(bgCtx, tls.NewListener(c.ln, cfg))) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serving API: %w", err)
	case <-ctx.Done():
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		srv.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serving API: %w", err)
	}
	return nil
}

// serverTLS issues the serving certificate for the listen host, localhost
// and 127.0.0.1 (plus Options.Hosts) from the console CA, renewed in the
// background well before it expires.
func (c *Console) serverTLS() (*tls.Config, error) {
	hosts := []string{"localhost", "127.0.0.1", "::1"}
	if h, _, err := net.SplitHostPort(c.opts.Listen); err == nil && h != "" && h != "0.0.0.0" && h != "::" {
		hosts = append(hosts, h)
	}
	hosts = append(hosts, c.opts.Hosts...)
	if hn, err := os.Hostname(); err == nil && hn != "" {
		hosts = append(hosts, hn)
	}
	rot := &certRotator{issue: func() (*tls.Certificate, time.Time, error) {
		ic, err := c.ca.IssueServerCert(hosts, 30*24*time.Hour)
		if err != nil {
			return nil, time.Time{}, fmt.Errorf("issuing console serving certificate: %w", err)
		}
		tc, err := ic.TLSCertificate()
		if err != nil {
			return nil, time.Time{}, err
		}
		return &tc, ic.Leaf.NotAfter, nil
	}}
	if _, err := rot.get(); err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"h2", "http/1.1"},
		// Sites present their client certificate; it is verified (with
		// clock skew and re-enrolment grace) by the site registry.
		ClientAuth:     tls.RequestClientCert,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return rot.get() },
	}, nil
}

// Close releases the store.
func (c *Console) Close() error {
	if c.ln != nil {
		c.ln.Close()
	}
	if c.st != nil {
		return c.st.Close()
	}
	return nil
}
