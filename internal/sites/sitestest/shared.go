package sitestest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/internal/distrib"
	"github.com/meridian-platform/meridian/internal/node/agent"
)

// TenantSite is what a tenant places on sites labelled region=eu in the
// shared-site tests: namespace retail, a VirtualSite selecting the sites,
// OriginPool shop and an HTTPLoadBalancer on the virtual site.
type TenantSite struct {
	// VirtualSite names the virtual site ("eu" for the owner of the
	// sites, "leased" for a tenant that leases one).
	VirtualSite string
	// PoolAddress is the origin pool's one endpoint.
	PoolAddress string
	// LoadBalancer names the load balancer; Domains is its domain list as
	// a YAML flow sequence (`[shop.example]`), Port its listener port.
	LoadBalancer string
	Domains      string
	Port         int
}

// YAML returns the objects as a multi-document YAML stream.
func (ts TenantSite) YAML() string {
	return fmt.Sprintf(`
apiVersion: meridian/v1
kind: Namespace
metadata: {name: retail}
---
apiVersion: meridian/v1
kind: VirtualSite
metadata: {name: %s}
spec: {selector: {matchLabels: {region: eu}}}
---
apiVersion: meridian/v1
kind: OriginPool
metadata: {name: shop, namespace: retail}
spec: {endpoints: [{address: %q}]}
---
apiVersion: meridian/v1
kind: HTTPLoadBalancer
metadata: {name: %s, namespace: retail}
spec:
  domains: %s
  listeners: [{port: %d}]
  defaultPool: shop
  sites: {virtualSite: %s}
`, ts.VirtualSite, ts.PoolAddress, ts.LoadBalancer, ts.Domains, ts.Port, ts.VirtualSite)
}

// Owner is the owner's side of a shared site: load balancer "own" for
// shop.example on port 8080, placed on virtual site eu.
func Owner() TenantSite {
	return TenantSite{VirtualSite: "eu", PoolAddress: "127.0.0.1:9", LoadBalancer: "own", Domains: "[shop.example]", Port: 8080}
}

// Guest is the side of the tenant that leases the site: load balancer
// "guest" on port 8081, placed on virtual site leased.
func Guest() TenantSite {
	return TenantSite{VirtualSite: "leased", PoolAddress: "127.0.0.1:10", LoadBalancer: "guest", Domains: "[guest.example]", Port: 8081}
}

// Lease leases site to tenant with a SiteShare named name (created in the
// default tenant, which owns the site).
func (e *Env) Lease(t testing.TB, name, site, tenant string) {
	t.Helper()
	share := &v1.SiteShare{Spec: v1.SiteShareSpec{Site: site, Tenant: tenant}}
	share.APIVersion, share.Kind, share.Metadata.Name = v1.APIVersion, "SiteShare", name
	e.Apply(t, "", share)
}

// RunAgent starts a node agent with opts until the test ends. Unset
// options default to reconnection delays of 20-300ms, a discarded log and
// a temporary data directory.
func RunAgent(t testing.TB, opts agent.Options) *agent.Agent {
	t.Helper()
	if opts.MinBackoff == 0 {
		opts.MinBackoff = 20 * time.Millisecond
	}
	if opts.MaxBackoff == 0 {
		opts.MaxBackoff = 300 * time.Millisecond
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.DataDir == "" {
		opts.DataDir = t.TempDir()
	}
	a, err := agent.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = a.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return a
}

// Recorder is a node's Applier that keeps the objects of the last apply
// ("Kind namespace/name" -> object). When Site is set it rejects the
// objects labelled reject-on=<Site>.
type Recorder struct {
	Site string
	mu   sync.Mutex
	objs map[string]v1.Object
}

// Apply implements agent.Applier.
func (r *Recorder) Apply(_ context.Context, objs []v1.Object) []distrib.ObjectError {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.objs = map[string]v1.Object{}
	var out []distrib.ObjectError
	for _, o := range objs {
		m := o.GetMetadata()
		if r.Site != "" && m.Labels["reject-on"] == r.Site {
			out = append(out, distrib.ObjectError{ObjectRef: distrib.ObjectRef{Kind: o.GetTypeMeta().Kind, Namespace: m.Namespace, Name: m.Name},
				Error: "listener port taken on this node"})
			continue
		}
		r.objs[o.GetTypeMeta().Kind+" "+m.Namespace+"/"+m.Name] = o
	}
	return out
}

// Keys lists the kept objects, sorted, comma-separated.
func (r *Recorder) Keys() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, 0, len(r.objs))
	for k := range r.objs {
		out = append(out, k)
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

// Get returns a kept object (nil when absent).
func (r *Recorder) Get(key string) v1.Object {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.objs[key]
}

// Has reports whether an object is kept.
func (r *Recorder) Has(key string) bool { return r.Get(key) != nil }
