package distrib

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/internal/apiserver"
	"github.com/meridian-platform/meridian/internal/sites"
	"github.com/meridian-platform/meridian/internal/store"
)

// maxFailuresShown bounds the failures quoted in a rollout line.
const maxFailuresShown = 3

type siteStatusWrite struct {
	tenant, site string
	state        string
	live         siteLive
}

type rolloutWrite struct {
	tenant string
	ref    ObjectRef
	line   string
	// errors are placement problems (listener collisions on shared
	// sites); they replace the object's status.errors.
	errors []string
}

// statusLoop summarises the in-memory per-site state into Site and object
// status, at most once per StatusInterval: thousands of ACKs become a few
// store writes.
func (d *Distributor) statusLoop(ctx context.Context) {
	t := time.NewTicker(d.opts.StatusInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		d.writeStatus(ctx)
	}
}

func (d *Distributor) writeStatus(ctx context.Context) {
	sitesW, rollouts := d.collectStatus()
	for start := 0; start < len(sitesW); start += siteBatch {
		batch := sitesW[start:min(start+siteBatch, len(sitesW))]
		if err := d.writeSiteBatch(ctx, batch); err == nil || ctx.Err() != nil {
			continue
		}
		// A concurrent edit of one of them: one by one.
		for _, w := range batch {
			err := d.opts.Status.UpdateStatus(ctx, w.tenant, "Site", "", w.site, func(obj v1.Object) error {
				w.apply(obj.(*v1.Site))
				return nil
			})
			if err != nil && !errors.Is(err, apiserver.ErrNotFound) && ctx.Err() == nil {
				d.log.Warn("writing site status", "tenant", w.tenant, "site", w.site, "err", err)
				d.mu.Lock()
				d.liveOf(w.tenant, w.site).dirty = true
				d.mu.Unlock()
			}
		}
	}
	for _, w := range rollouts {
		err := d.opts.Status.UpdateStatus(ctx, w.tenant, w.ref.Kind, w.ref.Namespace, w.ref.Name, func(obj v1.Object) error {
			st := statusOf(obj)
			if st == nil {
				return fmt.Errorf("%s has no rollout status", w.ref.Kind)
			}
			st.Rollout = w.line
			st.Errors = w.errors
			return nil
		})
		if err != nil && !errors.Is(err, apiserver.ErrNotFound) && ctx.Err() == nil {
			d.log.Warn("writing rollout status", "object", w.ref.String(), "err", err)
			d.statusMu.Lock()
			delete(d.written, w.tenant+"/"+refKey(w.ref))
			d.statusMu.Unlock()
		}
	}
}

// siteBatch is how many site statuses one commit writes (one transaction
// each, see writeSiteBatch): a change acknowledged by 25,000 sites is
// about a hundred commits.
const siteBatch = 256

func (w *siteStatusWrite) apply(s *v1.Site) {
	s.Status.State = s.Spec.StateOf()
	s.Status.Online = w.live.online
	if !w.live.lastSeen.IsZero() {
		ls := w.live.lastSeen.UTC().Truncate(time.Second)
		s.Status.LastSeen = &ls
	}
	if w.live.nodeVersion != "" {
		s.Status.NodeVersion = w.live.nodeVersion
	}
	if w.live.cap > 0 {
		s.Status.CapabilityVersion = w.live.cap
	}
	if w.live.applied != "" {
		s.Status.AppliedVersion = w.live.applied
	}
	s.Status.Errors = nil
	for _, r := range w.live.rejected {
		s.Status.Errors = append(s.Status.Errors, r.ObjectRef.String()+": "+r.Error)
	}
	for _, r := range w.live.skipped {
		s.Status.Errors = append(s.Status.Errors, r.String()+": skipped (capability version too old)")
	}
}

// writeSiteBatch writes the status of several sites, each in its own
// transaction that compares the site's revision (status only: spec,
// labels and history are untouched, as with apiserver's UpdateStatus), so
// that every Site write has its own resourceVersion for watchers. On a
// store.Batcher (bbolt) they are one atomic commit; otherwise (etcd) they
// go concurrently, and the first error is returned.
func (d *Distributor) writeSiteBatch(ctx context.Context, batch []siteStatusWrite) error {
	var txns []store.Txn
	for i := range batch {
		w := &batch[i]
		key := sites.SiteKey(w.tenant, w.site)
		kv, err := d.opts.Store.Get(ctx, key)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		var s v1.Site
		if err := json.Unmarshal(kv.Value, &s); err != nil {
			return err
		}
		w.apply(&s)
		s.Metadata.ResourceVersion = ""
		b, err := json.Marshal(&s)
		if err != nil {
			return err
		}
		txns = append(txns, store.Txn{
			Compares: []store.Compare{{Key: key, ModRevision: kv.ModRevision}},
			Ops:      []store.Op{store.Put(key, b)},
		})
	}
	if len(txns) == 0 {
		return nil
	}
	if b, ok := store.AsBatcher(d.opts.Store); ok {
		_, err := b.TxnBatch(ctx, txns)
		return err
	}
	const inFlight = 16
	errs := make(chan error, len(txns))
	sem := make(chan struct{}, inFlight)
	for _, t := range txns {
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			_, err := d.opts.Store.Txn(ctx, t)
			errs <- err
		}()
	}
	var first error
	for range txns {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// statusOf returns the common Status of the namespaced kinds.
func statusOf(obj v1.Object) *v1.Status {
	type hasStatus interface{ GetStatus() *v1.Status }
	if h, ok := obj.(hasStatus); ok {
		return h.GetStatus()
	}
	return reflectStatus(obj)
}

func (d *Distributor) collectStatus() ([]siteStatusWrite, []rolloutWrite) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var sw []siteStatusWrite
	grace := d.opts.Now().Sub(d.started) > d.opts.OfflineGrace
	for _, ts := range d.tenants {
		for _, se := range ts.sites {
			k := ts.name + "/" + se.name
			l := d.live[k]
			if l == nil {
				if grace && se.statusOnline {
					// Shown online by an earlier console; its node has not
					// come back.
					l = d.liveOf(ts.name, se.name)
					l.dirty = true
				} else {
					continue
				}
			}
			if !l.dirty {
				continue
			}
			l.dirty = false
			w := siteStatusWrite{tenant: ts.name, site: se.name, state: se.state, live: *l}
			w.live.rejected, w.live.skipped = ownView(ts, se, l)
			sw = append(sw, w)
		}
	}
	// Rollouts: per object, how many selected sites run a snapshot with it
	// and which rejected it.
	type tally struct {
		total, applied int
		failed         []string
		conflicts      []string
	}
	tallies := map[string]*tally{}
	refs := map[string]ObjectRef{}
	for _, g := range d.groups {
		if g.snap == nil {
			continue
		}
		for _, it := range g.snap.items {
			tk := it.tenant + "/" + refKey(it.orig)
			t := tallies[tk]
			if t == nil {
				t = &tally{}
				tallies[tk] = t
				refs[tk] = it.orig
			}
			t.total += len(g.sites)
		}
		for _, c := range g.snap.conflicts {
			tk := c.tenant + "/" + refKey(c.ref)
			t := tallies[tk]
			if t == nil {
				t = &tally{}
				tallies[tk] = t
				refs[tk] = c.ref
			}
			t.conflicts = append(t.conflicts, c.msg)
		}
		for name := range g.sites {
			l := d.live[g.tenant+"/"+name]
			if l == nil || HashOf(l.applied) != g.snap.Hash {
				continue
			}
			rejected := map[string]string{}
			for _, r := range l.rejected {
				rejected[refKey(r.ObjectRef)] = r.Error
			}
			for _, it := range g.snap.items {
				t := tallies[it.tenant+"/"+refKey(it.orig)]
				if msg, bad := rejected[refKey(it.ref)]; bad {
					t.failed = append(t.failed, name+": "+msg)
				} else {
					t.applied++
				}
			}
		}
	}
	var rw []rolloutWrite
	d.statusMu.Lock()
	defer d.statusMu.Unlock()
	for tk, t := range tallies {
		line := ""
		if t.total > 0 {
			line = rolloutLine(t.total, t.applied, t.failed)
		}
		errs := dedup(t.conflicts)
		state := line + "\x00" + strings.Join(errs, "\x00")
		if d.written[tk] == state {
			continue
		}
		d.written[tk] = state
		tenant, _, _ := strings.Cut(tk, "/")
		rw = append(rw, rolloutWrite{tenant: tenant, ref: refs[tk], line: line, errors: errs})
	}
	for tk := range d.written {
		if _, ok := tallies[tk]; !ok {
			tenant, rk, _ := strings.Cut(tk, "/")
			parts := strings.SplitN(rk, "/", 3)
			if len(parts) == 3 {
				rw = append(rw, rolloutWrite{tenant: tenant, ref: ObjectRef{Kind: parts[0], Namespace: parts[1], Name: parts[2]}, line: ""})
			}
			delete(d.written, tk)
		}
	}
	return sw, rw
}

// rolloutLine reads "applied 9,998/10,000 sites; 2 failed: station-0042: ...".
func rolloutLine(total, applied int, failed []string) string {
	line := "applied " + thousands(applied) + "/" + thousands(total) + " sites"
	if len(failed) == 0 {
		return line
	}
	sort.Strings(failed)
	shown := failed
	if len(shown) > maxFailuresShown {
		shown = shown[:maxFailuresShown]
	}
	line += "; " + thousands(len(failed)) + " failed: " + strings.Join(shown, "; ")
	if len(failed) > len(shown) {
		line += "; ..."
	}
	return line
}

func thousands(n int) string {
	s := strconv.Itoa(n)
	if len(s) <= 3 {
		return s
	}
	var b strings.Builder
	pre := len(s) % 3
	if pre > 0 {
		b.WriteString(s[:pre])
	}
	for i := pre; i < len(s); i += 3 {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(s[i : i+3])
	}
	return b.String()
}

func dedup(in []string) []string {
	if len(in) == 0 {
		return nil
	}
	sort.Strings(in)
	out := in[:1]
	for _, s := range in[1:] {
		if s != out[len(out)-1] {
			out = append(out, s)
		}
	}
	return out
}

// ownView keeps, of what a site's node reported, what concerns the
// site's owner: a leased site's other tenants' objects stay out of the
// owner's Site status.
func ownView(ts *tenantState, se *siteEntry, l *siteLive) ([]ObjectError, []ObjectRef) {
	var snap *Snapshot
	if se.group != nil {
		snap = se.group.snap
	}
	var rej []ObjectError
	for _, r := range l.rejected {
		if snap != nil {
			if it, ok := snap.byWire[refKey(r.ObjectRef)]; ok && it.tenant != ts.name {
				continue
			}
		}
		rej = append(rej, r)
	}
	var skipped []ObjectRef
	for _, r := range l.skipped {
		if _, own := ts.objs[refKey(r)]; own || r.Namespace == "" {
			skipped = append(skipped, r)
		}
	}
	return rej, skipped
}
