package bolt

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	bbolt "go.etcd.io/bbolt"

	"github.com/meridian-platform/meridian/internal/store"
	"github.com/meridian-platform/meridian/internal/store/internal/watchq"
)

// Replay reads at most this many revisions, or about this many bytes of
// values, per bbolt read transaction, so a long replay never holds one read
// transaction open (which would stop the file from growing).
const (
	replayRevs  = 512
	replayBytes = 4 << 20
)

type watcher struct {
	prefix string
	after  int64 // only changes after this revision are queued
	q      *watchq.Queue
}

// Watch streams the changes under prefix after fromRevision. History up to
// the revision current at the call is read from the log in chunks; the
// watcher is subscribed to live commits in the same critical section that
// fixes that revision, so nothing is missed or seen twice. A consumer that
// falls more than Options.WatchBacklog events behind gets
// store.ErrWatchOverflow as its last response.
func (s *Store) Watch(ctx context.Context, prefix string, fromRevision int64) (<-chan store.WatchResponse, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if fromRevision < 0 {
		fromRevision = 0
	}
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return nil, store.ErrClosed
	}
	s.mu.Lock()
	if fromRevision < s.compactRev {
		compact := s.compactRev
		s.mu.Unlock()
		return nil, fmt.Errorf("watching %q from revision %d (compacted at %d): %w", prefix, fromRevision, compact, store.ErrCompacted)
	}
	upTo := s.rev
	w := &watcher{prefix: prefix, after: max(fromRevision, upTo), q: watchq.New(s.opts.WatchBacklog)}
	s.subs[w] = struct{}{}
	s.mu.Unlock()

	out := make(chan store.WatchResponse, 16)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(out)
		defer func() {
			s.mu.Lock()
			delete(s.subs, w)
			s.mu.Unlock()
		}()
		if fromRevision < upTo {
			if err := s.replay(ctx, prefix, fromRevision, upTo, out); err != nil {
				watchq.Send(ctx, s.stop, out, store.WatchResponse{Err: err})
				return
			}
		}
		w.q.Pump(ctx, s.stop, out)
	}()
	return out, nil
}

// replay sends the logged changes under prefix in (from, to].
func (s *Store) replay(ctx context.Context, prefix string, from, to int64, out chan<- store.WatchResponse) error {
	pfx := []byte(prefix)
	next := from + 1
	for next <= to {
		var resp store.WatchResponse
		var read int
		err := s.view(func(tx *bbolt.Tx) error {
			_, compact, err := readMeta(tx)
			if err != nil {
				return err
			}
			if next-1 < compact {
				return fmt.Errorf("watching %q from revision %d (compacted at %d): %w", prefix, next-1, compact, store.ErrCompacted)
			}
			size := 0
			c := tx.Bucket(bucketLog).Cursor()
			for k, v := c.Seek(u64(next)); k != nil && read < replayRevs && size < replayBytes; k, v = c.Next() {
				rev, err := readU64(k)
				if err != nil {
					return err
				}
				if rev > to {
					break
				}
				err = decodeLog(v, func(e *logEvent) error {
					if bytes.HasPrefix(e.key, pfx) {
						resp.Events = append(resp.Events, toEvent(rev, e, true))
						size += len(e.value) + len(e.prev.value)
					}
					return nil
				})
				if err != nil {
					return fmt.Errorf("reading revision %d: %w", rev, err)
				}
				read++
				next = rev + 1
			}
			return nil
		})
		if err != nil {
			return err
		}
		if read == 0 {
			return nil
		}
		if len(resp.Events) > 0 && !watchq.Send(ctx, s.stop, out, resp) {
			return nil
		}
	}
	return nil
}

// publish hands one commit's changes to the watchers and makes rev the
// current revision. Watchers whose queue overflowed are dropped; their
// goroutine reports store.ErrWatchOverflow.
func (s *Store) publish(rev int64, pubs []revEvents) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rev = rev
	for w := range s.subs {
		var evs []store.Event
		for _, p := range pubs {
			if p.rev <= w.after {
				continue
			}
			for _, e := range p.events {
				if strings.HasPrefix(e.KV.Key, w.prefix) {
					evs = append(evs, e)
				}
			}
		}
		if len(evs) > 0 && !w.q.Push(store.WatchResponse{Events: evs}) {
			delete(s.subs, w)
		}
	}
}
