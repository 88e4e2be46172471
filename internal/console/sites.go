package console

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"time"

	"google.golang.org/grpc"

	"github.com/meridian-platform/meridian/internal/distrib"
	"github.com/meridian-platform/meridian/internal/pki"
	"github.com/meridian-platform/meridian/internal/sites"
)

// siteParts are the site registry (registration, certificate renewal) and
// configuration distribution (the sync stream).
type siteParts struct {
	reg  *sites.Server
	dist *distrib.Distributor
	grpc *grpc.Server
}

func (c *Console) newSiteParts(ctx context.Context) error {
	reg, err := sites.New(ctx, sites.Options{Store: c.st, CA: c.ca, Audit: c.audit, Denials: c.denials, Logger: c.log,
		Now: c.opts.SiteClock})
	if err != nil {
		return fmt.Errorf("building the site registry: %w", err)
	}
	dist, err := distrib.New(distrib.Options{Store: c.st, Secrets: c.keyring, Sites: reg, Renewer: reg, Status: c.api, Logger: c.log,
		OnTelemetry: c.eventsIntake(),
		OnDecommission: func(ctx context.Context, tenant, site string) {
			if err := reg.Retire(ctx, tenant, site); err != nil {
				c.log.Warn("revoking site certificates", "tenant", tenant, "site", site, "err", err)
			}
		}})
	if err != nil {
		return fmt.Errorf("building configuration distribution: %w", err)
	}
	c.sites = &siteParts{reg: reg, dist: dist, grpc: dist.NewGRPCServer()}
	c.serveTelemetry()
	return nil
}

// siteRoutes sends the sync stream (gRPC) and the registration paths to the
// site parts, everything else to next.
func (c *Console) siteRoutes(next http.Handler) http.Handler {
	regH := c.sites.reg.Handler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case distrib.IsGRPC(r):
			c.sites.grpc.ServeHTTP(w, r)
		case strings.HasPrefix(r.URL.Path, "/sites/v1/"):
			regH.ServeHTTP(w, r)
		default:
			next.ServeHTTP(w, r)
		}
	})
}

// serveSites splits the console's TLS listener: connections that present a
// client certificate (sites) are served by the sync service's gRPC server,
// the others are returned for the REST API.
func (c *Console) serveSites(ctx context.Context, ln net.Listener) net.Listener {
	api, siteLn := distrib.SplitListener(ln, c.log)
	go func() {
		if err := c.sites.grpc.Serve(siteLn); err != nil && ctx.Err() == nil {
			c.log.Error("serving the sync service", "err", err)
		}
	}()
	go func() {
		<-ctx.Done()
		if path := os.Getenv(HeapProfileEnv); path != "" {
			// Before the streams close: the profile shows the console
			// serving its sites.
			if err := writeHeapProfile(path); err != nil {
				c.log.Error("writing the heap profile", "err", err)
			}
		}
		c.sites.grpc.Stop()
	}()
	return api
}

// HeapProfileEnv names the environment variable that, when set to a file
// name, makes the console write a heap profile there as it stops, before
// the site streams close (`meridian bench fanout --heap-profile`).
const HeapProfileEnv = "MERIDIAN_HEAP_PROFILE"

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	runtime.GC()
	if err := pprof.WriteHeapProfile(f); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	// What the profile does not show: stacks and the heap's headroom.
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	const mib = 1 << 20
	summary := fmt.Sprintf("goroutines %d\nheap_inuse_mib %.1f\nheap_idle_unreleased_mib %.1f\nstack_inuse_mib %.1f\nsys_mib %.1f\nnext_gc_mib %.1f\n",
		runtime.NumGoroutine(), float64(ms.HeapInuse)/mib, float64(ms.HeapIdle-ms.HeapReleased)/mib, float64(ms.StackInuse)/mib,
		float64(ms.Sys)/mib, float64(ms.NextGC)/mib)
	return os.WriteFile(path+".txt", []byte(summary), 0o644)
}

func (c *Console) runSites(ctx context.Context) {
	// Revoked serials whose certificates can no longer be presented are
	// dropped (see sites.Server.PruneRevoked).
	go c.sites.reg.RunPruner(ctx, time.Hour)
	// Other consoles of the same store revoke and prune too.
	go c.sites.reg.RunSync(ctx)
	go func() {
		if err := c.sites.dist.Run(ctx); err != nil {
			c.log.Error("configuration distribution stopped", "err", err)
		}
	}()
}

// Sites returns the site registry.
func (c *Console) Sites() *sites.Server { return c.sites.reg }

// SiteCA returns the CA that signs site certificates.
func (c *Console) SiteCA() *pki.CA { return c.ca }

// Distributor returns configuration distribution.
func (c *Console) Distributor() *distrib.Distributor { return c.sites.dist }
