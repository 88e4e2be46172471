package bolt

import (
	"context"
	"fmt"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/meridian-platform/meridian/internal/store"
)

// purgeChunk bounds how many log records one write transaction removes, so
// compaction never holds the writer lock for long.
const purgeChunk = 4096

// Compact discards the history of revisions up to and including rev: Watch
// and List then fail with store.ErrCompacted for revisions below rev.
// Compacting at or below an earlier compaction is a no-op; above the current
// revision it fails with store.ErrFutureRevision.
func (s *Store) Compact(ctx context.Context, rev int64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.closeMu.RLock()
	closed := s.closed
	s.closeMu.RUnlock()
	if closed {
		return store.ErrClosed
	}
	s.compactMu.Lock()
	defer s.compactMu.Unlock()
	s.mu.Lock()
	cur, done := s.rev, s.compactRev
	s.mu.Unlock()
	if rev > cur {
		return fmt.Errorf("compacting at revision %d (current %d): %w", rev, cur, store.ErrFutureRevision)
	}
	if rev <= done {
		return nil
	}
	err := s.db.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(metaCompact, u64(rev))
	})
	if err != nil {
		return fmt.Errorf("compacting at revision %d: %w", rev, err)
	}
	s.mu.Lock()
	s.compactRev = rev
	s.mu.Unlock()
	if err := s.purge(rev); err != nil {
		return fmt.Errorf("compacting at revision %d: %w", rev, err)
	}
	return nil
}

// purge removes log records at or below rev.
func (s *Store) purge(rev int64) error {
	for {
		n := 0
		err := s.db.Update(func(tx *bbolt.Tx) error {
			c := tx.Bucket(bucketLog).Cursor()
			var keys [][]byte
			for k, _ := c.First(); k != nil && len(keys) < purgeChunk; k, _ = c.Next() {
				r, err := readU64(k)
				if err != nil {
					return err
				}
				if r > rev {
					break
				}
				keys = append(keys, k)
			}
			b := tx.Bucket(bucketLog)
			for _, k := range keys {
				if err := b.Delete(k); err != nil {
					return err
				}
			}
			n = len(keys)
			return nil
		})
		if err != nil {
			return fmt.Errorf("removing history: %w", err)
		}
		if n < purgeChunk {
			return nil
		}
	}
}

func (s *Store) compactLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.opts.CompactionInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		// Errors are retried at the next tick; a failing disk shows up in
		// Txn errors first.
		if target, err := s.autoCompactTarget(time.Now()); err == nil && target > 0 {
			_ = s.Compact(context.Background(), target)
		}
	}
}

// autoCompactTarget is the highest revision automatic compaction may
// discard while keeping what Options.HistoryRevisions and
// Options.HistoryWindow ask for; 0 when nothing may go.
func (s *Store) autoCompactTarget(now time.Time) (int64, error) {
	s.mu.Lock()
	cur, done := s.rev, s.compactRev
	s.mu.Unlock()
	byCount, byTime := int64(-1), int64(-1)
	if s.opts.HistoryRevisions > 0 {
		byCount = max(cur-s.opts.HistoryRevisions, 0)
	}
	if s.opts.HistoryWindow > 0 {
		cutoff := now.Add(-s.opts.HistoryWindow).UnixNano()
		byTime = done
		err := s.view(func(tx *bbolt.Tx) error {
			c := tx.Bucket(bucketLog).Cursor()
			for k, v := c.First(); k != nil; k, v = c.Next() {
				at, err := logTime(v)
				if err != nil {
					return err
				}
				rev, err := readU64(k)
				if err != nil {
					return err
				}
				if at >= cutoff || (byCount >= 0 && rev > byCount) {
					return nil // the count rule keeps the rest anyway
				}
				byTime = rev
			}
			// Every logged change is older than the window.
			byTime = cur
			return nil
		})
		if err != nil {
			return 0, err
		}
	}
	switch {
	case byCount < 0 && byTime < 0:
		return 0, nil
	case byCount < 0:
		return byTime, nil
	case byTime < 0:
		return byCount, nil
	default:
		return min(byCount, byTime), nil
	}
}
