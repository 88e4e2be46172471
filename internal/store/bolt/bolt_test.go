package bolt

import (
	"context"
	"errors"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/meridian-platform/meridian/internal/store"
	"github.com/meridian-platform/meridian/internal/store/storetest"
)

func openT(t testing.TB, path string, opts Options) *Store {
	t.Helper()
	s, err := Open(path, opts)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return openT(t, filepath.Join(t.TempDir(), "meridian.db"), Options{CompactionInterval: -1})
	})
}

func TestConformancePrefixed(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s := openT(t, filepath.Join(t.TempDir(), "meridian.db"), Options{CompactionInterval: -1})
		// Something outside the prefix that must stay invisible.
		if _, err := s.Txn(context.Background(), store.Txn{Ops: []store.Op{store.Put("other", []byte("x")), store.Put("tenant/", []byte("x"))}}); err != nil {
			t.Fatal(err)
		}
		return store.Prefixed(s, "tenant/a/")
	})
}

func TestRevisionSurvivesReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "meridian.db")
	ctx := context.Background()
	s, err := Open(path, Options{CompactionInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	var last int64
	for i := range 5 {
		if last, err = s.Txn(ctx, store.Txn{Ops: []store.Op{store.Put("k"+strconv.Itoa(i), []byte("v"))}}); err != nil {
			t.Fatal(err)
		}
	}
	// Deleting everything and compacting all history must not reset the
	// revision.
	for i := range 5 {
		if last, err = s.Txn(ctx, store.Txn{Ops: []store.Op{store.Delete("k" + strconv.Itoa(i))}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Compact(ctx, last); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Txn(ctx, store.Txn{Ops: []store.Op{store.Put("x", nil)}}); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("txn on closed store: %v", err)
	}

	s = openT(t, path, Options{CompactionInterval: -1})
	if rev, _ := s.Revision(ctx); rev != last {
		t.Fatalf("revision after reopen = %d, want %d", rev, last)
	}
	rev, err := s.Txn(ctx, store.Txn{Ops: []store.Op{store.Put("k0", []byte("again"))}})
	if err != nil || rev != last+1 {
		t.Fatalf("txn after reopen = %d, %v; want %d", rev, err, last+1)
	}
	if kv, _ := s.Get(ctx, "k0"); kv.CreateRevision != rev {
		t.Fatalf("recreated key has create revision %d, want %d", kv.CreateRevision, rev)
	}
	if _, err := s.Watch(ctx, "", last-1); !errors.Is(err, store.ErrCompacted) {
		t.Fatalf("watch below the persisted compaction: %v", err)
	}
}

func TestSlowWatcherOverflow(t *testing.T) {
	s := openT(t, filepath.Join(t.TempDir(), "meridian.db"), Options{CompactionInterval: -1, WatchBacklog: 20})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := s.Watch(ctx, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	// Nobody reads ch: writers must still finish.
	done := make(chan error, 1)
	go func() {
		for i := range 200 {
			if _, err := s.Txn(ctx, store.Txn{Ops: []store.Op{store.Put("k", []byte(strconv.Itoa(i)))}}); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("writers blocked by a watcher that does not read")
	}
	// The watch delivers a gap-free prefix of the changes, then the error.
	var last int64
	for r := range ch {
		if r.Err != nil {
			if !errors.Is(r.Err, store.ErrWatchOverflow) {
				t.Fatalf("watch ended with %v, want ErrWatchOverflow", r.Err)
			}
			if last == 0 || last >= 200 {
				t.Fatalf("overflow after revision %d", last)
			}
			// Resuming from the last revision seen gets the rest.
			ch2, err := s.Watch(ctx, "", last)
			if err != nil {
				t.Fatal(err)
			}
			for r := range ch2 {
				if r.Err != nil {
					t.Fatal(r.Err)
				}
				for _, e := range r.Events {
					if e.KV.ModRevision != last+1 {
						t.Fatalf("resumed watch: revision %d after %d", e.KV.ModRevision, last)
					}
					last = e.KV.ModRevision
				}
				if last == 200 {
					return
				}
			}
		}
		for _, e := range r.Events {
			if e.KV.ModRevision != last+1 {
				t.Fatalf("revision %d after %d", e.KV.ModRevision, last)
			}
			last = e.KV.ModRevision
		}
	}
	t.Fatal("watch closed without ErrWatchOverflow")
}

func TestAutoCompaction(t *testing.T) {
	s := openT(t, filepath.Join(t.TempDir(), "meridian.db"), Options{
		CompactionInterval: 5 * time.Millisecond,
		HistoryRevisions:   10,
		HistoryWindow:      -1,
	})
	ctx := context.Background()
	var last int64
	var err error
	for i := range 50 {
		if last, err = s.Txn(ctx, store.Txn{Ops: []store.Op{store.Put("k", []byte(strconv.Itoa(i)))}}); err != nil {
			t.Fatal(err)
		}
	}
	// Compaction marks the revision first, then removes the records.
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := s.List(ctx, "", store.ListOptions{Revision: last - 11})
		n := 0
		s.view(func(tx *bbolt.Tx) error { n = tx.Bucket(bucketLog).Stats().KeyN; return nil })
		if errors.Is(err, store.ErrCompacted) && n == 10 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("history older than 10 revisions still there: list err %v, %d log records (want 10)", err, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// The last 10 revisions stay.
	if _, err := s.List(ctx, "", store.ListOptions{Revision: last - 10}); err != nil {
		t.Fatalf("list within the kept history: %v", err)
	}
}

func TestAutoCompactionWindow(t *testing.T) {
	s := openT(t, filepath.Join(t.TempDir(), "meridian.db"), Options{CompactionInterval: -1, HistoryRevisions: -1, HistoryWindow: time.Hour})
	ctx := context.Background()
	for i := range 5 {
		if _, err := s.Txn(ctx, store.Txn{Ops: []store.Op{store.Put("k", []byte(strconv.Itoa(i)))}}); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now()
	if got, err := s.autoCompactTarget(now); err != nil || got != 0 {
		t.Fatalf("target within the window = %d, %v; want 0", got, err)
	}
	if got, err := s.autoCompactTarget(now.Add(2 * time.Hour)); err != nil || got != 5 {
		t.Fatalf("target after the window = %d, %v; want 5", got, err)
	}
	s.opts.HistoryRevisions = 2
	if got, err := s.autoCompactTarget(now.Add(2 * time.Hour)); err != nil || got != 3 {
		t.Fatalf("target with both rules = %d, %v; want 3 (count rule keeps more)", got, err)
	}
}

func BenchmarkStore(b *testing.B) {
	storetest.Bench(b, func(b *testing.B) store.Store {
		return openT(b, filepath.Join(b.TempDir(), "meridian.db"), Options{CompactionInterval: -1})
	})
}

func TestGroupCommit(t *testing.T) {
	s := openT(t, filepath.Join(t.TempDir(), "meridian.db"), Options{CompactionInterval: -1})
	const n = 64
	ctx := context.Background()
	before := s.commitN.Load()
	errs := make(chan error, n)
	revs := make(chan int64, n)
	start := make(chan struct{})
	for i := range n {
		go func() {
			<-start
			rev, err := s.Txn(ctx, store.Txn{Ops: []store.Op{store.Put("g/"+strconv.Itoa(i), []byte("v")), store.Put("g/"+strconv.Itoa(i)+"/b", []byte("v"))}})
			errs <- err
			revs <- rev
		}()
	}
	close(start)
	seen := map[int64]bool{}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
		rev := <-revs
		if seen[rev] {
			t.Fatalf("two transactions got revision %d", rev)
		}
		seen[rev] = true
	}
	commits := s.commitN.Load() - before
	t.Logf("%d transactions in %d commits", n, commits)
	if commits >= n {
		t.Fatalf("%d transactions took %d commits: nothing was batched", n, commits)
	}
}
