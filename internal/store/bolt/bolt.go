package bolt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	bbolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/meridian-platform/meridian/internal/store"
)

// Options tunes a bolt store. The zero value gives the documented defaults.
type Options struct {
	// HistoryRevisions keeps at least this many of the latest revisions of
	// history (for Watch and List at an older revision) when compacting
	// automatically. 0 means 10000; negative turns this rule off.
	HistoryRevisions int64
	// HistoryWindow keeps at least the history written during this window.
	// 0 means 10 minutes; negative turns this rule off.
	// Automatic compaction keeps what either rule keeps.
	HistoryWindow time.Duration
	// CompactionInterval is how often automatic compaction runs.
	// 0 means one minute; negative disables automatic compaction.
	CompactionInterval time.Duration
	// WatchBacklog is how many events may wait for one slow watcher before
	// its watch ends with store.ErrWatchOverflow. 0 means 10000.
	WatchBacklog int
	// MaxBatch bounds how many transactions share one commit and fsync.
	// 0 means 512.
	MaxBatch int
	// OpenTimeout bounds the wait for the file lock another process holds.
	// 0 means 5 seconds.
	OpenTimeout time.Duration
}

func (o *Options) defaults() {
	if o.HistoryRevisions == 0 {
		o.HistoryRevisions = 10000
	}
	if o.HistoryWindow == 0 {
		o.HistoryWindow = 10 * time.Minute
	}
	if o.CompactionInterval == 0 {
		o.CompactionInterval = time.Minute
	}
	if o.WatchBacklog <= 0 {
		o.WatchBacklog = 10000
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = 512
	}
	if o.OpenTimeout <= 0 {
		o.OpenTimeout = 5 * time.Second
	}
}

// Store is a store.Store kept in one bbolt file.
type Store struct {
	db   *bbolt.DB
	opts Options

	closeMu sync.RWMutex
	closed  bool
	reqs    chan *txnReq  // to the committer; closed by Close
	stop    chan struct{} // closed by Close: ends watchers and the compactor
	wg      sync.WaitGroup
	commits sync.WaitGroup // the committer

	committed int64 // the committer's view of the revision
	commitN   atomic.Int64

	compactMu sync.Mutex // one compaction at a time

	mu         sync.Mutex // guards the fields below
	rev        int64      // revision published to readers and watchers
	compactRev int64
	subs       map[*watcher]struct{}
}

var _ store.Store = (*Store)(nil)

// Open opens or creates the store file at path.
func Open(path string, opts Options) (*Store, error) {
	opts.defaults()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("opening store %s: %w", path, err)
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{
		Timeout:         opts.OpenTimeout,
		FreelistType:    bbolt.FreelistMapType,
		InitialMmapSize: 64 << 20,
		// The freelist is rebuilt from the pages on open instead of being
		// written with every commit (as etcd does): fewer pages per fsync.
		NoFreelistSync: true,
	})
	if err != nil {
		return nil, fmt.Errorf("opening store %s: %w", path, err)
	}
	s := &Store{
		db:   db,
		opts: opts,
		reqs: make(chan *txnReq, opts.MaxBatch),
		stop: make(chan struct{}),
		subs: make(map[*watcher]struct{}),
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		for _, name := range [][]byte{bucketMeta, bucketKV, bucketLog} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		var err error
		if v := meta.Get(metaRev); v != nil {
			if s.rev, err = readU64(v); err != nil {
				return fmt.Errorf("reading revision: %w", err)
			}
		}
		if v := meta.Get(metaCompact); v != nil {
			if s.compactRev, err = readU64(v); err != nil {
				return fmt.Errorf("reading compacted revision: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("opening store %s: %w", path, err)
	}
	s.committed = s.rev
	// A compaction cut short by a crash leaves old log records behind.
	if err := s.purge(s.compactRev); err != nil {
		db.Close()
		return nil, fmt.Errorf("opening store %s: %w", path, err)
	}
	s.commits.Add(1)
	go s.commitLoop()
	if opts.CompactionInterval > 0 {
		s.wg.Add(1)
		go s.compactLoop()
	}
	return s, nil
}

// Path returns the file the store lives in.
func (s *Store) Path() string { return s.db.Path() }

func (s *Store) view(fn func(tx *bbolt.Tx) error) error {
	err := s.db.View(fn)
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return store.ErrClosed
	}
	return err
}

// Get returns key at the current revision.
func (s *Store) Get(ctx context.Context, key string) (store.KV, error) {
	if err := ctx.Err(); err != nil {
		return store.KV{}, err
	}
	var kv store.KV
	err := s.view(func(tx *bbolt.Tx) error {
		v := tx.Bucket(bucketKV).Get([]byte(key))
		if v == nil {
			return store.ErrNotFound
		}
		rec, err := decodeKV(v)
		if err != nil {
			return fmt.Errorf("reading %q: %w", key, err)
		}
		kv = store.KV{Key: key, Value: bytes.Clone(rec.value), CreateRevision: rec.create, ModRevision: rec.mod}
		return nil
	})
	return kv, err
}

// Revision returns the current revision.
func (s *Store) Revision(ctx context.Context) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.closeMu.RLock()
	closed := s.closed
	s.closeMu.RUnlock()
	if closed {
		return 0, store.ErrClosed
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rev, nil
}

// overlayState is a key's state at an older revision.
type overlayState struct {
	exists bool
	rec    kvRec
}

// List reads a page of keys under prefix at one revision. Reading at an
// older revision undoes, in memory, the logged changes made since then, so
// its cost grows with the number of writes since that revision.
func (s *Store) List(ctx context.Context, prefix string, opts store.ListOptions) (store.ListResult, error) {
	if err := ctx.Err(); err != nil {
		return store.ListResult{}, err
	}
	if opts.Limit < 0 {
		return store.ListResult{}, fmt.Errorf("listing %q: negative limit %d", prefix, opts.Limit)
	}
	var res store.ListResult
	err := s.view(func(tx *bbolt.Tx) error {
		cur, compact, err := readMeta(tx)
		if err != nil {
			return err
		}
		rev := opts.Revision
		switch {
		case rev == 0:
			rev = cur
		case rev > cur:
			return fmt.Errorf("listing %q at revision %d (current %d): %w", prefix, rev, cur, store.ErrFutureRevision)
		case rev < compact:
			return fmt.Errorf("listing %q at revision %d (compacted at %d): %w", prefix, rev, compact, store.ErrCompacted)
		}
		res.Revision = rev
		pfx := []byte(prefix)
		start := pfx
		if opts.After != "" && opts.After >= prefix {
			start = append([]byte(opts.After), 0)
		}

		// Keys changed after rev, with their state at rev.
		overlay := map[string]overlayState{}
		if rev < cur {
			c := tx.Bucket(bucketLog).Cursor()
			for k, v := c.Seek(u64(rev + 1)); k != nil; k, v = c.Next() {
				err := decodeLog(v, func(e *logEvent) error {
					if !bytes.HasPrefix(e.key, pfx) || bytes.Compare(e.key, start) < 0 {
						return nil
					}
					if _, seen := overlay[string(e.key)]; !seen {
						overlay[string(e.key)] = overlayState{exists: e.hasPrev, rec: e.prev}
					}
					return nil
				})
				if err != nil {
					return err
				}
			}
		}
		okeys := make([]string, 0, len(overlay))
		for k := range overlay {
			okeys = append(okeys, k)
		}
		sort.Strings(okeys)

		emit := func(key string, rec kvRec) bool {
			if opts.Limit > 0 && len(res.Items) == opts.Limit {
				res.More = true
				return false
			}
			res.Items = append(res.Items, store.KV{Key: key, Value: bytes.Clone(rec.value), CreateRevision: rec.create, ModRevision: rec.mod})
			return true
		}
		c := tx.Bucket(bucketKV).Cursor()
		k, v := c.Seek(start)
		i := 0
		for {
			if k != nil && !bytes.HasPrefix(k, pfx) {
				k = nil
			}
			if k == nil && i == len(okeys) {
				return nil
			}
			var cmp int
			switch {
			case k == nil:
				cmp = 1
			case i == len(okeys):
				cmp = -1
			default:
				cmp = bytes.Compare(k, []byte(okeys[i]))
			}
			if cmp < 0 {
				rec, err := decodeKV(v)
				if err != nil {
					return fmt.Errorf("reading %q: %w", k, err)
				}
				if !emit(string(k), rec) {
					return nil
				}
				k, v = c.Next()
				continue
			}
			st := overlay[okeys[i]]
			if st.exists && !emit(okeys[i], st.rec) {
				return nil
			}
			i++
			if cmp == 0 {
				k, v = c.Next()
			}
		}
	})
	if err != nil {
		return store.ListResult{}, err
	}
	return res, nil
}

func readMeta(tx *bbolt.Tx) (rev, compact int64, err error) {
	meta := tx.Bucket(bucketMeta)
	if v := meta.Get(metaRev); v != nil {
		if rev, err = readU64(v); err != nil {
			return 0, 0, fmt.Errorf("reading revision: %w", err)
		}
	}
	if v := meta.Get(metaCompact); v != nil {
		if compact, err = readU64(v); err != nil {
			return 0, 0, fmt.Errorf("reading compacted revision: %w", err)
		}
	}
	return rev, compact, nil
}

// Close waits for queued transactions to commit, ends every watch with
// store.ErrClosed and closes the file.
func (s *Store) Close() error {
	s.closeMu.Lock()
	if s.closed {
		s.closeMu.Unlock()
		return nil
	}
	s.closed = true
	close(s.reqs)
	s.closeMu.Unlock()
	s.commits.Wait()

	s.mu.Lock()
	for w := range s.subs {
		w.q.Fail(store.ErrClosed)
		delete(s.subs, w)
	}
	s.mu.Unlock()
	close(s.stop)
	s.wg.Wait()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("closing store %s: %w", s.db.Path(), err)
	}
	return nil
}

// compactedRevision returns the current and the compacted revision.
func (s *Store) compactedRevision() (rev, compact int64, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rev, s.compactRev, nil
}
