package distrib

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
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
	// understand a kind (default 1 for every kind).
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
	specSum   [32]byte
	placement string
	refs      []string
	it        *item
	bad       error
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
	name  string
	objs  map[string]*entry
	vs    map[string]*vsEntry
	sites map[string]*siteEntry
}

type group struct {
	key    string
	tenant string
	cap    int
	vs     []string
	snap   *Snapshot
	sites  map[string]*siteEntry
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
	counters    map[string]float64
	events      []Event
	dropped     int
}

// New returns a Distributor; Run loads the store and keeps it current.
func New(opts Options) (*Distributor, error) {
	if opts.Store == nil || opts.Secrets == nil || opts.Sites == nil {
		return nil, errors.New("distrib: Store, Secrets and Sites are required")
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
		if k.Scope == v1.ScopeNamespaced || k.Kind == "VirtualSite" || k.Kind == "Site" {
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
			d.apply(fresh, kv.Key, kv.Value, false)
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
	// were decommissioned meanwhile are closed.
	for k, l := range d.live {
		if l.stream == nil {
			continue
		}
		tenant, site, _ := strings.Cut(k, "/")
		if ts := fresh[tenant]; ts == nil || ts.sites[site] == nil || ts.sites[site].state == v1.SiteStateDecommissioned {
			d.dropSiteLocked(tenant, site)
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
				d.apply(d.tenants, ev.KV.Key, nil, true)
			} else {
				d.apply(d.tenants, ev.KV.Key, ev.KV.Value, true)
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
func (d *Distributor) apply(tenants map[string]*tenantState, key string, value []byte, live bool) {
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
		ts = &tenantState{name: tenant, objs: map[string]*entry{}, vs: map[string]*vsEntry{}, sites: map[string]*siteEntry{}}
		tenants[tenant] = ts
	}
	changed := false
	switch info.Kind {
	case "Site":
		changed = d.applySite(ts, name, value, live)
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
		if old, ok := ts.objs[k]; ok && old.specSum == e.specSum {
			old.stored = value // status-only change: nothing to send
			return
		}
		ts.objs[k] = e
		changed = true
	}
	if changed && live {
		d.dirty[tenant] = true
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
	case *v1.TCPLoadBalancer:
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
			d.dropSiteLocked(ts.name, name)
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
		d.dropSiteLocked(ts.name, name)
	}
	if live && se.statusState != se.state {
		d.liveOf(ts.name, name).dirty = true
	}
	return changed
}

// dropSiteLocked closes the stream of a site that was decommissioned or
// deleted and revokes its certificates.
func (d *Distributor) dropSiteLocked(tenant, site string) {
	l := d.live[tenant+"/"+site]
	if l != nil && l.stream != nil {
		l.stream.close(errSiteGone)
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
// version and the virtual sites whose selector matches its labels (none
// unless approved).
func (d *Distributor) groupKeyFor(ts *tenantState, se *siteEntry) (string, int, []string) {
	c := se.statusCap
	if l := d.live[se.tenant+"/"+se.name]; l != nil && l.stream != nil && l.cap > 0 {
		c = l.cap
	}
	if c <= 0 {
		c = CapabilityVersion
	}
	var vs []string
	if se.state == v1.SiteStateApproved {
		for name, e := range ts.vs {
			if e.err == nil && e.sel.Matches(se.labels) {
				vs = append(vs, name)
			}
		}
		sort.Strings(vs)
	}
	return fmt.Sprintf("%s|%d|%s", se.tenant, c, strings.Join(vs, ",")), c, vs
}

// recompileLocked regroups the tenant's sites and recompiles its groups;
// streams whose snapshot changed are told.
func (d *Distributor) recompileLocked(ctx context.Context, tenant string) {
	ts := d.tenants[tenant]
	touched := map[*group]bool{}
	if ts != nil {
		for _, se := range ts.sites {
			key, c, vs := d.groupKeyFor(ts, se)
			if se.group != nil && se.group.key == key {
				touched[se.group] = true
				continue
			}
			if se.group != nil {
				delete(se.group.sites, se.name)
			}
			g := d.groups[key]
			if g == nil {
				g = &group{key: key, tenant: tenant, cap: c, vs: vs, sites: map[string]*siteEntry{}}
				d.groups[key] = g
			}
			g.sites[se.name] = se
			se.group = g
			touched[g] = true
		}
	}
	for key, g := range d.groups {
		if g.tenant != tenant {
			continue
		}
		if len(g.sites) == 0 {
			delete(d.groups, key)
			continue
		}
		snap := d.compileLocked(ctx, ts, g)
		if g.snap != nil && g.snap.Hash == snap.Hash {
			snap = g.snap
		} else {
			snap.setRev(d.rev)
		}
		g.snap = snap
		for _, se := range g.sites {
			if l := d.live[tenant+"/"+se.name]; l != nil && l.stream != nil {
				l.stream.offer(snap)
			}
		}
	}
}

// compileLocked builds the snapshot of g: the objects placed on the
// group's virtual sites and everything they refer to, leaving out (with
// their dependents) objects whose kind is too new for the group's
// capability version and objects that cannot be resolved.
func (d *Distributor) compileLocked(ctx context.Context, ts *tenantState, g *group) *Snapshot {
	items := map[string]*item{}
	var skipped []ObjectRef
	if ts == nil || len(g.vs) == 0 {
		return newSnapshot(g.tenant, items, nil)
	}
	want := map[string]bool{}
	for _, v := range g.vs {
		want[v] = true
	}
	memo := map[string]bool{}
	tooNew := map[string]bool{} // left out for the capability version, with dependents
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
		for _, r := range e.refs {
			if r != k && !include(r, depth+1) {
				if tooNew[r] {
					tooNew[k] = true
					skipped = append(skipped, e.ref)
				}
				return false
			}
		}
		it, err := d.itemOf(ctx, g.tenant, e)
		if err != nil {
			d.log.Warn("object left out of snapshots", "tenant", g.tenant, "object", e.ref.String(), "err", err)
			return false
		}
		memo[k] = true
		items[k] = it
		return true
	}
	keys := make([]string, 0, len(ts.objs))
	for k, e := range ts.objs {
		if e.placement != "" && want[e.placement] {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		include(k, 0)
	}
	sort.Slice(skipped, func(i, j int) bool { return refKey(skipped[i]) < refKey(skipped[j]) })
	return newSnapshot(g.tenant, items, skipped)
}

// itemOf returns the wire form of an entry: the object without status,
// with its secrets decrypted (computed once per change of the object).
func (d *Distributor) itemOf(ctx context.Context, tenant string, e *entry) (*item, error) {
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
	e.it = &item{ref: e.ref, hash: sha256.Sum256(b), wire: b}
	return e.it, nil
}
