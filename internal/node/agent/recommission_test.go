package agent_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/client"
	"github.com/meridian-platform/meridian/internal/sites"
	"github.com/meridian-platform/meridian/internal/testfixture"
)

func nodeCert(t *testing.T, dir string) (tls.Certificate, *x509.Certificate) {
	t.Helper()
	crt, err := os.ReadFile(filepath.Join(dir, "node.crt"))
	if err != nil {
		t.Fatal(err)
	}
	key, err := os.ReadFile(filepath.Join(dir, "node.key"))
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(crt, key)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(crt)
	leaf, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return pair, leaf
}

// TestRecommission: a decommissioned site is brought back under the same
// name with sites.Recommission (meridian site recommission): its node,
// started again on the same data directory with the one-use token, drops
// its refused identity, registers again, gets a certificate with a new
// serial and serves again; the old certificate stays refused; the token
// carries the site's labels and cannot register a second time.
func TestRecommission(t *testing.T) {
	e, tok, url, _ := startShop(t, testfixture.FreePort(t))
	admin := e.Client(t, "")
	ctx := context.Background()

	dir := filepath.Join(t.TempDir(), "a")
	a := startNode(t, e, tok, "station-a", dir)
	testfixture.WaitFor(t, "traffic through station-a", func() bool { _, b := testfixture.Get(url); return b == "one" })
	// An admin label survives the recommission.
	if err := sites.Label(ctx, admin, "Site", "", "station-a", map[string]string{"rack": "r7"}, nil); err != nil {
		t.Fatal(err)
	}
	oldPair, oldLeaf := nodeCert(t, dir)

	if _, err := sites.Recommission(ctx, admin, "station-a", true, 0); err == nil || !strings.Contains(err.Error(), "not decommissioned") {
		t.Fatalf("recommissioning a serving site: %v", err)
	}
	if _, err := sites.Decommission(ctx, admin, "station-a"); err != nil {
		t.Fatal(err)
	}
	waitEnd(t, a)
	checkDecommissioned(t, a, dir, url, "station-a")
	// Refused at once, before and after the recommission.
	if _, err := e.Renew(t, &oldPair, sites.RenewRequest{}); err == nil || !strings.Contains(err.Error(), "decommissioned") {
		t.Fatalf("the decommissioned site's certificate renewed: %v", err)
	}

	rt, err := sites.Recommission(ctx, admin, "station-a", true, 0)
	if err != nil {
		t.Fatal(err)
	}
	if rt.Status.Token == "" || rt.Spec.MaxUses != 1 || !rt.Spec.AutoApprove || rt.Spec.Labels["region"] != "eu" || rt.Spec.Labels["rack"] != "r7" {
		t.Fatalf("recommission token: %+v", rt)
	}
	if err := admin.Get(ctx, "Site", "", "station-a", &v1.Site{}); !client.IsNotFound(err) {
		t.Fatalf("the decommissioned site record is still there: %v", err)
	}
	if _, err := e.Renew(t, &oldPair, sites.RenewRequest{}); err == nil {
		t.Fatal("the old certificate renewed after the recommission")
	}

	// Same data directory (identity files still there), the new token.
	b := startNode(t, e, rt.Status.Token, "station-a", dir)
	testfixture.WaitFor(t, "traffic through the recommissioned station-a", func() bool { _, body := testfixture.Get(url); return body == "one" })
	var s v1.Site
	testfixture.WaitFor(t, "station-a approved and online", func() bool {
		admin.Get(ctx, "Site", "", "station-a", &s)
		return s.Status.State == v1.SiteStateApproved && s.Status.Online
	})
	if s.Metadata.Labels["rack"] != "r7" || s.Status.SiteToken != rt.Metadata.Name {
		t.Fatalf("recommissioned site: labels %v token %q", s.Metadata.Labels, s.Status.SiteToken)
	}
	_, newLeaf := nodeCert(t, dir)
	if newLeaf.SerialNumber.Cmp(oldLeaf.SerialNumber) == 0 {
		t.Fatal("the recommissioned site got the old serial")
	}
	if _, err := e.Renew(t, &oldPair, sites.RenewRequest{}); err == nil || !strings.Contains(err.Error(), "predates") && !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("the old certificate against the recommissioned site: %v", err)
	}
	if b.a.Version() == "" {
		t.Fatal("the recommissioned node runs no configuration")
	}
	// The token is used up.
	other := filepath.Join(t.TempDir(), "other")
	c := startNode(t, e, rt.Status.Token, "station-z", other)
	waitEnd(t, c)
	if c.err == nil || !strings.Contains(c.err.Error(), "used") {
		t.Fatalf("a second registration with the recommission token: %v", c.err)
	}
}
