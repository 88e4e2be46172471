package sites

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/internal/audit"
	"github.com/meridian-platform/meridian/internal/store"
)

// A registration writes two objects, the SiteToken (its use count) and the
// new Site, and each must have its own resourceVersion: a watch resumed
// from the first write's revision must still see the second. On a
// store.Batcher (bbolt) both go in one atomic TxnBatch, one revision each.
// On a store that gives one transaction one revision (etcd) the token's use
// is counted first, in a transaction that also claims the site name
// (siteClaimPrefix), and the Site is created by a second transaction that
// drops the claim. A token is never used more often than it may be (the
// use is counted, against the token's ModRevision, before the site
// exists); a registration that stops between the two transactions leaves
// its claim, which the node's next attempt with the same token and name
// completes without counting a second use.

// siteClaimPrefix keys the claims of registrations in progress:
// /sitesclaim/<tenant>/<site> -> siteClaim.
const siteClaimPrefix = "/sitesclaim/"

// claimAbandoned is how old another token's claim on a name must be before
// a registration with another token may take the name over (a
// registration's two transactions take milliseconds).
const claimAbandoned = time.Minute

func siteClaimKey(tenant, name string) string { return siteClaimPrefix + tenant + "/" + name }

// siteClaim records that a token's use was counted for a site name that
// is not created yet.
type siteClaim struct {
	Token string    `json:"token"`
	Hash  string    `json:"hash"`
	Time  time.Time `json:"time"`
}

// registration is one registration being committed.
type registration struct {
	tenant, principal, token, hash, name, from string
	idxKey                                     string
	idxRev                                     int64
	tokKey, siteKey, claimKey                  string
}

// errRetryRegistration makes register read everything again: a write
// raced this one (another console, the token edited, the audit head).
var errRetryRegistration = errors.New("sites: registration raced another write")

// registerBatched commits a registration on a store.Batcher: the token's
// use and the Site (with its history entry and audit record) in one
// TxnBatch, each at its own revision.
func (s *Server) registerBatched(ctx context.Context, r *registration, req RegisterRequest) (*v1.Site, error) {
	now := s.opts.Now().UTC()
	tokKV, tok, err := s.checkToken(ctx, r, now, false)
	if err != nil {
		return nil, err
	}
	if err := s.siteAbsent(ctx, r); err != nil {
		return nil, err
	}
	tok.Status.Uses++
	tokVal, err := json.Marshal(tok)
	if err != nil {
		return nil, err
	}
	site, ops, cmps, err := s.prepareSite(ctx, r, req, tok, now)
	if err != nil {
		return nil, err
	}
	b, _ := store.AsBatcher(s.opts.Store)
	_, err = b.TxnBatch(ctx, []store.Txn{
		{Compares: []store.Compare{{Key: r.idxKey, ModRevision: r.idxRev}, {Key: r.tokKey, ModRevision: tokKV.ModRevision},
			{Key: r.siteKey, ModRevision: 0}}, Ops: []store.Op{store.Put(r.tokKey, tokVal)}},
		{Compares: cmps, Ops: ops},
	})
	if err != nil {
		return nil, r.txnErr(err)
	}
	return site, nil
}

// registerClaimed commits a registration in two transactions (see the top
// of this file): the token's use with a claim on the name, then the Site
// without the claim.
func (s *Server) registerClaimed(ctx context.Context, r *registration, req RegisterRequest) (*v1.Site, error) {
	now := s.opts.Now().UTC()
	claimKV, claim, err := s.readClaim(ctx, r)
	if err != nil {
		return nil, err
	}
	// A claim of this token on this name: its use is already counted (an
	// earlier attempt stopped between the two transactions).
	ours := claim != nil && subtle.ConstantTimeCompare([]byte(claim.Hash), []byte(r.hash)) == 1
	tokKV, tok, err := s.checkToken(ctx, r, now, ours)
	if err != nil {
		return nil, err
	}
	if err := s.siteAbsent(ctx, r); err != nil {
		if ours {
			if rerr := s.releaseClaim(ctx, r, claimKV.ModRevision); rerr != nil {
				s.log.Warn("releasing a registration claim", "tenant", r.tenant, "site", r.name, "err", rerr)
			}
		}
		return nil, err
	}
	claimRev := claimKV.ModRevision
	if !ours {
		if claim != nil && now.Sub(claim.Time) < claimAbandoned {
			return nil, errf(http.StatusConflict, v1.StatusReasonConflict, fmt.Sprintf("site %q is being registered with another site token: retry in a minute", r.name))
		}
		tok.Status.Uses++
		tokVal, err := json.Marshal(tok)
		if err != nil {
			return nil, err
		}
		cv, err := json.Marshal(siteClaim{Token: r.token, Hash: r.hash, Time: now})
		if err != nil {
			return nil, err
		}
		rev, err := s.opts.Store.Txn(ctx, store.Txn{
			Compares: []store.Compare{{Key: r.idxKey, ModRevision: r.idxRev}, {Key: r.tokKey, ModRevision: tokKV.ModRevision},
				{Key: r.siteKey, ModRevision: 0}, {Key: r.claimKey, ModRevision: claimKV.ModRevision}},
			Ops: []store.Op{store.Put(r.tokKey, tokVal), store.Put(r.claimKey, cv)},
		})
		if err != nil {
			return nil, r.txnErr(err)
		}
		if claim != nil {
			s.log.Warn("took over an abandoned registration claim", "tenant", r.tenant, "site", r.name,
				"abandonedToken", claim.Token, "claimedAt", claim.Time)
		}
		claimRev = rev
	}
	site, ops, cmps, err := s.prepareSite(ctx, r, req, tok, now)
	if err != nil {
		return nil, err
	}
	_, err = s.opts.Store.Txn(ctx, store.Txn{
		Compares: append([]store.Compare{{Key: r.claimKey, ModRevision: claimRev}, {Key: r.siteKey, ModRevision: 0}}, cmps...),
		Ops:      append(ops, store.Delete(r.claimKey)),
	})
	var ce *store.ConflictError
	if errors.As(err, &ce) && ce.Key == r.siteKey {
		// Created meanwhile by another path: the use was not spent.
		if rerr := s.releaseClaim(ctx, r, claimRev); rerr != nil {
			s.log.Warn("releasing a registration claim", "tenant", r.tenant, "site", r.name, "err", rerr)
		}
		return nil, errSiteTaken(r.name)
	}
	if err != nil {
		// On a conflict the next attempt finds the claim and completes it.
		return nil, r.txnErr(err)
	}
	return site, nil
}

// txnErr is the answer to a failed registration transaction.
func (r *registration) txnErr(err error) error {
	var ce *store.ConflictError
	switch {
	case errors.As(err, &ce) && ce.Key == r.siteKey:
		return errSiteTaken(r.name)
	case errors.As(err, &ce) && ce.Key == r.idxKey:
		return errBadToken
	case errors.As(err, &ce):
		return errRetryRegistration
	default:
		return fmt.Errorf("registering site %q: %w", r.name, err)
	}
}

// checkToken reads the site token and checks that it may register a site:
// it exists with the presented hash, is not revoked or expired and, unless
// its use is already counted, has a use left.
func (s *Server) checkToken(ctx context.Context, r *registration, now time.Time, counted bool) (store.KV, *v1.SiteToken, error) {
	tokKV, err := s.opts.Store.Get(ctx, r.tokKey)
	if errors.Is(err, store.ErrNotFound) {
		return store.KV{}, nil, errBadToken
	}
	if err != nil {
		return store.KV{}, nil, fmt.Errorf("reading site token: %w", err)
	}
	var tok v1.SiteToken
	if err := json.Unmarshal(tokKV.Value, &tok); err != nil {
		return store.KV{}, nil, fmt.Errorf("decoding site token %q: %w", r.token, err)
	}
	if subtle.ConstantTimeCompare([]byte(tok.Status.TokenHash), []byte(r.hash)) != 1 {
		return store.KV{}, nil, errBadToken
	}
	switch {
	case tok.Spec.Revoked:
		return store.KV{}, nil, errf(http.StatusForbidden, v1.StatusReasonForbidden, fmt.Sprintf("site token %q is revoked", r.token))
	case tok.Status.ExpiresAt != nil && !now.Before(*tok.Status.ExpiresAt):
		return store.KV{}, nil, errf(http.StatusForbidden, v1.StatusReasonForbidden, fmt.Sprintf("site token %q expired at %s", r.token, tok.Status.ExpiresAt.Format(time.RFC3339)))
	case !counted && tok.Status.Uses >= tok.Spec.MaxUses:
		return store.KV{}, nil, errf(http.StatusForbidden, v1.StatusReasonForbidden, fmt.Sprintf("site token %q is used up (%d of %d registrations)", r.token, tok.Status.Uses, tok.Spec.MaxUses))
	}
	return tokKV, &tok, nil
}

// siteAbsent answers errSiteTaken when the site exists.
func (s *Server) siteAbsent(ctx context.Context, r *registration) error {
	_, err := s.opts.Store.Get(ctx, r.siteKey)
	switch {
	case err == nil:
		return errSiteTaken(r.name)
	case errors.Is(err, store.ErrNotFound):
		return nil
	default:
		return fmt.Errorf("reading site %q: %w", r.name, err)
	}
}

// prepareSite builds the Site and the writes that create it: the object,
// its first history entry and the audit record (with the audit head's
// compares).
func (s *Server) prepareSite(ctx context.Context, r *registration, req RegisterRequest, tok *v1.SiteToken, now time.Time) (*v1.Site, []store.Op, []store.Compare, error) {
	site := newSite(r.tenant, req, tok, now)
	siteVal, err := json.Marshal(site)
	if err != nil {
		return nil, nil, nil, err
	}
	after, err := s.opts.Audit.Digest(ctx, r.tenant, siteVal)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("digesting site %q: %w", r.name, err)
	}
	aops, acmps, err := s.opts.Audit.Prepare(ctx, r.tenant, audit.Record{Time: now, Principal: r.principal, Verb: "register",
		Kind: "Site", Name: r.name, ClientAddr: r.from, Outcome: audit.OutcomeAllowed, Code: http.StatusCreated,
		Reason: "registered with site token " + r.token + " (state " + site.Status.State + ")", AfterDigest: after})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("preparing audit record: %w", err)
	}
	ops := append([]store.Op{store.Put(r.siteKey, siteVal), store.Put(siteHistoryKey(r.tenant, r.name, 1), siteVal)}, aops...)
	return site, ops, acmps, nil
}

// readClaim returns the claim on the registration's site name, if any.
func (s *Server) readClaim(ctx context.Context, r *registration) (store.KV, *siteClaim, error) {
	kv, err := s.opts.Store.Get(ctx, r.claimKey)
	if errors.Is(err, store.ErrNotFound) {
		return store.KV{}, nil, nil
	}
	if err != nil {
		return store.KV{}, nil, fmt.Errorf("reading the registration claim on site %q: %w", r.name, err)
	}
	var c siteClaim
	if err := json.Unmarshal(kv.Value, &c); err != nil {
		return store.KV{}, nil, fmt.Errorf("decoding the registration claim on site %q: %w", r.name, err)
	}
	return kv, &c, nil
}

// releaseClaim drops the claim at claimRev and gives its use back to the
// token (the site was not created by it). A claim already gone was
// completed or released by someone else.
func (s *Server) releaseClaim(ctx context.Context, r *registration, claimRev int64) error {
	for attempt := 0; attempt < maxTxnAttempts; attempt++ {
		t := store.Txn{Compares: []store.Compare{{Key: r.claimKey, ModRevision: claimRev}}, Ops: []store.Op{store.Delete(r.claimKey)}}
		tokKV, err := s.opts.Store.Get(ctx, r.tokKey)
		switch {
		case errors.Is(err, store.ErrNotFound):
		case err != nil:
			return fmt.Errorf("reading site token %q: %w", r.token, err)
		default:
			var tok v1.SiteToken
			if err := json.Unmarshal(tokKV.Value, &tok); err != nil {
				return fmt.Errorf("decoding site token %q: %w", r.token, err)
			}
			if string(tok.Status.TokenHash) == r.hash && tok.Status.Uses > 0 {
				tok.Status.Uses--
				val, err := json.Marshal(&tok)
				if err != nil {
					return err
				}
				t.Compares = append(t.Compares, store.Compare{Key: r.tokKey, ModRevision: tokKV.ModRevision})
				t.Ops = append(t.Ops, store.Put(r.tokKey, val))
			}
		}
		_, err = s.opts.Store.Txn(ctx, t)
		var ce *store.ConflictError
		switch {
		case err == nil, errors.As(err, &ce) && ce.Key == r.claimKey:
			return nil
		case errors.As(err, &ce):
			continue
		default:
			return fmt.Errorf("releasing the claim on site %q: %w", r.name, err)
		}
	}
	return fmt.Errorf("releasing the claim on site %q: too many concurrent writes", r.name)
}
