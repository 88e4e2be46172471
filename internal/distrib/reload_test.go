package distrib

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/internal/sites"
	"github.com/meridian-platform/meridian/internal/store"
	"github.com/meridian-platform/meridian/internal/store/backendtest"
)

// A reload of the configuration (after the watch broke, e.g. fell too far
// behind) closes the streams of sites deleted meanwhile and revokes their
// certificates, but not those of sites registered while the listing was
// read: their Site is newer than the listing (the watch brings it), and
// revoking it would leave a site that exists unable to ever sync again.
func TestReloadKeepsSitesNewerThanTheListing(t *testing.T) {
	ctx := context.Background()
	st := backendtest.Bolt(t)
	s := &v1.Site{}
	s.APIVersion, s.Kind = v1.APIVersion, "Site"
	s.Metadata = v1.ObjectMeta{Name: "kept", Tenant: "acme"}
	b, _ := json.Marshal(s)
	if _, err := st.Txn(ctx, store.Txn{Ops: []store.Op{store.Put(sites.SiteKey("acme", "kept"), b)}}); err != nil {
		t.Fatal(err)
	}
	rev, err := st.Revision(ctx)
	if err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	retired := map[string]bool{}
	d := &Distributor{opts: Options{Store: st, Now: time.Now, OnDecommission: func(_ context.Context, tenant, site string) {
		mu.Lock()
		retired[tenant+"/"+site] = true
		mu.Unlock()
	}}, log: slog.New(slog.NewTextHandler(io.Discard, nil)), kinds: map[string]v1.KindInfo{},
		tenants: map[string]*tenantState{}, groups: map[string]*group{}, live: map[string]*siteLive{},
		dirty: map[string]bool{}, kick: make(chan struct{}, 1), loaded: make(chan struct{})}
	for _, k := range v1.Kinds() {
		if k.Scope == v1.ScopeNamespaced || k.Kind == "VirtualSite" || k.Kind == "Site" || k.Kind == "SiteShare" {
			d.kinds[k.Plural] = k
		}
	}
	closed := map[string]error{}
	open := func(site string, siteRev int64) {
		st := &stream{tenant: "acme", site: site, notify: make(chan struct{}, 1),
			cancel: func(cause error) { closed[site] = cause }}
		d.live["acme/"+site] = &siteLive{stream: st, online: true, siteRev: siteRev}
	}
	open("kept", rev)      // listed
	open("new", rev+3)     // registered after the listing's revision
	open("deleted", rev-1) // seen before the listing, not in it: deleted

	if _, err := d.load(ctx); err != nil {
		t.Fatal(err)
	}
	for _, site := range []string{"kept", "new"} {
		if cause, ok := closed[site]; ok {
			t.Errorf("stream of %q closed by the reload: %v", site, cause)
		}
		mu.Lock()
		if retired[("acme/" + site)] {
			t.Errorf("site %q retired (certificates revoked) by the reload", site)
		}
		mu.Unlock()
	}
	if cause := closed["deleted"]; !errors.Is(cause, errSiteGone) {
		t.Errorf("stream of the deleted site: closed with %v, want errSiteGone", cause)
	}
	// OnDecommission runs on its own goroutine.
	for i := 0; ; i++ {
		mu.Lock()
		ok := retired["acme/deleted"]
		mu.Unlock()
		if ok {
			break
		}
		if i == 200 {
			t.Fatal("the deleted site was not retired")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
