package distrib

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// item is one object of a snapshot, serialised once.
type item struct {
	// ref names the object as the node sees it (a guest tenant's
	// namespace is renamed apart, see guestNamespace); orig is its name in
	// its tenant.
	ref    ObjectRef
	orig   ObjectRef
	tenant string
	hash   [32]byte
	wire   json.RawMessage
}

// conflict is a listener collision between tenants on a shared site.
type conflict struct {
	tenant string
	ref    ObjectRef
	msg    string
}

// Snapshot is an immutable, internally consistent set of objects for a
// group of sites, identified by the store revision of the last change that
// affected it and a content hash.
type Snapshot struct {
	Tenant  string
	Rev     int64
	Hash    string
	Version string
	items   map[string]*item // tenant|ref key -> item
	byWire  map[string]*item // ref key as the node sees it -> item
	skipped []ObjectRef
	// conflicts found while placing several tenants' objects on a shared
	// site.
	conflicts []conflict
	// sharedListeners are wire keys of load balancers that share a
	// listener port with another tenant's on this (shared) site.
	sharedListeners map[string]bool

	mu     sync.Mutex
	full   *encoded            // encoded full update
	deltas map[string]*encoded // base version -> encoded delta
}

func refKey(r ObjectRef) string { return r.Kind + "/" + r.Namespace + "/" + r.Name }

func newSnapshot(tenant string, items map[string]*item, skipped []ObjectRef) *Snapshot {
	keys := make([]string, 0, len(items))
	for k := range items {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	h := sha256.New()
	for _, k := range keys {
		h.Write([]byte(k))
		h.Write([]byte{0})
		ih := items[k].hash
		h.Write(ih[:])
	}
	for _, s := range skipped {
		h.Write([]byte("skip:" + refKey(s)))
	}
	byWire := make(map[string]*item, len(items))
	for _, it := range items {
		byWire[refKey(it.ref)] = it
	}
	return &Snapshot{Tenant: tenant, Hash: hex.EncodeToString(h.Sum(nil))[:16], items: items, byWire: byWire, skipped: skipped}
}

func (s *Snapshot) setRev(rev int64) {
	s.Rev = rev
	s.Version = strconv.FormatInt(rev, 10) + "-" + s.Hash
}

// HashOf returns the content-hash part of a version string.
func HashOf(version string) string {
	_, h, _ := strings.Cut(version, "-")
	return h
}

// Refs lists the objects of the snapshot.
func (s *Snapshot) Refs() []ObjectRef {
	out := make([]ObjectRef, 0, len(s.items))
	for _, it := range s.items {
		out = append(out, it.ref)
	}
	sort.Slice(out, func(i, j int) bool { return refKey(out[i]) < refKey(out[j]) })
	return out
}

// Origin returns the tenant of an object named as the site's node sees it
// (a guest tenant's namespace is renamed apart) and its name there; false
// when the snapshot does not hold it.
func (s *Snapshot) Origin(wire ObjectRef) (tenant string, orig ObjectRef, ok bool) {
	it := s.byWire[refKey(wire)]
	if it == nil {
		return "", ObjectRef{}, false
	}
	return it.tenant, it.orig, true
}

func (s *Snapshot) has(key string) bool { _, ok := s.items[key]; return ok }

// encodeFor returns the update that brings a site from base (nil: nothing
// known) to s, serialised once per base and shared by every stream (of
// every site of the group) that needs the same.
func (s *Snapshot) encodeFor(base *Snapshot) (*encoded, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if base == nil && s.full != nil {
		return s.full, nil
	}
	if base != nil {
		if e, ok := s.deltas[base.Version]; ok {
			return e, nil
		}
	}
	u := Update{Tenant: s.Tenant, Version: s.Version, Skipped: s.skipped, TelemetryAcks: true}
	keys := make([]string, 0, len(s.items))
	for k := range s.items {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if base == nil {
		u.Full = true
		for _, k := range keys {
			u.Objects = append(u.Objects, s.items[k].wire)
		}
	} else {
		u.Base = base.Version
		for _, k := range keys {
			it := s.items[k]
			if old, ok := base.items[k]; !ok || old.hash != it.hash {
				u.Objects = append(u.Objects, it.wire)
			}
		}
		var gone []string
		for k := range base.items {
			if !s.has(k) {
				gone = append(gone, k)
			}
		}
		sort.Strings(gone)
		for _, k := range gone {
			u.Deleted = append(u.Deleted, base.items[k].ref)
		}
	}
	b, err := json.Marshal(&u)
	if err != nil {
		return nil, err
	}
	e := &encoded{b: b}
	if base == nil {
		s.full = e
		return e, nil
	}
	// Bound the cache: a few bases are live at a time.
	if s.deltas == nil || len(s.deltas) > 64 {
		s.deltas = map[string]*encoded{}
	}
	s.deltas[base.Version] = e
	return e, nil
}

// encodeConfirm returns an empty delta from a version with the same
// content (shared by every node that reports that version).
func (s *Snapshot) encodeConfirm(from string) (*encoded, error) {
	key := "confirm|" + from
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.deltas[key]; ok {
		return e, nil
	}
	b, err := json.Marshal(&Update{Tenant: s.Tenant, Version: s.Version, Base: from, Skipped: s.skipped, TelemetryAcks: true})
	if err != nil {
		return nil, err
	}
	if s.deltas == nil || len(s.deltas) > 64 {
		s.deltas = map[string]*encoded{}
	}
	e := &encoded{b: b}
	s.deltas[key] = e
	return e, nil
}
