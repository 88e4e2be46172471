package sites_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"testing"
	"time"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/internal/audit"
	"github.com/meridian-platform/meridian/internal/pki"
	"github.com/meridian-platform/meridian/internal/sites"
	"github.com/meridian-platform/meridian/internal/store"
	"github.com/meridian-platform/meridian/internal/store/etcd"
	"github.com/meridian-platform/meridian/internal/store/etcd/etcdtest"
)

// Revoking and pruning more serials than one etcd transaction takes
// (store.MaxTxnOps): both go in several transactions.
func TestRevokeManySerialsOnEtcd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd")
	}
	ctx := context.Background()
	st, err := etcd.New(ctx, etcd.Options{Endpoints: etcdtest.Start(t), Prefix: "/sites/"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	kr, err := pki.NewKeyring(ctx, st, pki.NewMasterKey(), "m1")
	if err != nil {
		t.Fatal(err)
	}
	ca, err := pki.LoadOrCreateCA(ctx, st, kr, "console")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	clk := &clock{t: start}
	srv, err := sites.New(ctx, sites.Options{Store: st, CA: ca, Audit: audit.New(st, kr, audit.Options{}), CertTTL: time.Hour,
		ReenrolGrace: time.Hour, MaxRevoked: 10000, Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	created := start.Add(-time.Minute)
	s := &v1.Site{}
	s.APIVersion, s.Kind = v1.APIVersion, "Site"
	s.Metadata = v1.ObjectMeta{Name: "edge", Tenant: "acme", CreationTimestamp: &created}
	s.Spec.Approved = true
	b, _ := json.Marshal(s)
	if _, err := st.Txn(ctx, store.Txn{Ops: []store.Op{store.Put(sites.SiteKey("acme", "edge"), b)}}); err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	n := store.MaxTxnOps + 20
	var chains [][]*x509.Certificate
	for i := 0; i < n; i++ {
		ic, err := ca.IssueClientCert(pki.SiteSPIFFEID("acme", "edge"), &key.PublicKey, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		chain := []*x509.Certificate{ic.Leaf}
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
