package distrib

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/internal/sites"
	"github.com/meridian-platform/meridian/internal/store"
	"github.com/meridian-platform/meridian/internal/store/backendtest"
)

// A batch of site statuses (more than one etcd transaction takes) gives
// every Site its own revision, so a watch resumed from any of them misses
// none, on bbolt and on etcd.
func TestSiteStatusBatchRevisions(t *testing.T) {
	ctx := context.Background()
	backendtest.Each(t, func(t *testing.T, st store.Store) {
		n := store.MaxTxnOps + 10
		var batch []siteStatusWrite
		for i := 0; i < n; i++ {
			site := fmt.Sprintf("s%03d", i)
			s := &v1.Site{}
			s.APIVersion, s.Kind = v1.APIVersion, "Site"
			s.Metadata = v1.ObjectMeta{Name: site, Tenant: "acme"}
			b, _ := json.Marshal(s)
			if _, err := st.Txn(ctx, store.Txn{Ops: []store.Op{store.Put(sites.SiteKey("acme", site), b)}}); err != nil {
				t.Fatal(err)
			}
			batch = append(batch, siteStatusWrite{tenant: "acme", site: site, live: siteLive{online: true, lastSeen: time.Now(), nodeVersion: "v9"}})
		}
		from, err := st.Revision(ctx)
		if err != nil {
			t.Fatal(err)
		}
		d := &Distributor{opts: Options{Store: st}}
		if err := d.writeSiteBatch(ctx, batch); err != nil {
			t.Fatalf("writing %d site statuses: %v", n, err)
		}
		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		ch, err := st.Watch(wctx, sites.SiteKey("acme", ""), from)
		if err != nil {
			t.Fatal(err)
		}
		revs := map[int64]string{}
		for len(revs) < n {
			select {
			case r := <-ch:
				if r.Err != nil {
					t.Fatal(r.Err)
				}
				for _, ev := range r.Events {
					if other, dup := revs[ev.KV.ModRevision]; dup {
						t.Fatalf("%s and %s written at one revision %d", other, ev.KV.Key, ev.KV.ModRevision)
					}
					revs[ev.KV.ModRevision] = ev.KV.Key
					var s v1.Site
					if err := json.Unmarshal(ev.KV.Value, &s); err != nil || !s.Status.Online || s.Status.NodeVersion != "v9" {
						t.Fatalf("%s: status %+v (%v)", ev.KV.Key, s.Status, err)
					}
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("%d of %d site writes seen", len(revs), n)
			}
		}
	})
}
