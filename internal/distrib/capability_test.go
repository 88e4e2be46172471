package distrib

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/internal/apiserver"
	"github.com/meridian-platform/meridian/internal/pki"
	"github.com/meridian-platform/meridian/internal/sites"
	"github.com/meridian-platform/meridian/internal/store"
	"github.com/meridian-platform/meridian/internal/store/backendtest"
)

// noStreams refuses every stream: these tests compile snapshots only.
type noStreams struct{}

func (noStreams) Authenticate(context.Context, []*x509.Certificate) (*sites.Peer, error) {
	return nil, errors.New("no streams in this test")
}

func put(t *testing.T, st store.Store, tenant, plural, ns string, obj v1.Object) {
	t.Helper()
	b, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	key := apiserver.ObjectKey(tenant, plural, ns, obj.GetMetadata().Name)
	if _, err := st.Txn(context.Background(), store.Txn{Ops: []store.Op{store.Put(key, b)}}); err != nil {
		t.Fatal(err)
	}
}

func decodeOne(t *testing.T, doc string) v1.Object {
	t.Helper()
	o, err := v1.Decode([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// openStore opens a bbolt store for the test (closed when it ends) and a
// keyring in it.
func openStore(t *testing.T) (store.Store, *pki.Keyring) {
	t.Helper()
	st := backendtest.Bolt(t)
	kr, err := pki.NewKeyring(context.Background(), st, pki.NewMasterKey(), "m")
	if err != nil {
		t.Fatal(err)
	}
	return st, kr
}

// siteCap is a site of tenant acme and the capability version its node
// reported.
type siteCap struct {
	name string
	cap  int
}

// putSites stores approved sites of tenant acme.
func putSites(t *testing.T, st store.Store, sites ...siteCap) {
	t.Helper()
	for _, s := range sites {
		site := &v1.Site{}
		site.APIVersion, site.Kind, site.Metadata.Name = v1.APIVersion, "Site", s.name
		site.Spec.Approved = true
		site.Status.CapabilityVersion = s.cap
		put(t, st, "acme", "sites", "", site)
	}
}

// reload reads the store again and compiles tenant acme's snapshots.
func reload(t *testing.T, d *Distributor) {
	t.Helper()
	if _, err := d.load(context.Background()); err != nil {
		t.Fatal(err)
	}
	recompile(d)
}

// recompile compiles tenant acme's snapshots.
func recompile(d *Distributor) {
	d.mu.Lock()
	d.recompileLocked(context.Background(), "acme")
	d.mu.Unlock()
}

func names(refs []ObjectRef) string {
	var out []string
	for _, r := range refs {
		out = append(out, r.String())
	}
	return strings.Join(out, ",")
}

// TestCapabilityVersion: a group of older nodes gets only the kinds it
// understands, leaves out what depends on the others, and says so; newer
// nodes get everything.
func TestCapabilityVersion(t *testing.T) {
	st, kr := openStore(t)
	put(t, st, "acme", "virtualsites", "", decodeOne(t, `{"apiVersion":"meridian/v1","kind":"VirtualSite","metadata":{"name":"all"},"spec":{"selector":{}}}`))
	put(t, st, "acme", "healthchecks", "shop", decodeOne(t, `{"apiVersion":"meridian/v1","kind":"HealthCheck","metadata":{"name":"hc","namespace":"shop"},"spec":{"http":{"path":"/"}}}`))
	put(t, st, "acme", "originpools", "shop", decodeOne(t, `{"apiVersion":"meridian/v1","kind":"OriginPool","metadata":{"name":"checked","namespace":"shop"},"spec":{"endpoints":[{"address":"127.0.0.1:1"}],"healthCheckRef":"hc"}}`))
	put(t, st, "acme", "originpools", "shop", decodeOne(t, `{"apiVersion":"meridian/v1","kind":"OriginPool","metadata":{"name":"plain","namespace":"shop"},"spec":{"endpoints":[{"address":"127.0.0.1:2"}]}}`))
	for _, lb := range []struct{ name, pool string }{{"a", "checked"}, {"b", "plain"}} {
		put(t, st, "acme", "httploadbalancers", "shop", decodeOne(t, `{"apiVersion":"meridian/v1","kind":"HTTPLoadBalancer","metadata":{"name":"`+lb.name+
			`","namespace":"shop"},"spec":{"domains":["*"],"listeners":[{"port":8080}],"defaultPool":"`+lb.pool+`","sites":{"virtualSite":"all"}}}`))
	}
	putSites(t, st, siteCap{"old-1", 1}, siteCap{"old-2", 1}, siteCap{"new-1", 2})
	d, err := New(Options{Store: st, Secrets: kr, Sites: noStreams{}, KindCapabilities: map[string]int{"HealthCheck": 2}})
	if err != nil {
		t.Fatal(err)
	}
	reload(t, d)

	old1, err := d.Snapshot("acme", "old-1")
	if err != nil {
		t.Fatal(err)
	}
	old2, _ := d.Snapshot("acme", "old-2")
	newer, _ := d.Snapshot("acme", "new-1")
	if old1 != old2 || old1 == newer {
		t.Fatal("groups: sites of one capability version must share a snapshot, others not")
	}
	if got := names(old1.Refs()); got != "HTTPLoadBalancer shop/b,OriginPool shop/plain" {
		t.Errorf("old nodes get %s", got)
	}
	if got := names(old1.skipped); got != "HTTPLoadBalancer shop/a,HealthCheck shop/hc,OriginPool shop/checked" {
		t.Errorf("old nodes are told they skip %s", got)
	}
	if got := names(newer.Refs()); got != "HTTPLoadBalancer shop/a,HTTPLoadBalancer shop/b,HealthCheck shop/hc,OriginPool shop/checked,OriginPool shop/plain" || len(newer.skipped) != 0 {
		t.Errorf("new nodes get %s (skipped %s)", got, names(newer.skipped))
	}
	// The update sent to old nodes carries the skipped list.
	e, err := old1.encodeFor(nil)
	if err != nil {
		t.Fatal(err)
	}
	var u Update
	if err := json.Unmarshal(e.b, &u); err != nil || len(u.Skipped) != 3 || !u.Full || len(u.Objects) != 2 {
		t.Fatalf("update: %+v %v", u, err)
	}
	// Versions: a recompilation without change keeps the version; a
	// change gets a higher revision.
	v := old1.Version
	recompile(d)
	if again, _ := d.Snapshot("acme", "old-1"); again.Version != v {
		t.Fatalf("version changed without a change: %s -> %s", v, again.Version)
	}
	put(t, st, "acme", "originpools", "shop", decodeOne(t, `{"apiVersion":"meridian/v1","kind":"OriginPool","metadata":{"name":"plain","namespace":"shop"},"spec":{"endpoints":[{"address":"127.0.0.1:3"}]}}`))
	reload(t, d)
	changed, _ := d.Snapshot("acme", "old-1")
	if changed.Rev <= old1.Rev || changed.Hash == old1.Hash {
		t.Fatalf("change: rev %d -> %d, hash %s -> %s", old1.Rev, changed.Rev, old1.Hash, changed.Hash)
	}
	delta, err := changed.encodeFor(old1)
	if err != nil {
		t.Fatal(err)
	}
	var du Update
	json.Unmarshal(delta.b, &du)
	if du.Full || du.Base != old1.Version || len(du.Objects) != 1 || !strings.Contains(string(du.Objects[0]), "127.0.0.1:3") || len(du.Deleted) != 0 {
		t.Fatalf("delta: %s", delta.b)
	}
}

func TestRolloutLine(t *testing.T) {
	cases := []struct {
		total, applied int
		failed         []string
		want           string
	}{
		{3, 3, nil, "applied 3/3 sites"},
		{10000, 9998, []string{"s2: x", "s1: y"}, "applied 9,998/10,000 sites; 2 failed: s1: y; s2: x"},
		{5, 1, []string{"a: 1", "b: 2", "c: 3", "d: 4"}, "applied 1/5 sites; 4 failed: a: 1; b: 2; c: 3; ..."},
		{1234567, 0, nil, "applied 0/1,234,567 sites"},
	}
	for _, c := range cases {
		if got := rolloutLine(c.total, c.applied, c.failed); got != c.want {
			t.Errorf("rolloutLine(%d,%d,%v) = %q, want %q", c.total, c.applied, c.failed, got, c.want)
		}
	}
}

// TestBindingHeldBackFromOldNodes: by default SecurityBinding and
// NetworkPolicy need capability version 2. A version-1 node gets neither,
// nor the load balancers of a namespace with a binding (they would run
// there without the protection SecOps made mandatory); other namespaces'
// load balancers still reach it.
func TestBindingHeldBackFromOldNodes(t *testing.T) {
	st, kr := openStore(t)
	put(t, st, "acme", "virtualsites", "", decodeOne(t, `{"apiVersion":"meridian/v1","kind":"VirtualSite","metadata":{"name":"all"},"spec":{"selector":{}}}`))
	for _, ns := range []string{"guarded", "open"} {
		put(t, st, "acme", "originpools", ns, decodeOne(t, `{"apiVersion":"meridian/v1","kind":"OriginPool","metadata":{"name":"p","namespace":"`+ns+`"},"spec":{"endpoints":[{"address":"127.0.0.1:2"}]}}`))
		put(t, st, "acme", "httploadbalancers", ns, decodeOne(t, `{"apiVersion":"meridian/v1","kind":"HTTPLoadBalancer","metadata":{"name":"lb","namespace":"`+ns+
			`"},"spec":{"domains":["*"],"listeners":[{"port":8080}],"defaultPool":"p","sites":{"virtualSite":"all"}}}`))
	}
	put(t, st, "acme", "servicepolicies", "guarded", decodeOne(t, `{"apiVersion":"meridian/v1","kind":"ServicePolicy","metadata":{"name":"deny-all","namespace":"guarded"},"spec":{"defaultAction":"deny"}}`))
	put(t, st, "acme", "securitybindings", "guarded", decodeOne(t, `{"apiVersion":"meridian/v1","kind":"SecurityBinding","metadata":{"name":"mandatory","namespace":"guarded"},"spec":{"servicePolicies":["deny-all"]}}`))
	put(t, st, "acme", "networkpolicies", "open", decodeOne(t, `{"apiVersion":"meridian/v1","kind":"NetworkPolicy","metadata":{"name":"np","namespace":"open"},"spec":{"sites":{"virtualSite":"all"},"ingress":[{"name":"r","action":"deny","sources":["203.0.113.0/24"]}]}}`))
	putSites(t, st, siteCap{"old", 1}, siteCap{"new", CapabilityVersion})
	d, err := New(Options{Store: st, Secrets: kr, Sites: noStreams{}})
	if err != nil {
		t.Fatal(err)
	}
	reload(t, d)
	old, err := d.Snapshot("acme", "old")
	if err != nil {
		t.Fatal(err)
	}
	newer, _ := d.Snapshot("acme", "new")
	if got := names(old.Refs()); strings.Contains(got, "guarded/lb") || strings.Contains(got, "SecurityBinding") || strings.Contains(got, "NetworkPolicy") || !strings.Contains(got, "HTTPLoadBalancer open/lb") {
		t.Errorf("version-1 node gets %s", got)
	}
	if got := names(old.skipped); !strings.Contains(got, "HTTPLoadBalancer guarded/lb") || !strings.Contains(got, "SecurityBinding guarded/mandatory") || !strings.Contains(got, "NetworkPolicy open/np") {
		t.Errorf("version-1 node is told it skips %s", got)
	}
	if got := names(newer.Refs()); !strings.Contains(got, "HTTPLoadBalancer guarded/lb") || !strings.Contains(got, "SecurityBinding guarded/mandatory") || !strings.Contains(got, "NetworkPolicy open/np") || len(newer.skipped) != 0 {
		t.Errorf("current node gets %s (skipped %s)", got, names(newer.skipped))
	}
}
