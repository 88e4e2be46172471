package sites

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/meridian-platform/meridian/internal/pki"
	"github.com/meridian-platform/meridian/internal/store"
)

// The revoked serials and decommission records are kept in memory and in
// the store; consoles sharing a store (etcd) follow each other's writes
// with RunSync.

// parseRevoked reads a revoked-serial entry (serial "" when the key is
// not one).
func (s *Server) parseRevoked(kv store.KV) (string, revokedEntry) {
	i := strings.LastIndexByte(kv.Key, '/')
	if i < 0 {
		return "", revokedEntry{}
	}
	until, err := time.Parse(time.RFC3339, string(kv.Value))
	if err != nil {
		// Unreadable: keep it for as long as any certificate issued now
		// could still be used.
		until = s.opts.Now().Add(s.opts.CertTTL + s.opts.ReenrolGrace + pki.ClockSkew)
	}
	return kv.Key[i+1:], revokedEntry{key: kv.Key, until: until}
}

// parseCutoff reads a decommission record: tenant/site and when.
func (s *Server) parseCutoff(kv store.KV) (string, time.Time) {
	t, err := time.Parse(time.RFC3339Nano, string(kv.Value))
	if err != nil {
		// Unreadable: refuse every certificate issued so far.
		t = s.opts.Now()
	}
	return strings.TrimPrefix(kv.Key, cutoffPrefix), t
}

// listAll calls fn for every key under prefix, read at rev (0: now).
func (s *Server) listAll(ctx context.Context, prefix string, rev int64, fn func(store.KV)) error {
	opts := store.ListOptions{Limit: 1000, Revision: rev}
	for {
		res, err := s.opts.Store.List(ctx, prefix, opts)
		if err != nil {
			return err
		}
		for _, kv := range res.Items {
			fn(kv)
		}
		if !res.More {
			return nil
		}
		opts.After, opts.Revision = res.Items[len(res.Items)-1].Key, res.Revision
	}
}

// reload replaces the in-memory revoked serials and decommission records
// by the store's, read at rev (0: now).
func (s *Server) reload(ctx context.Context, rev int64) error {
	revoked := map[string]revokedEntry{}
	cutoffs := map[string]time.Time{}
	if err := s.listAll(ctx, revokedPrefix, rev, func(kv store.KV) {
		if sn, e := s.parseRevoked(kv); sn != "" {
			revoked[sn] = e
		}
	}); err != nil {
		return fmt.Errorf("loading revoked site certificates: %w", err)
	}
	if err := s.listAll(ctx, cutoffPrefix, rev, func(kv store.KV) {
		k, t := s.parseCutoff(kv)
		cutoffs[k] = t
	}); err != nil {
		return fmt.Errorf("loading decommissioned sites: %w", err)
	}
	s.revMu.Lock()
	s.revoked, s.cutoffs = revoked, cutoffs
	s.revMu.Unlock()
	return nil
}

// RunSync follows the revoked serials and decommission records other
// consoles of the same store write (and their pruning) until ctx ends.
func (s *Server) RunSync(ctx context.Context) {
	for {
		err := s.follow(ctx)
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("following revoked site certificates; reloading", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

func (s *Server) follow(ctx context.Context) error {
	rev, err := s.opts.Store.Revision(ctx)
	if err != nil {
		return fmt.Errorf("reading the store revision: %w", err)
	}
	if err := s.reload(ctx, rev); err != nil {
		return err
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	rch, err := s.opts.Store.Watch(wctx, revokedPrefix, rev)
	if err != nil {
		return fmt.Errorf("watching revoked site certificates: %w", err)
	}
	cch, err := s.opts.Store.Watch(wctx, cutoffPrefix, rev)
	if err != nil {
		return fmt.Errorf("watching decommissioned sites: %w", err)
	}
	for {
		var resp store.WatchResponse
		var ok, cut bool
		select {
		case <-ctx.Done():
			return nil
		case resp, ok = <-rch:
		case resp, ok = <-cch:
			cut = true
		}
		if !ok {
			return errors.New("watch closed")
		}
		if resp.Err != nil {
			return resp.Err
		}
		s.revMu.Lock()
		for _, ev := range resp.Events {
			switch {
			case cut:
				k, t := s.parseCutoff(ev.KV)
				if ev.Type == store.EventDelete {
					delete(s.cutoffs, k)
				} else {
					s.cutoffs[k] = t
				}
			default:
				sn, e := s.parseRevoked(ev.KV)
				if sn == "" {
					continue
				}
				if ev.Type == store.EventDelete {
					delete(s.revoked, sn)
				} else {
					s.revoked[sn] = e
				}
			}
		}
		s.revMu.Unlock()
	}
}
