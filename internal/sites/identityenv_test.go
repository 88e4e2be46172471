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
	"github.com/meridian-platform/meridian/internal/store/backendtest"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

// identityEnv is what a sites.Server authenticates nodes with: a real
// store, keyring and console CA, a clock the test sets, and one node key
// the certificates of tenant acme's sites are issued for.
type identityEnv struct {
	st  store.Store
	kr  *pki.Keyring
	ca  *pki.CA
	clk *clock
	key *ecdsa.PrivateKey
}

// newIdentityEnv opens a bbolt store for the test (closed when it ends).
func newIdentityEnv(t *testing.T) *identityEnv {
	t.Helper()
	return newIdentityEnvOn(t, backendtest.Bolt(t))
}

// newIdentityEnvOn uses st; the clock starts now.
func newIdentityEnvOn(t *testing.T, st store.Store) *identityEnv {
	t.Helper()
	ctx := context.Background()
	kr, err := pki.NewKeyring(ctx, st, pki.NewMasterKey(), "m1")
	if err != nil {
		t.Fatal(err)
	}
	ca, err := pki.LoadOrCreateCA(ctx, st, kr, "console")
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &identityEnv{st: st, kr: kr, ca: ca, clk: &clock{t: time.Now()}, key: key}
}

// options are sites.Options over the environment: one-hour certificates
// re-enrolled up to grace after they end.
func (e *identityEnv) options(grace time.Duration) sites.Options {
	return sites.Options{Store: e.st, CA: e.ca, Audit: audit.New(e.st, e.kr, audit.Options{}), CertTTL: time.Hour,
		ReenrolGrace: grace, Now: e.clk.now}
}

// putSite stores the approved Site acme/name, created at created.
func (e *identityEnv) putSite(t *testing.T, name string, created time.Time, decommissioned bool) {
	t.Helper()
	s := &v1.Site{}
	s.APIVersion, s.Kind = v1.APIVersion, "Site"
	s.Metadata = v1.ObjectMeta{Name: name, Tenant: "acme", CreationTimestamp: &created}
	s.Spec.Approved, s.Spec.Decommissioned = true, decommissioned
	b, _ := json.Marshal(s)
	if _, err := e.st.Txn(context.Background(), store.Txn{Ops: []store.Op{store.Put(sites.SiteKey("acme", name), b)}}); err != nil {
		t.Fatal(err)
	}
}

// issue returns the chain of a certificate for site acme/name, valid for
// ttl from ago before now.
func (e *identityEnv) issue(t *testing.T, name string, ago, ttl time.Duration) []*x509.Certificate {
	t.Helper()
	ca := e.ca
	if ago != 0 {
		ca = ca.WithClock(func() time.Time { return time.Now().Add(-ago) })
	}
	ic, err := ca.IssueClientCert(pki.SiteSPIFFEID("acme", name), &e.key.PublicKey, ttl)
	if err != nil {
		t.Fatal(err)
	}
	return []*x509.Certificate{ic.Leaf}
}
