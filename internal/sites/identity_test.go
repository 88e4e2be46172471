package sites_test

import (
	"context"
	"crypto/x509"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/meridian-platform/meridian/internal/audit"
	"github.com/meridian-platform/meridian/internal/pki"
	"github.com/meridian-platform/meridian/internal/sites"
	"github.com/meridian-platform/meridian/internal/store"
)

// TestReenrolWindow checks renewal with a certificate that expired while
// the node was offline: accepted within the grace window (the chain was
// valid when it expired), refused after it, and never for a certificate
// older than the site or revoked.
func TestReenrolWindow(t *testing.T) {
	ctx := context.Background()
	e := newIdentityEnv(t)
	st, clk := e.st, e.clk
	srv, err := sites.New(ctx, e.options(48*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	putSite := func(created time.Time, decommissioned bool) { e.putSite(t, "shop-7", created, decommissioned) }
	issue := func(ttl time.Duration) []*x509.Certificate { return e.issue(t, "shop-7", 0, ttl) }
	putSite(time.Now().Add(-time.Minute), false)
	chain := issue(time.Hour)
	csr := newNode(t).csr
	renew := func() (int, string) {
		id, err := srv.Renew(ctx, chain, sites.RenewRequest{CSR: csr}, "test")
		if err != nil {
			e := err.(*sites.Error)
			return e.Code, e.Message
		}
		if id.Site != "shop-7" || id.Tenant != "acme" {
			t.Fatalf("renewed identity %+v", id)
		}
		return http.StatusOK, ""
	}
	cases := []struct {
		name string
		at   time.Duration // clock offset from now
		code int
	}{
		{"valid", 0, http.StatusOK},
		{"node clock behind by less than the skew", -2 * time.Minute, http.StatusOK},
		{"just expired, offline", 2 * time.Hour, http.StatusOK},
		{"expired within grace", 40 * time.Hour, http.StatusOK},
		{"expired beyond grace", 60 * time.Hour, http.StatusUnauthorized},
	}
	for _, c := range cases {
		clk.t = time.Now().Add(c.at)
		if code, msg := renew(); code != c.code {
			t.Errorf("%s: %d %s, want %d", c.name, code, msg, c.code)
		}
	}
	clk.t = time.Now()
	// Stream authentication has no grace.
	clk.t = time.Now().Add(2 * time.Hour)
	if _, err := srv.Authenticate(ctx, chain); err == nil {
		t.Error("expired certificate authenticated a stream")
	}
	clk.t = time.Now()
	if p, err := srv.Authenticate(ctx, chain); err != nil || p.Site != "shop-7" || p.Tenant != "acme" {
		t.Fatalf("authenticate: %+v %v", p, err)
	}
	// A site re-created under the same name does not accept older
	// certificates.
	putSite(time.Now().Add(time.Hour), false)
	if code, msg := renew(); code != http.StatusForbidden || !strings.Contains(msg, "predates") {
		t.Errorf("certificate older than the site: %d %s", code, msg)
	}
	putSite(time.Now().Add(-time.Minute), false)
	// Revoked certificates stay refused, also for a new Server (loaded
	// from the store).
	if err := srv.RevokeSeen(ctx, "acme", "shop-7"); err != nil {
		t.Fatal(err)
	}
	if code, msg := renew(); code != http.StatusForbidden || !strings.Contains(msg, "revoked") {
		t.Errorf("revoked: %d %s", code, msg)
	}
	srv2, err := sites.New(ctx, sites.Options{Store: st, CA: e.ca, Audit: audit.New(st, e.kr, audit.Options{})})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv2.Authenticate(ctx, chain); err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Errorf("revocation not persisted: %v", err)
	}
	// Deleted site.
	chain = issue(time.Hour)
	if _, err := st.Txn(ctx, store.Txn{Ops: []store.Op{store.Delete(sites.SiteKey("acme", "shop-7"))}}); err != nil {
		t.Fatal(err)
	}
	if code, msg := renew(); code != http.StatusForbidden || !strings.Contains(msg, "no longer exists") {
		t.Errorf("deleted site: %d %s", code, msg)
	}
}

// TestRevokedSerialsPruned: a revoked serial is kept while its certificate
// could still be presented (NotAfter + re-enrolment grace + clock skew),
// dropped from memory and the store after that, and the list stays within
// MaxRevoked (the entries that expire soonest go first).
func TestRevokedSerialsPruned(t *testing.T) {
	ctx := context.Background()
	e := newIdentityEnv(t)
	st, clk := e.st, e.clk
	start := clk.t
	const grace = 48 * time.Hour
	opts := e.options(grace)
	opts.MaxRevoked = 3
	srv, err := sites.New(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	created := start.Add(-time.Minute)
	// Five sites, each with a certificate living one hour longer than the
	// previous one's, seen by the console and then revoked.
	var chains [][]*x509.Certificate
	for i := 0; i < 5; i++ {
		name := "s" + string(rune('0'+i))
		e.putSite(t, name, created, false)
		chain := e.issue(t, name, 0, time.Duration(i+1)*time.Hour)
		if _, err := srv.Authenticate(ctx, chain); err != nil {
			t.Fatal(err)
		}
		chains = append(chains, chain)
	}
	for i := 0; i < 2; i++ {
		if err := srv.RevokeSeen(ctx, "acme", "s"+string(rune('0'+i))); err != nil {
			t.Fatal(err)
		}
	}
	if n := srv.RevokedCount(); n != 2 {
		t.Fatalf("%d revoked serials, want 2", n)
	}
	for i := 2; i < 5; i++ {
		if err := srv.RevokeSeen(ctx, "acme", "s"+string(rune('0'+i))); err != nil {
			t.Fatal(err)
		}
	}
	// Bounded: the two that expire soonest went.
	if n := srv.RevokedCount(); n != 3 {
		t.Fatalf("%d revoked serials, want the bound 3", n)
	}
	for i, chain := range chains {
		want := i >= 2
		if got := srv.IsRevoked(chain[0].SerialNumber.Text(16)); got != want {
			t.Errorf("s%d revoked = %v, want %v", i, got, want)
		}
	}
	if _, err := srv.Authenticate(ctx, chains[4]); err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("a revoked certificate authenticated: %v", err)
	}
	stored := func() int {
		res, err := st.List(ctx, "/sitesrevoked/", store.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return len(res.Items)
	}
	if n := stored(); n != 3 {
		t.Fatalf("%d revoked serials in the store, want 3", n)
	}
	// Just before s2's certificate could no longer be presented (expired
	// 3h + grace + skew): kept.
	clk.t = chains[2][0].NotAfter.Add(grace + pki.ClockSkew - time.Minute)
	if n, err := srv.PruneRevoked(ctx); err != nil || n != 3 {
		t.Fatalf("prune before the end of the grace: %d %v, want 3 kept", n, err)
	}
	// After it: dropped, from memory and store; the others stay.
	clk.t = chains[2][0].NotAfter.Add(grace + pki.ClockSkew + 2*time.Second)
	if n, err := srv.PruneRevoked(ctx); err != nil || n != 2 {
		t.Fatalf("prune after s2's certificate is refused anyway: %d %v, want 2 left", n, err)
	}
	if srv.IsRevoked(chains[2][0].SerialNumber.Text(16)) || !srv.IsRevoked(chains[3][0].SerialNumber.Text(16)) {
		t.Fatal("pruned the wrong entry")
	}
	if n := stored(); n != 2 {
		t.Fatalf("%d revoked serials in the store after pruning, want 2", n)
	}
	// A console started later prunes what expired meanwhile when it loads.
	clk.t = chains[4][0].NotAfter.Add(grace + pki.ClockSkew + 2*time.Second)
	srv2, err := sites.New(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if n := srv2.RevokedCount(); n != 0 || stored() != 0 {
		t.Fatalf("after every certificate's end: %d kept, %d stored", n, stored())
	}
}

// TestDecommissionCutoff: once a decommission is recorded (Retire), every
// certificate issued before it stays refused, whether or not the console
// saw it, even if the site's spec is set back to not decommissioned and in
// a console started later; certificates issued afterwards work; the record
// goes once no certificate from before it can be presented.
func TestDecommissionCutoff(t *testing.T) {
	ctx := context.Background()
	e := newIdentityEnv(t)
	st, clk := e.st, e.clk
	opts := e.options(48 * time.Hour)
	srv, err := sites.New(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	created := time.Now().Add(-time.Minute)
	putSite := func(decommissioned bool) { e.putSite(t, "shop-7", created, decommissioned) }
	issue := func(ago time.Duration) []*x509.Certificate { return e.issue(t, "shop-7", ago, time.Hour) }
	putSite(false)
	old := issue(10 * time.Second) // never presented: the console has not seen it
	putSite(true)
	clk.t = time.Now().Add(-5 * time.Second) // the console saw the decommission then
	if err := srv.Retire(ctx, "acme", "shop-7"); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Authenticate(ctx, old); err == nil || !strings.Contains(err.Error(), "is decommissioned") {
		t.Fatalf("decommissioned: %v", err)
	}
	// The spec set back by hand: the old certificate stays refused.
	putSite(false)
	for _, s := range []*sites.Server{srv, mustNew(t, opts)} {
		if _, err := s.Authenticate(ctx, old); err == nil || !strings.Contains(err.Error(), "issued before the site was decommissioned") {
			t.Fatalf("a certificate from before the decommission: %v", err)
		}
	}
	if _, err := srv.Authenticate(ctx, issue(0)); err != nil {
		t.Fatalf("a certificate issued after the decommission: %v", err)
	}
	// Retire of a deleted site records nothing.
	if err := srv.Retire(ctx, "acme", "gone"); err != nil {
		t.Fatal(err)
	}
	cutoffs := func() int {
		res, err := st.List(ctx, "/sitescutoff/", store.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return len(res.Items)
	}
	if n := cutoffs(); n != 1 {
		t.Fatalf("%d decommission records, want 1", n)
	}
	clk.t = clk.t.Add(time.Hour + 48*time.Hour + pki.ClockSkew + time.Second)
	if _, err := srv.PruneRevoked(ctx); err != nil {
		t.Fatal(err)
	}
	if n := cutoffs(); n != 0 {
		t.Fatalf("%d decommission records after every older certificate ended, want 0", n)
	}
}

func mustNew(t *testing.T, opts sites.Options) *sites.Server {
	t.Helper()
	s, err := sites.New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestRevocationsFollowedAcrossConsoles: two consoles on one store (as
// with etcd): what one revokes, records or prunes, the other follows
// (RunSync) without a restart.
func TestRevocationsFollowedAcrossConsoles(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e := newIdentityEnv(t)
	clk := e.clk
	opts := e.options(48 * time.Hour)
	one, two := mustNew(t, opts), mustNew(t, opts)
	done := make(chan struct{})
	go func() { defer close(done); two.RunSync(ctx) }()
	defer func() { cancel(); <-done }()

	created := time.Now().Add(-time.Minute)
	putSite := func(decommissioned bool) { e.putSite(t, "shop-7", created, decommissioned) }
	issue := func(ago time.Duration) []*x509.Certificate { return e.issue(t, "shop-7", ago, time.Hour) }
	eventually := func(what string, f func() bool) {
		t.Helper()
		for deadline := time.Now().Add(15 * time.Second); !f(); {
			if time.Now().After(deadline) {
				t.Fatalf("the second console did not follow: %s", what)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	putSite(false)
	seen, unseen := issue(20*time.Second), issue(20*time.Second)
	if _, err := one.Authenticate(ctx, seen); err != nil {
		t.Fatal(err)
	}
	putSite(true)
	clk.t = time.Now().Add(-5 * time.Second)
	if err := one.Retire(ctx, "acme", "shop-7"); err != nil {
		t.Fatal(err)
	}
	putSite(false) // set back by hand
	serial := seen[0].SerialNumber.Text(16)
	eventually("the revoked serial", func() bool { return two.IsRevoked(serial) })
	eventually("the decommission record", func() bool {
		_, err := two.Authenticate(ctx, unseen)
		return err != nil && strings.Contains(err.Error(), "issued before the site was decommissioned")
	})
	if _, err := two.Authenticate(ctx, issue(0)); err != nil {
		t.Fatalf("a certificate issued after the decommission, on the second console: %v", err)
	}
	// Pruned by the first console: gone from the second.
	clk.t = time.Now().Add(time.Hour + 48*time.Hour + pki.ClockSkew + time.Minute)
	if _, err := one.PruneRevoked(ctx); err != nil {
		t.Fatal(err)
	}
	eventually("the pruning", func() bool { return two.RevokedCount() == 0 })
}
