package sites

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"time"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/internal/pki"
	"github.com/meridian-platform/meridian/internal/store"
)

// revokedPrefix holds revoked certificate serials:
// /sitesrevoked/<tenant>/<site>/<serial hex> -> keep-until (RFC 3339): the
// certificate's NotAfter plus the re-enrolment grace and the clock skew,
// after which the certificate is refused anyway and the entry is dropped.
const revokedPrefix = "/sitesrevoked/"

// cutoffPrefix holds, per decommissioned site, when the console saw the
// decommission: /sitescutoff/<tenant>/<site> -> RFC 3339 (nanoseconds).
// Certificates issued before it stay refused even if the site's spec is
// later set back to not decommissioned (recommissioning goes through a new
// registration instead).
const cutoffPrefix = "/sitescutoff/"

// Peer is an authenticated site.
type Peer struct {
	Tenant string
	Site   string
	Serial string
	// NotAfter is when the certificate expires.
	NotAfter time.Time
	// Object is the Site as stored when the peer was checked.
	Object *v1.Site
}

// Authenticate checks a client certificate chain presented on an mTLS call
// (the sync stream): it must chain to the console CA and be valid now
// (clock skew allowed), not be revoked, name a site that exists, is not
// decommissioned and was created before the certificate was issued.
func (s *Server) Authenticate(ctx context.Context, chain []*x509.Certificate) (*Peer, error) {
	site, _, err := s.check(ctx, chain, false)
	if err != nil {
		return nil, err
	}
	return &Peer{Tenant: site.Metadata.Tenant, Site: site.Metadata.Name, Serial: serialOf(chain[0]),
		NotAfter: chain[0].NotAfter, Object: site}, nil
}

func serialOf(c *x509.Certificate) string { return c.SerialNumber.Text(16) }

func (s *Server) check(ctx context.Context, chain []*x509.Certificate, allowExpired bool) (*v1.Site, bool, error) {
	if len(chain) == 0 {
		return nil, false, errf(http.StatusUnauthorized, v1.StatusReasonUnauthorized, "no client certificate")
	}
	cert := chain[0]
	now := s.opts.Now()
	expired := false
	if err := s.opts.CA.VerifyClientCert(cert, now); err != nil {
		// A certificate that expired while its node was offline may still
		// re-enrol within the grace window: it must have been valid when
		// it expired.
		if !allowExpired || !now.After(cert.NotAfter) || now.Sub(cert.NotAfter) > s.opts.ReenrolGrace ||
			s.opts.CA.VerifyClientCert(cert, cert.NotAfter.Add(-time.Second)) != nil {
			return nil, false, errf(http.StatusUnauthorized, v1.StatusReasonUnauthorized, "client certificate rejected: "+err.Error())
		}
		expired = true
	}
	tenant, name, err := pki.SiteIdentity(cert)
	if err != nil {
		return nil, false, errf(http.StatusUnauthorized, v1.StatusReasonUnauthorized, "client certificate rejected: "+err.Error())
	}
	kv, err := s.opts.Store.Get(ctx, SiteKey(tenant, name))
	if errors.Is(err, store.ErrNotFound) {
		return nil, false, errf(http.StatusForbidden, v1.StatusReasonForbidden, fmt.Sprintf("site %q no longer exists: register again with a site token", name))
	}
	if err != nil {
		return nil, false, fmt.Errorf("reading site %q: %w", name, err)
	}
	var site v1.Site
	if err := json.Unmarshal(kv.Value, &site); err != nil {
		return nil, false, fmt.Errorf("decoding site %q: %w", name, err)
	}
	site.Metadata.Tenant = tenant
	site.Metadata.ResourceVersion = fmt.Sprint(kv.ModRevision)
	if site.Spec.Decommissioned {
		return nil, false, errf(http.StatusForbidden, v1.StatusReasonForbidden, fmt.Sprintf("site %q is decommissioned", name))
	}
	serial := serialOf(cert)
	s.revMu.RLock()
	_, revoked := s.revoked[serial]
	s.revMu.RUnlock()
	if revoked {
		return nil, false, errf(http.StatusForbidden, v1.StatusReasonForbidden, fmt.Sprintf("the certificate of site %q is revoked", name))
	}
	s.revMu.RLock()
	cut, hasCut := s.cutoffs[tenant+"/"+name]
	s.revMu.RUnlock()
	// Certificate times have a one-second resolution.
	if hasCut && cert.NotBefore.Add(pki.ClockSkew).Before(cut.Truncate(time.Second)) {
		return nil, false, errf(http.StatusForbidden, v1.StatusReasonForbidden, fmt.Sprintf("the certificate of site %q was issued before the site "+
			"was decommissioned: decommission it again and bring it back with `meridian site recommission %s`", name, name))
	}
	// A certificate issued before the site (of that name) was created
	// belongs to an earlier site of the same name.
	if ct := site.Metadata.CreationTimestamp; ct != nil && cert.NotBefore.Add(pki.ClockSkew+time.Second).Before(*ct) {
		return nil, false, errf(http.StatusForbidden, v1.StatusReasonForbidden, fmt.Sprintf("the certificate predates site %q: register again", name))
	}
	s.revMu.Lock()
	key := tenant + "/" + name
	if s.seen[key] == nil {
		s.seen[key] = map[string]time.Time{}
	}
	s.seen[key][serial] = cert.NotAfter
	s.revMu.Unlock()
	return &site, expired, nil
}

// Retire is called when a site was decommissioned or deleted: it revokes
// the certificates seen for it (RevokeSeen) and, when the site is
// decommissioned, records the moment so that every certificate issued
// before it stays refused, seen or not.
func (s *Server) Retire(ctx context.Context, tenant, site string) error {
	err := s.RevokeSeen(ctx, tenant, site)
	kv, gerr := s.opts.Store.Get(ctx, SiteKey(tenant, site))
	if errors.Is(gerr, store.ErrNotFound) {
		return err
	}
	if gerr != nil {
		return errors.Join(err, fmt.Errorf("reading site %q: %w", site, gerr))
	}
	var obj v1.Site
	if uerr := json.Unmarshal(kv.Value, &obj); uerr != nil || !obj.Spec.Decommissioned {
		return err
	}
	now := s.opts.Now().UTC()
	s.revMu.Lock()
	s.cutoffs[tenant+"/"+site] = now
	s.revMu.Unlock()
	if _, perr := s.opts.Store.Txn(ctx, store.Txn{Ops: []store.Op{
		store.Put(cutoffPrefix+tenant+"/"+site, []byte(now.Format(time.RFC3339Nano)))}}); perr != nil {
		return errors.Join(err, fmt.Errorf("recording the decommission of site %q: %w", site, perr))
	}
	return err
}

// RevokeSeen revokes every certificate of the site this console has seen
// (called when a site is decommissioned or deleted), so that they stay
// refused even if the site is brought back. Each entry is kept until its
// certificate would be refused anyway (NotAfter + ReenrolGrace + clock
// skew); see PruneRevoked.
func (s *Server) RevokeSeen(ctx context.Context, tenant, site string) error {
	key := tenant + "/" + site
	s.revMu.Lock()
	serials := s.seen[key]
	delete(s.seen, key)
	var ops []store.Op
	for sn, notAfter := range serials {
		e := revokedEntry{key: revokedPrefix + tenant + "/" + site + "/" + sn,
			until: notAfter.Add(s.opts.ReenrolGrace + pki.ClockSkew).UTC().Truncate(time.Second).Add(time.Second)}
		s.revoked[sn] = e
		ops = append(ops, store.Put(e.key, []byte(e.until.Format(time.RFC3339))))
	}
	ops = append(ops, s.evictLocked()...)
	s.revMu.Unlock()
	// Entries are independent: written in transactions every backend takes.
	for len(ops) > 0 {
		batch := ops[:min(len(ops), store.MaxTxnOps)]
		ops = ops[len(batch):]
		if _, err := s.opts.Store.Txn(ctx, store.Txn{Ops: batch}); err != nil {
			return fmt.Errorf("revoking certificates of site %q: %w", site, err)
		}
	}
	return nil
}

// revokedEntry is a revoked serial: its store key and how long it must be
// kept.
type revokedEntry struct {
	key   string
	until time.Time
}

// evictLocked bounds the revoked list to MaxRevoked entries: those whose
// keep-until passed go first, then (with a warning) those that expire
// soonest. It returns the store deletions.
func (s *Server) evictLocked() []store.Op {
	var ops []store.Op
	now := s.opts.Now()
	// A certificate issued before a cutoff expired by cutoff + CertTTL and
	// is refused anyway after the grace.
	for k, cut := range s.cutoffs {
		if now.After(cut.Add(s.opts.CertTTL + s.opts.ReenrolGrace + pki.ClockSkew)) {
			delete(s.cutoffs, k)
			ops = append(ops, store.Delete(cutoffPrefix+k))
		}
	}
	for sn, e := range s.revoked {
		if now.After(e.until) {
			delete(s.revoked, sn)
			ops = append(ops, store.Delete(e.key))
		}
	}
	over := len(s.revoked) - s.opts.MaxRevoked
	if over <= 0 {
		return ops
	}
	type kv struct {
		sn string
		e  revokedEntry
	}
	all := make([]kv, 0, len(s.revoked))
	for sn, e := range s.revoked {
		all = append(all, kv{sn, e})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].e.until.Before(all[j].e.until) })
	for _, x := range all[:over] {
		delete(s.revoked, x.sn)
		ops = append(ops, store.Delete(x.e.key))
	}
	s.log.Warn("revoked site certificates over the bound: dropped those that expire soonest (a decommissioned or deleted site refuses them anyway)",
		"dropped", over, "max", s.opts.MaxRevoked)
	return ops
}

// PruneRevoked drops revoked serials whose certificates would be refused
// anyway by now (NotAfter + ReenrolGrace + clock skew passed) and keeps the
// list within MaxRevoked; it returns how many entries are left.
func (s *Server) PruneRevoked(ctx context.Context) (int, error) {
	s.revMu.Lock()
	ops := s.evictLocked()
	n := len(s.revoked)
	s.revMu.Unlock()
	for len(ops) > 0 {
		batch := ops[:min(len(ops), store.MaxTxnOps)]
		ops = ops[len(batch):]
		if _, err := s.opts.Store.Txn(ctx, store.Txn{Ops: batch}); err != nil {
			return n, fmt.Errorf("pruning revoked site certificates: %w", err)
		}
	}
	return n, nil
}

// RunPruner calls PruneRevoked every interval until ctx ends.
func (s *Server) RunPruner(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := s.PruneRevoked(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("pruning revoked site certificates", "err", err)
		}
	}
}

// IsRevoked reports whether a certificate serial (hex) is revoked.
func (s *Server) IsRevoked(serial string) bool {
	s.revMu.RLock()
	defer s.revMu.RUnlock()
	_, ok := s.revoked[serial]
	return ok
}

// RevokedCount returns how many revoked serials the console keeps.
func (s *Server) RevokedCount() int {
	s.revMu.RLock()
	defer s.revMu.RUnlock()
	return len(s.revoked)
}
