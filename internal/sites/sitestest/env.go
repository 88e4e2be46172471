package sitestest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/client"
	"github.com/meridian-platform/meridian/internal/console"
	"github.com/meridian-platform/meridian/internal/distrib"
	"github.com/meridian-platform/meridian/internal/sites"
)

// Env is a running console on a loopback port.
type Env struct {
	Console *console.Console
	URL     string
	CA      []byte
	DataDir string
	// Token is the system admin's bearer token; Tenant the default tenant.
	Token  string
	Tenant string
	stop   func()
	// configure adjusts the console options (StartWith).
	configure func(*console.Options)
}

// Start runs a console (bbolt, TLS, CA) until the test ends.
func Start(t testing.TB) *Env {
	t.Helper()
	return StartWith(t, nil)
}

// StartWith is Start with console options adjusted by configure (kept
// for Restart).
func StartWith(t testing.TB, configure func(*console.Options)) *Env {
	t.Helper()
	e := &Env{DataDir: filepath.Join(t.TempDir(), "console"), configure: configure}
	e.start(t, "")
	t.Cleanup(e.Stop)
	return e
}

func (e *Env) start(t testing.TB, listen string) {
	t.Helper()
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	ctx, cancel := context.WithCancel(context.Background())
	opts := console.Options{DataDir: e.DataDir, Listen: listen, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if e.configure != nil {
		e.configure(&opts)
	}
	c, err := console.New(ctx, opts)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	url, err := c.Listen()
	if err != nil {
		cancel()
		c.Close()
		t.Fatal(err)
	}
	if b := c.Bootstrap(); b.Created {
		e.Token, e.Tenant = b.AdminToken, b.DefaultTenant
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Serve(ctx)
	}()
	e.Console, e.URL, e.CA = c, url, c.CACertPEM()
	e.stop = func() {
		cancel()
		<-done
		c.Close()
	}
	select {
	case <-c.Distributor().Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("distribution did not load")
	}
}

// Stop stops the console (idempotent).
func (e *Env) Stop() {
	if e.stop != nil {
		e.stop()
		e.stop = nil
	}
}

// Restart starts the console again on the same address and data.
func (e *Env) Restart(t testing.TB) {
	t.Helper()
	e.Stop()
	e.start(t, e.URL[len("https://"):])
}

// Client returns an admin client acting in tenant ("" = default tenant).
func (e *Env) Client(t testing.TB, tenant string) *client.Client {
	t.Helper()
	if tenant == "" {
		tenant = e.Tenant
	}
	c, err := client.New(client.Config{Server: e.URL, Token: e.Token, CAData: e.CA, Tenant: tenant})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// CreateTenant creates a tenant (as system admin).
func (e *Env) CreateTenant(t testing.TB, name string) {
	t.Helper()
	c, err := client.New(client.Config{Server: e.URL, Token: e.Token, CAData: e.CA})
	if err != nil {
		t.Fatal(err)
	}
	tn := &v1.Tenant{}
	tn.APIVersion, tn.Kind, tn.Metadata.Name = v1.APIVersion, "Tenant", name
	if err := c.Create(context.Background(), tn); err != nil {
		t.Fatalf("creating tenant %q: %v", name, err)
	}
}

// CreateToken creates a SiteToken in tenant and returns its plaintext.
func (e *Env) CreateToken(t testing.TB, tenant, name string, spec v1.SiteTokenSpec) string {
	t.Helper()
	tok := &v1.SiteToken{Spec: spec}
	tok.APIVersion, tok.Kind, tok.Metadata.Name = v1.APIVersion, "SiteToken", name
	if err := e.Client(t, tenant).Create(context.Background(), tok); err != nil {
		t.Fatalf("creating site token %q: %v", name, err)
	}
	if tok.Status.Token == "" {
		t.Fatal("site token created without its plaintext")
	}
	return tok.Status.Token
}

// Apply creates each object in tenant.
func (e *Env) Apply(t testing.TB, tenant string, objs ...v1.Object) {
	t.Helper()
	c := e.Client(t, tenant)
	for _, o := range objs {
		if err := c.Create(context.Background(), o); err != nil {
			t.Fatalf("creating %s %q: %v", o.GetTypeMeta().Kind, o.GetMetadata().Name, err)
		}
	}
}

// MustDecode decodes YAML/JSON objects.
func MustDecode(t testing.TB, doc string) []v1.Object {
	t.Helper()
	objs, err := v1.DecodeAll([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

// Dial returns a gRPC connection to the console's sync service, as a
// node with cert (nil: none) that trusts the console CA.
func (e *Env) Dial(t testing.TB, cert *tls.Certificate) *grpc.ClientConn {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(e.CA)
	cfg := &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	conn, err := grpc.NewClient(strings.TrimPrefix(e.URL, "https://"), grpc.WithTransportCredentials(credentials.NewTLS(cfg)),
		grpc.WithDefaultCallOptions(grpc.ForceCodec(distrib.Codec{})))
	if err != nil {
		t.Fatal(err)
	}
	return conn
}

// Renew calls the sync service's Renew method with cert (nil: none) and
// returns the new identity or the gRPC error.
func (e *Env) Renew(t testing.TB, cert *tls.Certificate, req sites.RenewRequest) (*sites.Identity, error) {
	t.Helper()
	conn := e.Dial(t, cert)
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out sites.Identity
	if err := conn.Invoke(ctx, distrib.RenewMethod, &req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
