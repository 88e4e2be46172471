package sites_test

import (
	"context"
	"crypto/x509"
	"testing"
	"time"

	"github.com/meridian-platform/meridian/internal/sites"
	"github.com/meridian-platform/meridian/internal/store"
	"github.com/meridian-platform/meridian/internal/store/backendtest"
	"github.com/meridian-platform/meridian/internal/store/etcd/etcdtest"
)

// Revoking and pruning more serials than one etcd transaction takes
// (store.MaxTxnOps): both go in several transactions.
func TestRevokeManySerialsOnEtcd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd")
	}
	ctx := context.Background()
	st := backendtest.Etcd(t, etcdtest.Start(t), "/sites/")
	e := newIdentityEnvOn(t, st)
	start := e.clk.t
	clk := e.clk
	opts := e.options(time.Hour)
	opts.MaxRevoked = 10000
	srv, err := sites.New(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	e.putSite(t, "edge", start.Add(-time.Minute), false)
	n := store.MaxTxnOps + 20
	var chains [][]*x509.Certificate
	for i := 0; i < n; i++ {
		chain := e.issue(t, "edge", 0, time.Hour)
		if _, err := srv.Authenticate(ctx, chain); err != nil {
			t.Fatal(err)
		}
		chains = append(chains, chain)
	}
	if err := srv.RevokeSeen(ctx, "acme", "edge"); err != nil {
		t.Fatalf("revoking %d serials: %v", n, err)
	}
	res, err := st.List(ctx, "/sitesrevoked/", store.ListOptions{})
	if err != nil || len(res.Items) != n {
		t.Fatalf("%d revoked serials stored (%v), want %d", len(res.Items), err, n)
	}
	for i, chain := range chains {
		if !srv.IsRevoked(chain[0].SerialNumber.Text(16)) {
			t.Fatalf("serial %d not revoked", i)
		}
	}
	// Later than every keep-until: all pruned.
	clk.t = start.Add(4 * time.Hour)
	if left, err := srv.PruneRevoked(ctx); err != nil || left != 0 {
		t.Fatalf("prune: %d left, %v", left, err)
	}
	if res, err := st.List(ctx, "/sitesrevoked/", store.ListOptions{}); err != nil || len(res.Items) != 0 {
		t.Fatalf("%d revoked serials stored after pruning (%v)", len(res.Items), err)
	}
}
