package agent_test

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/internal/console"
	"github.com/meridian-platform/meridian/internal/sites"
	"github.com/meridian-platform/meridian/internal/sites/sitestest"
	"github.com/meridian-platform/meridian/internal/testfixture"
)

// TestReenrolAfterExpiryOffline is the documented procedure for a node
// whose certificate expired while it could not reach the console: started
// again with its data directory and no token, it serves its last-known-good
// configuration at once, renews with the expired certificate (accepted
// within the re-enrolment grace while the site exists), gets a new
// certificate and is back online. Beyond the grace it keeps serving but
// the console refuses it. The console's site clock is moved forward to act
// out the days offline.
func TestReenrolAfterExpiryOffline(t *testing.T) {
	var offset atomic.Int64 // added to the site registry's clock
	e := sitestest.StartWith(t, func(o *console.Options) {
		o.SiteClock = func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	})
	port := testfixture.FreePort(t)
	e.Apply(t, "", sitestest.MustDecode(t, fmt.Sprintf(objectsYAML, backend(t, "one"), port))...)
	tok := e.CreateToken(t, "", "eu", v1.SiteTokenSpec{MaxUses: 5, AutoApprove: true, Labels: map[string]string{"region": "eu"}})
	admin := e.Client(t, "")
	ctx := context.Background()
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	online := func(want bool) func() bool {
		return func() bool {
			var s v1.Site
			admin.Get(ctx, "Site", "", "station-o", &s)
			return s.Status.Online == want && s.Status.AppliedVersion != ""
		}
	}
	serves := func() bool { _, body := testfixture.Get(url); return body == "one" }

	dir := filepath.Join(t.TempDir(), "o")
	a := startNode(t, e, tok, "station-o", dir)
	testfixture.WaitFor(t, "traffic through station-o", serves)
	testfixture.WaitFor(t, "station-o online", online(true))
	oldPair, old := nodeCert(t, dir)
	a.stop()
	testfixture.WaitFor(t, "station-o offline", online(false))

	// Two days later (the 24h certificate expired a day ago, within the
	// 30-day grace): a stream is refused, a renewal accepted.
	offset.Store(int64(48 * time.Hour))
	if _, err := e.Renew(t, &oldPair, sites.RenewRequest{}); err == nil || !strings.Contains(err.Error(), "csr") {
		t.Fatalf("renewal with the expired certificate must get past the certificate checks: %v", err)
	}
	b := startNode(t, e, "", "station-o", dir)
	testfixture.WaitFor(t, "traffic from the last-known-good copy", serves)
	testfixture.WaitFor(t, "a new certificate", func() bool {
		leaf := savedLeaf(dir)
		return leaf != nil && leaf.SerialNumber.Cmp(old.SerialNumber) != 0
	})
	// The new certificate is good as of the real time: put the clock back
	// (a stream checked at +48h would refuse it) and the node comes online.
	offset.Store(0)
	testfixture.WaitFor(t, "station-o online again", online(true))
	b.stop()
	testfixture.WaitFor(t, "station-o offline", online(false))

	// 32 days later: beyond the grace the console refuses; the node keeps
	// serving its last-known-good copy and keeps trying.
	_, cur := nodeCert(t, dir)
	offset.Store(int64(32 * 24 * time.Hour))
	c := startNode(t, e, "", "station-o", dir)
	testfixture.WaitFor(t, "traffic from the last-known-good copy", serves)
	time.Sleep(time.Second)
	if online(true)() {
		t.Fatal("a certificate expired beyond the grace window was accepted")
	}
	if leaf := savedLeaf(dir); leaf == nil || leaf.SerialNumber.Cmp(cur.SerialNumber) != 0 {
		t.Fatal("a certificate expired beyond the grace window was renewed")
	}
	select {
	case <-c.done:
		t.Fatalf("the refused node stopped: %v", c.err)
	default:
	}
	if !serves() {
		t.Fatal("the refused node stopped serving")
	}
}

// savedLeaf reads the node's saved certificate (nil while it is being
// written).
func savedLeaf(dir string) *x509.Certificate {
	crt, err := os.ReadFile(filepath.Join(dir, "node.crt"))
	if err != nil {
		return nil
	}
	b, _ := pem.Decode(crt)
	if b == nil {
		return nil
	}
	leaf, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return nil
	}
	return leaf
}
