package etcd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meridian-platform/meridian/internal/store"
	"github.com/meridian-platform/meridian/internal/store/etcd/etcdtest"
	"github.com/meridian-platform/meridian/internal/store/storetest"
)

// One etcd serves every test of the package; each store gets its own prefix.
var (
	endpoints []string
	nextNS    atomic.Int64
)

func TestMain(m *testing.M) {
	os.Exit(func() int {
		dir, err := os.MkdirTemp("", "etcdtest")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		srv, err := etcdtest.StartServer(dir)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer srv.Close()
		endpoints = srv.Endpoints()
		return m.Run()
	}())
}

func openT(t testing.TB, opts Options) *Store {
	t.Helper()
	opts.Endpoints = endpoints
	if opts.Prefix == "" {
		opts.Prefix = "/test/" + strconv.FormatInt(nextNS.Add(1), 10) + "/"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := New(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s := openT(t, Options{})
		// A neighbour namespace with keys that sort next to ours.
		n := openT(t, Options{Prefix: s.pfx[:len(s.pfx)-1]})
		if _, err := n.Txn(context.Background(), store.Txn{Ops: []store.Op{store.Put("x", []byte("neighbour")), store.Put("/", []byte("neighbour"))}}); err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestReplicasShareState(t *testing.T) {
	a := openT(t, Options{})
	b := openT(t, Options{Prefix: a.pfx})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	from, err := a.Revision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := a.Watch(ctx, "obj/", from)
	if err != nil {
		t.Fatal(err)
	}
	rev, err := b.Txn(ctx, store.Txn{Compares: []store.Compare{{Key: "obj/x", ModRevision: 0}}, Ops: []store.Op{store.Put("obj/x", []byte("from b"))}})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-ch:
		if r.Err != nil || len(r.Events) != 1 || r.Events[0].KV.Key != "obj/x" || r.Events[0].KV.ModRevision != rev {
			t.Fatalf("watch on a saw %+v, want obj/x at %d", r, rev)
		}
	case <-ctx.Done():
		t.Fatal("write through b not seen by a watch on a")
	}
	_, err = a.Txn(ctx, store.Txn{Compares: []store.Compare{{Key: "obj/x", ModRevision: 0}}, Ops: []store.Op{store.Put("obj/x", []byte("from a"))}})
	if !store.IsConflict(err) {
		t.Fatalf("create through a of what b created: %v, want conflict", err)
	}
}

func TestSlowWatcherOverflow(t *testing.T) {
	s := openT(t, Options{WatchBacklog: 10})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	from, err := s.Revision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := s.Watch(ctx, "", from)
	if err != nil {
		t.Fatal(err)
	}
	const writes = 100
	for i := range writes {
		if _, err := s.Txn(ctx, store.Txn{Ops: []store.Op{store.Put("k", []byte(strconv.Itoa(i)))}}); err != nil {
			t.Fatal(err)
		}
	}
	last := from
	for r := range ch {
		if r.Err != nil {
			if !errors.Is(r.Err, store.ErrWatchOverflow) {
				t.Fatalf("watch ended with %v, want ErrWatchOverflow", r.Err)
			}
			if last >= from+writes {
				t.Fatalf("overflow reported after every event (last %d)", last)
			}
			return
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

func TestNewUnreachable(t *testing.T) {
	ctx := context.Background()
	start := time.Now()
	_, err := New(ctx, Options{Endpoints: []string{"http://127.0.0.1:1"}, DialTimeout: 300 * time.Millisecond})
	if err == nil {
		t.Fatal("New succeeded against a closed port")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("New took %v to fail", d)
	}
}

func TestClosedStore(t *testing.T) {
	s := openT(t, Options{})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(context.Background(), "k"); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("Get on a closed store: %v, want ErrClosed", err)
	}
	if _, err := s.Txn(context.Background(), store.Txn{Ops: []store.Op{store.Put("k", nil)}}); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("Txn on a closed store: %v, want ErrClosed", err)
	}
}

func BenchmarkStore(b *testing.B) {
	storetest.Bench(b, func(b *testing.B) store.Store { return openT(b, Options{}) })
}
