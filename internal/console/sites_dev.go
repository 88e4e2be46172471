package console

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"time"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/client"
	"github.com/meridian-platform/meridian/internal/node"
	"github.com/meridian-platform/meridian/internal/node/agent"
)

// DevNodeOptions configure the node `meridian dev` runs beside its console.
type DevNodeOptions struct {
	// AdminToken is a system admin's bearer token (the bootstrap token).
	AdminToken string
	// Tenant owns the node's site (default: the default tenant).
	Tenant string
	// Name is the site name (default "dev-node").
	Name string
	// DataDir keeps the node's identity and last-known-good snapshot
	// (default DATA_DIR/node).
	DataDir string
	// AdminListen is the node's admin listener ("" disables it).
	AdminListen string
	AccessLog   io.Writer
	Logger      *slog.Logger
	// Security is the node's security stack (stages, metrics, events);
	// nil runs the node without one. Its events also go to the console,
	// as with `meridian node --console`.
	Security *node.Security
}

// RunDevNode runs a node registered to this console until ctx ends. On
// its first start it creates an auto-approving SiteToken (labels
// meridian.dev/node=true) in the tenant and registers with it; later
// starts reuse the identity in DataDir. Call it once the console listens
// (Listen) and while it serves.
func (c *Console) RunDevNode(ctx context.Context, o DevNodeOptions) error {
	if o.Tenant == "" {
		o.Tenant = "default"
	}
	if o.Name == "" {
		o.Name = "dev-node"
	}
	if o.DataDir == "" {
		o.DataDir = filepath.Join(c.opts.DataDir, "node")
	}
	if o.Logger == nil {
		o.Logger = c.log
	}
	token := ""
	if !agent.Registered(o.DataDir) {
		cl, err := client.New(client.Config{Server: c.URL(), Token: o.AdminToken, CAData: c.CACertPEM(), Tenant: o.Tenant})
		if err != nil {
			return fmt.Errorf("dev node: %w", err)
		}
		var b [4]byte
		rand.Read(b[:])
		tok := &v1.SiteToken{Spec: v1.SiteTokenSpec{MaxUses: 1, AutoApprove: true, Expires: v1.Duration{Duration: time.Hour},
			Labels: map[string]string{"meridian.dev/node": "true"}}}
		tok.APIVersion, tok.Kind, tok.Metadata.Name = v1.APIVersion, "SiteToken", "dev-node-"+hex.EncodeToString(b[:])
		var lastErr error
		for attempt := 0; attempt < 50; attempt++ {
			if lastErr = cl.Create(ctx, tok); lastErr == nil {
				break
			}
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(100 * time.Millisecond): // the console may still be starting
			}
		}
		if lastErr != nil {
			return fmt.Errorf("dev node: creating its site token: %w", lastErr)
		}
		token = tok.Status.Token
	}
	no := agent.NodeOptions{Console: c.URL(), Token: token, Name: o.Name, DataDir: o.DataDir,
		CAData: c.CACertPEM(), NodeVersion: "dev", AdminListen: o.AdminListen, DrainTimeout: 5 * time.Second,
		AccessLog: o.AccessLog, Logger: o.Logger}
	if sec := o.Security; sec != nil {
		no.Stages, no.Collectors, no.SecurityEvents = sec.Stages, sec.Collectors, sec.Events()
		no.Compile, no.OnAgent = sec.CompileOptions(), sec.ForwardToAgent
	}
	return agent.RunNode(ctx, no)
}
