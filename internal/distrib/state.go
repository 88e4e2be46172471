package distrib

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/internal/apiserver"
	"github.com/meridian-platform/meridian/internal/labels"
	"github.com/meridian-platform/meridian/internal/sites"
	"github.com/meridian-platform/meridian/internal/store"
)

// Decrypter opens sealed secret fields (*pki.Keyring).
type Decrypter interface {
	DecryptContext(ctx context.Context, ct string, aad []byte) ([]byte, error)
}

// Authenticator checks a node's client certificate chain (*sites.Server).
type Authenticator interface {
	Authenticate(ctx context.Context, chain []*x509.Certificate) (*sites.Peer, error)
}

// Renewer issues a new certificate for a site's connection (*sites.Server).
type Renewer interface {
	Renew(ctx context.Context, chain []*x509.Certificate, req sites.RenewRequest, from string) (*sites.Identity, error)
}

// StatusWriter changes the status of stored objects (*apiserver.Server).
type StatusWriter interface {
	UpdateStatus(ctx context.Context, tenant, kind, ns, name string, update func(obj v1.Object) error) error
}

// Options configures a Distributor.
type Options struct {
	Store   store.Store
	Secrets Decrypter
	Sites   Authenticator
	// Renewer, when set, serves certificate renewal on the sync service
	// (*sites.Server).
	Renewer Renewer
	// Status, when set, receives site liveness and object rollouts.
	Status StatusWriter
	// OnDecommission is called when a site is decommissioned or deleted
	// (after its stream is closed), e.g. to revoke its certificates.
	OnDecommission func(ctx context.Context, tenant, site string)
	// KindCapabilities gives the capability version a node needs to
	// understand a kind (nil: DefaultKindCapabilities; a kind not listed
	// needs version 1).
	KindCapabilities map[string]int
	// StatusInterval bounds how often status is written (default 2s).
	StatusInterval time.Duration
	// OfflineGrace is how long after a console start a site whose stored
	// status says online may take to reconnect before it is shown offline
	// (default 30s).
	OfflineGrace time.Duration
	// OnTelemetry, when set, receives every telemetry message of every
	// site (the telemetry intake builds on it); it must not block.
	OnTelemetry func(tenant, site string, t *Telemetry)
	// MaxEventsPerSite bounds the events kept in memory per site
	// (default 100).
	MaxEventsPerSite int
	// Debounce gathers changes before recompiling (default 10ms).
	Debounce time.Duration
	Logger   *slog.Logger
	Now      func() time.Time
}

// Distributor keeps the objects that sites need in memory (fed by a store
// watch), compiles one snapshot per group of sites that select the same
// objects, and serves the sync streams.
type Distributor struct {
	opts    Options
	log     *slog.Logger
	started time.Time
	kinds   map[string]v1.KindInfo // plural -> info (namespaced kinds, VirtualSite, Site)

	mu      sync.Mutex
	rev     int64
	tenants map[string]*tenantState
	groups  map[string]*group
	live    map[string]*siteLive // tenant/site
	dirty   map[string]bool      // tenants to recompile
	kick    chan struct{}
	loaded  chan struct{}
	isReady atomic.Bool

	statusMu sync.Mutex
	written  map[string]string // object status key -> rollout written
}

type entry struct {
	ref       ObjectRef
	kind      v1.KindInfo
	stored    []byte // as stored (secrets sealed)
	createRev int64
	specSum   [32]byte
	placement string
	refs      []string
	listens   []listenClaim
	it        *item
	guestIt   *item
	bad       error
}

// listenClaim is a port (and, for HTTP, the domains) a load balancer asks
// for on the sites it is placed on.
type listenClaim struct {
	port    int
	address string
	domains []string // nil: the whole port (TCP)
}

// share is a SiteShare: site leased to guest.
type share struct {
	site, guest string
}

type vsEntry struct {
	sel labels.Selector
	err error
}

type siteEntry struct {
	tenant, name string
	labels       map[string]string
	state        string
	statusState  string
	statusOnline bool
	statusCap    int
	group        *group
}

type tenantState struct {
	name   string
	objs   map[string]*entry
	vs     map[string]*vsEntry
	sites  map[string]*siteEntry
	shares map[string]share // SiteShare name -> share
}

func newTenantState(name string) *tenantState {
	return &tenantState{name: name, objs: map[string]*entry{}, vs: map[string]*vsEntry{}, sites: map[string]*siteEntry{},
		shares: map[string]share{}}
}

// part is what one tenant places on the sites of a group: the owner's
// objects and those of each tenant the site is leased to.
type part struct {
	tenant string
	vs     []string
}

type group struct {
	key    string
	tenant string // the sites' owner
	cap    int
	parts  []part
	snap   *Snapshot
	sites  map[string]*siteEntry
}

func (g *group) involves(tenant string) bool {
	for _, p := range g.parts {
		if p.tenant == tenant {
			return true
		}
	}
	return g.tenant == tenant
}

// siteLive is the in-memory state of a site's node.
type siteLive struct {
	stream      *stream
	online      bool
	lastSeen    time.Time
	nodeVersion string
	cap         int
	applied     string
	rejected    []ObjectError
	skipped     []ObjectRef
	dirty       bool
	// siteRev is the store revision of the Site object its stream's
	// certificate was checked against (0: unknown).
	siteRev  int64
	counters map[string]float64
	// objCounters are the per-object counters the node reported, by
	// tenant and then by the object's key in that tenant (not as the node
	// names it).
	objCounters map[string]map[string]objCounters
	events      []Event
	dropped     int
}

// New returns a Distributor; Run loads the store and keeps it current.
type objCounters struct {
	ref      ObjectRef
	counters map[string]float64
}

func New(opts Options) (*Distributor, error) {
	if opts.Store == nil || opts.Secrets == nil || opts.Sites == nil {
		return nil, errors.New("distrib: Store, Secrets and Sites are required")
	}
	if opts.KindCapabilities == nil {
		opts.KindCapabilities = DefaultKindCapabilities()
	}
	if opts.StatusInterval <= 0 {
		opts.StatusInterval = 2 * time.Second
	}
	if opts.OfflineGrace <= 0 {
		opts.OfflineGrace = 30 * time.Second
	}
	if opts.MaxEventsPerSite <= 0 {
		opts.MaxEventsPerSite = 100
	}
	if opts.Debounce <= 0 {
		opts.Debounce = 10 * time.Millisecond
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	d := &Distributor{opts: opts, log: opts.Logger.With("component", "distrib"), kinds: map[string]v1.KindInfo{},
		tenants: map[string]*tenantState{}, groups: map[string]*group{}, live: map[string]*siteLive{},
		dirty: map[string]bool{}, kick: make(chan struct{}, 1), loaded: make(chan struct{}), written: map[string]string{}}
	for _, k := range v1.Kinds() {
		if k.Scope == v1.ScopeNamespaced || k.Kind == "VirtualSite" || k.Kind == "Site" || k.Kind == "SiteShare" {
			d.kinds[k.Plural] = k
		}
	}
	return d, nil
}

func (d *Distributor) capOf(kind string) int {
	if c, ok := d.opts.KindCapabilities[kind]; ok {
		return c
	}
	return 1
}

// Run loads every relevant object, then follows the store until ctx ends.
// It also writes status at the bounded rate.
func (d *Distributor) Run(ctx context.Context) error {
	d.started = d.opts.Now()
	go d.compileLoop(ctx)
	if d.opts.Status != nil {
		go d.statusLoop(ctx)
	}
	first := true
	for ctx.Err() == nil {
		rev, err := d.load(ctx)
		if err == nil {
			if first {
				close(d.loaded)
				d.isReady.Store(true)
				first = false
			}
			err = d.follow(ctx, rev)
		}
		if ctx.Err() != nil {
			return nil
		}
		d.log.Warn("configuration watch ended; reloading", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
	return nil
}

// Ready is closed once the first load is done.
func (d *Distributor) Ready() <-chan struct{} { return d.loaded }

func (d *Distributor) load(ctx context.Context) (int64, error) {
	fresh := map[string]*tenantState{}
	opts := store.ListOptions{Limit: 2000}
	var rev int64
	for {
		res, err := d.opts.Store.List(ctx, apiserver.ObjectPrefix, opts)
		if err != nil {
			return 0, fmt.Errorf("loading objects: %w", err)
		}
		rev = res.Revision
		for _, kv := range res.Items {
			d.apply(fresh, kv.Key, kv.Value, kv.CreateRevision, false)
		}
		if !res.More {
			break
		}
		opts.After, opts.Revision = res.Items[len(res.Items)-1].Key, res.Revision
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	// Keep group membership of known sites (moved again by recompile).
	for _, g := range d.groups {
		for k := range g.sites {
			delete(g.sites, k)
		}
	}
	d.tenants = fresh
	d.rev = rev
	// A reload after a broken watch: streams of sites that went away or
	// were decommissioned meanwhile are closed. A site missing from the
	// listing but seen (by its stream) at a later revision registered
	// while the listing was read: the watch brings it; closing its stream
	// would revoke the certificate of a site that exists.
	for k, l := range d.live {
		if l.stream == nil {
			continue
		}
		tenant, site, _ := strings.Cut(k, "/")
		if ts := fresh[tenant]; ts == nil || ts.sites[site] == nil {
			if l.siteRev > rev {
				continue
			}
			d.dropSiteLocked(tenant, site, false)
		} else if ts.sites[site].state == v1.SiteStateDecommissioned {
			d.dropSiteLocked(tenant, site, true)
		}
	}
	for t, ts := range fresh {
		d.dirty[t] = true
		for _, se := range ts.sites {
			if se.statusState != se.state {
				d.liveOf(t, se.name).dirty = true
			}
		}
	}
	for t := range d.groupsTenants() {
		d.dirty[t] = true
	}
	d.kickLocked()
	return rev, nil
}

func (d *Distributor) groupsTenants() map[string]bool {
	out := map[string]bool{}
	for _, g := range d.groups {
		out[g.tenant] = true
	}
	return out
}

func (d *Distributor) follow(ctx context.Context, rev int64) error {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch, err := d.opts.Store.Watch(wctx, apiserver.ObjectPrefix, rev)
	if err != nil {
		return fmt.Errorf("watching objects: %w", err)
	}
	for resp := range ch {
		if resp.Err != nil {
			return resp.Err
		}
		d.mu.Lock()
		for _, ev := range resp.Events {
			if ev.Type == store.EventDelete {
				d.apply(d.tenants, ev.KV.Key, nil, 0, true)
			} else {
				d.apply(d.tenants, ev.KV.Key, ev.KV.Value, ev.KV.CreateRevision, true)
			}
			if ev.KV.ModRevision > d.rev {
				d.rev = ev.KV.ModRevision
			}
		}
		d.mu.Unlock()
	}
	if ctx.Err() != nil {
		return nil
	}
	return errors.New("watch closed")
}

func (d *Distributor) kickLocked() {
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

// apply records one stored object (value nil: deleted). With live set, the
// caller holds d.mu and changes mark the tenant for recompilation.
func (d *Distributor) apply(tenants map[string]*tenantState, key string, value []byte, createRev int64, live bool) {
	tenant, plural, ns, name, ok := apiserver.ParseObjectKey(key)
	if !ok {
		return
	}
	info, ok := d.kinds[plural]
	if !ok {
		return
	}
	ts := tenants[tenant]
	if ts == nil {
		if value == nil {
			return
		}
		ts = newTenantState(tenant)
		tenants[tenant] = ts
	}
	changed := false
	var alsoDirty []string
	switch info.Kind {
	case "Site":
		changed = d.applySite(ts, name, value, live)
	case "SiteShare":
		old, had := ts.shares[name]
		if had {
			alsoDirty = append(alsoDirty, old.guest)
		}
		if value == nil {
			delete(ts.shares, name)
		} else {
			var sh v1.SiteShare
			if err := json.Unmarshal(value, &sh); err != nil {
				d.log.Warn("undecodable site share", "tenant", tenant, "name", name, "err", err)
				return
			}
			ts.shares[name] = share{site: sh.Spec.Site, guest: sh.Spec.Tenant}
			alsoDirty = append(alsoDirty, sh.Spec.Tenant)
		}
		changed = true
	case "VirtualSite":
		if value == nil {
			delete(ts.vs, name)
		} else {
			var vs v1.VirtualSite
			e := &vsEntry{}
			if err := json.Unmarshal(value, &vs); err != nil {
				e.err = err
			} else {
				e.sel, e.err = vs.Spec.Selector.AsSelector()
			}
			ts.vs[name] = e
		}
		changed = true
	default:
		ref := ObjectRef{Kind: info.Kind, Namespace: ns, Name: name}
		k := refKey(ref)
		if value == nil {
			if _, had := ts.objs[k]; !had {
				return
			}
			delete(ts.objs, k)
			changed = true
			break
		}
		e := d.newEntry(ref, info, value)
		e.createRev = createRev
		if old, ok := ts.objs[k]; ok && old.specSum == e.specSum {
			old.stored = value // status-only change: nothing to send
			return
		}
		ts.objs[k] = e
		changed = true
	}
	if changed && live {
		d.dirty[tenant] = true
		for _, t := range alsoDirty {
			d.dirty[t] = true
		}
		d.kickLocked()
	}
}

func (d *Distributor) newEntry(ref ObjectRef, info v1.KindInfo, value []byte) *entry {
	e := &entry{ref: ref, kind: info, stored: value}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(value, &m); err != nil {
		e.bad = err
		return e
	}
	delete(m, "status")
	if md, ok := m["metadata"]; ok {
		var meta map[string]json.RawMessage
		if json.Unmarshal(md, &meta) == nil {
			delete(meta, "resourceVersion")
			m["metadata"], _ = json.Marshal(meta)
		}
	}
	b, _ := json.Marshal(m)
	e.specSum = sha256.Sum256(b)
	obj := info.New()
	if err := json.Unmarshal(value, obj); err != nil {
		e.bad = err
		return e
	}
	switch o := obj.(type) {
	case *v1.HTTPLoadBalancer:
		if o.Spec.Sites != nil {
			e.placement = o.Spec.Sites.VirtualSite
		}
		domains := o.Spec.Domains
		if len(domains) == 0 {
			domains = []string{"*"}
		}
		for _, l := range o.Spec.Listeners {
			e.listens = append(e.listens, listenClaim{port: l.Port, address: l.Address, domains: domains})
		}
	case *v1.TCPLoadBalancer:
		if o.Spec.Sites != nil {
			e.placement = o.Spec.Sites.VirtualSite
		}
		for _, l := range o.Spec.Listeners {
			e.listens = append(e.listens, listenClaim{port: l.Port, address: l.Address})
		}
	case *v1.NetworkPolicy:
		// Enforced on the listeners of its namespace's load balancers on
		// the sites of its virtual site.
		if o.Spec.Sites != nil {
			e.placement = o.Spec.Sites.VirtualSite
		}
	}
	if rr, ok := obj.(v1.Referrer); ok {
		for _, r := range rr.References() {
			if r.Name == "" {
				continue
			}
			ki, ok := v1.LookupKind(r.Kind)
			if !ok || ki.Scope != v1.ScopeNamespaced {
				continue
			}
			rns := r.Namespace
			if rns == "" {
				rns = ref.Namespace
			}
			e.refs = append(e.refs, refKey(ObjectRef{Kind: ki.Kind, Namespace: rns, Name: r.Name}))
		}
	}
	return e
}

func (d *Distributor) applySite(ts *tenantState, name string, value []byte, live bool) bool {
	if value == nil {
		old, ok := ts.sites[name]
		if !ok {
			return false
		}
		delete(ts.sites, name)
		if old.group != nil {
			delete(old.group.sites, name)
		}
		if live {
			d.dropSiteLocked(ts.name, name, false)
		}
		return true
	}
	var s v1.Site
	if err := json.Unmarshal(value, &s); err != nil {
		d.log.Warn("undecodable site", "tenant", ts.name, "site", name, "err", err)
		return false
	}
	se := ts.sites[name]
	if se == nil {
		se = &siteEntry{tenant: ts.name, name: name}
		ts.sites[name] = se
	}
	changed := !equalLabels(se.labels, s.Metadata.Labels) || se.state != s.Spec.StateOf() || se.statusCap != s.Status.CapabilityVersion
	se.labels = s.Metadata.Labels
	se.state = s.Spec.StateOf()
	se.statusState = s.Status.State
	se.statusOnline = s.Status.Online
	se.statusCap = s.Status.CapabilityVersion
	if live && se.state == v1.SiteStateDecommissioned {
		d.dropSiteLocked(ts.name, name, true)
	}
	if live && se.statusState != se.state {
		d.liveOf(ts.name, name).dirty = true
	}
	return changed
}

// dropSiteLocked closes the stream of a site that was decommissioned or
// deleted and revokes its certificates. A decommissioned site's node is
// told so (see IsDecommissioned): it removes its configuration.
func (d *Distributor) dropSiteLocked(tenant, site string, decommissioned bool) {
	l := d.live[tenant+"/"+site]
	if l != nil && l.stream != nil {
		cause := errSiteGone
		if decommissioned {
			cause = fmt.Errorf("site %q is decommissioned: %w", site, errSiteGone)
		}
		l.stream.close(cause)
	}
	if d.opts.OnDecommission != nil {
		go d.opts.OnDecommission(context.Background(), tenant, site)
	}
}

var errSiteGone = errors.New("site decommissioned or deleted")

func (d *Distributor) liveOf(tenant, site string) *siteLive {
	k := tenant + "/" + site
	l := d.live[k]
	if l == nil {
		l = &siteLive{}
		d.live[k] = l
	}
	return l
}

func equalLabels(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if bv, ok := b[k]; !ok || bv != v {
			return false
		}
	}
	return true
}

func (d *Distributor) compileLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.kick:
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(d.opts.Debounce):
		}
		d.mu.Lock()
		for t := range d.dirty {
			d.recompileLocked(ctx, t)
			delete(d.dirty, t)
		}
		d.mu.Unlock()
	}
}

// groupKeyFor says which objects a site selects: its tenant, capability
// version, the owner's virtual sites whose selector matches its labels and,
// for each tenant the site is leased to, that tenant's matching virtual
// sites (none unless the site is approved).
func (d *Distributor) groupKeyFor(ts *tenantState, se *siteEntry) (string, int, []part) {
	c := se.statusCap
	if l := d.live[se.tenant+"/"+se.name]; l != nil && l.stream != nil && l.cap > 0 {
		c = l.cap
	}
	if c <= 0 {
		c = CapabilityVersion
	}
	key := fmt.Sprintf("%s|%d|", se.tenant, c)
	var parts []part
	if se.state != v1.SiteStateApproved {
		return key, c, nil
	}
	match := func(t *tenantState) []string {
		var vs []string
		if t == nil {
			return nil
		}
		for name, e := range t.vs {
			if e.err == nil && e.sel.Matches(se.labels) {
				vs = append(vs, name)
			}
		}
		sort.Strings(vs)
		return vs
	}
	own := match(ts)
	parts = append(parts, part{tenant: se.tenant, vs: own})
	key += strings.Join(own, ",")
	guests := map[string]bool{}
	for _, sh := range ts.shares {
		if sh.site == se.name && sh.guest != se.tenant {
			guests[sh.guest] = true
		}
	}
	names := make([]string, 0, len(guests))
	for g := range guests {
		names = append(names, g)
	}
	sort.Strings(names)
	for _, g := range names {
		vs := match(d.tenants[g])
		if len(vs) == 0 {
			continue
		}
		parts = append(parts, part{tenant: g, vs: vs})
		key += "|" + g + ":" + strings.Join(vs, ",")
	}
	return key, c, parts
}

// recompileLocked regroups the sites a change of tenant may move (its own,
// and those leased to it) and recompiles the groups that involve it;
// streams whose snapshot changed are told.
func (d *Distributor) recompileLocked(ctx context.Context, tenant string) {
	owners := map[string]bool{tenant: true}
	for name, ts := range d.tenants {
		for _, sh := range ts.shares {
			if sh.guest == tenant {
				owners[name] = true
			}
		}
	}
	for owner := range owners {
		ts := d.tenants[owner]
		if ts == nil {
			continue
		}
		for _, se := range ts.sites {
			key, c, parts := d.groupKeyFor(ts, se)
			if se.group != nil && se.group.key == key {
				continue
			}
			if se.group != nil {
				delete(se.group.sites, se.name)
			}
			g := d.groups[key]
			if g == nil {
				g = &group{key: key, tenant: owner, cap: c, parts: parts, sites: map[string]*siteEntry{}}
				d.groups[key] = g
			}
			g.sites[se.name] = se
			se.group = g
		}
	}
	for key, g := range d.groups {
		if !owners[g.tenant] && !g.involves(tenant) {
			continue
		}
		if len(g.sites) == 0 {
			delete(d.groups, key)
			continue
		}
		snap := d.compileLocked(ctx, g)
		if g.snap != nil && g.snap.Hash == snap.Hash {
			snap = g.snap
		} else {
			snap.setRev(d.rev)
		}
		g.snap = snap
		for _, se := range g.sites {
			if l := d.live[g.tenant+"/"+se.name]; l != nil && l.stream != nil {
				l.stream.offer(snap)
			}
		}
	}
}

// compileLocked builds the snapshot of g: for each part, the objects
// placed on the part's virtual sites and everything they refer to, leaving
// out (with their dependents) objects whose kind is too new for the
// group's capability version and objects that cannot be resolved; then,
// on a shared site, listeners of different tenants that collide.
func (d *Distributor) compileLocked(ctx context.Context, g *group) *Snapshot {
	items := map[string]*item{}
	var skipped []ObjectRef
	for _, p := range g.parts {
		ts := d.tenants[p.tenant]
		if ts == nil || len(p.vs) == 0 {
			continue
		}
		skipped = append(skipped, d.compilePart(ctx, ts, p, g, items)...)
	}
	sort.Slice(skipped, func(i, j int) bool { return refKey(skipped[i]) < refKey(skipped[j]) })
	var conflicts []conflict
	if len(g.parts) > 1 {
		conflicts = d.placeListeners(g, items)
	}
	snap := newSnapshot(g.tenant, items, skipped)
	snap.conflicts = conflicts
	if len(g.parts) > 1 {
		snap.sharedListeners = d.sharedListenerObjects(items)
	}
	return snap
}

func (d *Distributor) compilePart(ctx context.Context, ts *tenantState, p part, g *group, items map[string]*item) []ObjectRef {
	var skipped []ObjectRef
	guest := p.tenant != g.tenant
	want := map[string]bool{}
	for _, v := range p.vs {
		want[v] = true
	}
	memo := map[string]bool{}
	tooNew := map[string]bool{} // left out for the capability version, with dependents
	// The SecurityBindings of a namespace travel with each of its HTTP
	// load balancers (SecOps made them mandatory): a load balancer whose
	// bindings cannot be sent is not sent either.
	bindings := map[string][]string{} // namespace -> keys, sorted
	var include func(k string, depth int) bool
	include = func(k string, depth int) bool {
		if ok, seen := memo[k]; seen {
			return ok
		}
		memo[k] = false // cycles resolve to "not included"
		e := ts.objs[k]
		if e == nil || e.bad != nil || depth > 32 {
			return false
		}
		if d.capOf(e.ref.Kind) > g.cap {
			tooNew[k] = true
			skipped = append(skipped, e.ref)
			return false
		}
		refs := e.refs
		if e.ref.Kind == "HTTPLoadBalancer" {
			refs = append(refs[:len(refs):len(refs)], bindings[e.ref.Namespace]...)
		}
		for _, r := range refs {
			if r != k && !include(r, depth+1) {
				if tooNew[r] {
					tooNew[k] = true
					skipped = append(skipped, e.ref)
				}
				return false
			}
		}
		it, err := d.itemOf(ctx, ts.name, e, guest)
		if err != nil {
			d.log.Warn("object left out of snapshots", "tenant", ts.name, "object", e.ref.String(), "err", err)
			return false
		}
		memo[k] = true
		items[ts.name+"|"+k] = it
		return true
	}
	keys := make([]string, 0, len(ts.objs))
	for k, e := range ts.objs {
		if e.placement != "" && want[e.placement] {
			keys = append(keys, k)
		}
		if e.ref.Kind == "SecurityBinding" {
			bindings[e.ref.Namespace] = append(bindings[e.ref.Namespace], k)
		}
	}
	for _, b := range bindings {
		sort.Strings(b)
	}
	sort.Strings(keys)
	for _, k := range keys {
		include(k, 0)
	}
	if guest {
		// What a guest tenant is told it skips stays out of the owner's
		// view: only the node sees these names.
		for i := range skipped {
			skipped[i].Namespace = guestNamespace(ts.name, skipped[i].Namespace)
		}
	}
	return skipped
}

// placeListeners finds listeners of different tenants that collide on a
// shared site (same port and address, a common domain; any TCP listener
// takes the whole port). The load balancer created first keeps the
// listener; the other is left out of the site's snapshot. Both are
// reported, without naming the other tenant's object.
func (d *Distributor) placeListeners(g *group, items map[string]*item) []conflict {
	type claim struct {
		key string
		it  *item
		e   *entry
	}
	var claims []claim
	for k, it := range items {
		ts := d.tenants[it.tenant]
		if ts == nil {
			continue
		}
		if e := ts.objs[refKey(it.orig)]; e != nil && len(e.listens) > 0 {
			claims = append(claims, claim{key: k, it: it, e: e})
		}
	}
	sort.Slice(claims, func(i, j int) bool {
		if claims[i].e.createRev != claims[j].e.createRev {
			return claims[i].e.createRev < claims[j].e.createRev
		}
		return claims[i].key < claims[j].key
	})
	var kept []claim
	var out []conflict
	site := "this site"
	if len(g.sites) == 1 {
		for name := range g.sites {
			site = "site " + name
		}
	} else {
		site = "shared sites"
	}
	for _, c := range claims {
		var clash *claim
		var what string
	search:
		for i := range kept {
			k := &kept[i]
			if k.it.tenant == c.it.tenant {
				continue
			}
			for _, a := range c.e.listens {
				for _, b := range k.e.listens {
					if w, ok := collide(a, b); ok {
						clash, what = k, w
						break search
					}
				}
			}
		}
		if clash == nil {
			kept = append(kept, c)
			continue
		}
		delete(items, c.key)
		out = append(out,
			conflict{tenant: c.it.tenant, ref: c.it.orig, msg: fmt.Sprintf("not placed on %s: %s is already used there by another tenant's load balancer", site, what)},
			conflict{tenant: clash.it.tenant, ref: clash.it.orig, msg: fmt.Sprintf("%s collides on %s with another tenant's load balancer, which was not placed there", what, site)})
	}
	return out
}

// collide reports whether two listeners cannot share a site, and says on
// what.
func collide(a, b listenClaim) (string, bool) {
	if a.port != b.port {
		return "", false
	}
	if a.address != "" && b.address != "" && a.address != b.address && a.address != "0.0.0.0" && b.address != "0.0.0.0" {
		return "", false
	}
	what := fmt.Sprintf("listener :%d", a.port)
	if a.domains == nil || b.domains == nil {
		return what, true
	}
	for _, x := range a.domains {
		for _, y := range b.domains {
			if x == y {
				return fmt.Sprintf("%s for domain %q", what, x), true
			}
		}
	}
	return "", false
}

// guestNamespace is the namespace a guest tenant's objects get on a
// shared site's node, so that two tenants' namespaces of the same name
// stay apart.
func guestNamespace(tenant, ns string) string {
	if n := tenant + "--" + ns; len(n) <= 63 {
		return n
	}
	sum := sha256.Sum256([]byte(tenant + "/" + ns))
	return "t" + hex.EncodeToString(sum[:])[:20] + "--" + ns[:min(len(ns), 38)]
}

// itemOf returns the wire form of an entry: the object without status,
// with its secrets decrypted (computed once per change of the object).
func (d *Distributor) itemOf(ctx context.Context, tenant string, e *entry, guest bool) (*item, error) {
	if guest {
		return d.guestItemOf(ctx, tenant, e)
	}
	if e.it != nil {
		return e.it, nil
	}
	obj := e.kind.New()
	if err := json.Unmarshal(e.stored, obj); err != nil {
		return nil, err
	}
	md := obj.GetMetadata()
	md.ResourceVersion = ""
	md.Tenant = tenant
	if sh, ok := obj.(v1.SecretHolder); ok {
		for _, f := range sh.SecretFields() {
			if f.Value == nil || *f.Value == "" || strings.HasPrefix(f.Field, "status.") {
				continue
			}
			pt, err := d.opts.Secrets.DecryptContext(ctx, string(*f.Value),
				apiserver.SecretAAD(tenant, e.ref.Kind, md.Namespace, md.Name, f.Field))
			if err != nil {
				return nil, fmt.Errorf("decrypting %s: %w", f.Field, err)
			}
			*f.Value = v1.Secret(pt)
		}
	}
	b, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	delete(m, "status")
	if b, err = json.Marshal(m); err != nil {
		return nil, err
	}
	e.it = &item{ref: e.ref, orig: e.ref, tenant: tenant, hash: sha256.Sum256(b), wire: b}
	return e.it, nil
}

// guestItemOf is itemOf for a tenant the site is leased to: the object's
// namespace is renamed apart (guestNamespace).
func (d *Distributor) guestItemOf(ctx context.Context, tenant string, e *entry) (*item, error) {
	if e.guestIt != nil {
		return e.guestIt, nil
	}
	it, err := d.itemOf(ctx, tenant, e, false)
	if err != nil {
		return nil, err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(it.wire, &m); err != nil {
		return nil, err
	}
	var meta map[string]json.RawMessage
	if err := json.Unmarshal(m["metadata"], &meta); err != nil {
		return nil, err
	}
	ref := e.ref
	ref.Namespace = guestNamespace(tenant, e.ref.Namespace)
	meta["namespace"], _ = json.Marshal(ref.Namespace)
	m["metadata"], _ = json.Marshal(meta)
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	e.guestIt = &item{ref: ref, orig: e.ref, tenant: tenant, hash: sha256.Sum256(b), wire: b}
	return e.guestIt, nil
}
