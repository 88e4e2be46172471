package console

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"time"

	"github.com/meridian-platform/meridian/internal/apiserver"
	"github.com/meridian-platform/meridian/internal/audit"
	"github.com/meridian-platform/meridian/internal/auth"
	"github.com/meridian-platform/meridian/internal/secevents"
)

// maxDenialBuckets bounds the memory of the denied-request aggregator.
const maxDenialBuckets = 10000

// newAPIServer builds the REST API over the console's store, keyring and
// audit log.
func newAPIServer(_ context.Context, c *Console) (*apiserver.Server, error) {
	c.audit = audit.New(c.st, c.keyring, audit.Options{})
	c.denials = audit.NewDenials(maxDenialBuckets, auth.SystemTenant)
	api, err := apiserver.New(apiserver.Options{
		Store:   c.st,
		Secrets: c.keyring,
		Keys:    c.keyring,
		Audit:   c.audit,
		Denials: c.denials,
		Logger:  c.log,
	})
	if err != nil {
		return nil, fmt.Errorf("building the API server: %w", err)
	}
	c.events = NewEventStore(filepath.Join(c.opts.DataDir, "events"), secevents.StoreOptions{}, c.log)
	api.SetSecurityEvents(c.events)
	return api, nil
}

// routes is the console's HTTP surface: the REST API (and /healthz).
func (c *Console) routes() http.Handler {
	return c.siteRoutes(c.api)
}

// runBackground runs the console's periodic work until ctx ends: denied
// requests written as aggregated audit records, data keys rotated by
// another console picked up, and audit checkpoints.
func (c *Console) runBackground(ctx context.Context) {
	logErr := func(what string) func(error) {
		return func(err error) { c.log.Warn(what, "err", err) }
	}
	go c.denials.Run(ctx, c.audit, 10*time.Second, logErr("writing denied-request audit records"))
	go c.keyring.WatchAndReload(ctx, logErr("reloading data keys"))
	go c.events.Run(ctx)
	c.runSites(ctx)
}
