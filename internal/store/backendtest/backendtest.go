package backendtest

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/meridian-platform/meridian/internal/store"
	"github.com/meridian-platform/meridian/internal/store/bolt"
	"github.com/meridian-platform/meridian/internal/store/etcd"
	"github.com/meridian-platform/meridian/internal/store/etcd/etcdtest"
)

// Bolt opens a bbolt store in a temporary directory of the test; it is
// closed when the test ends.
func Bolt(t testing.TB) store.Store {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "meridian.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// Etcd opens a store on the etcd at endpoints (see etcdtest.Start) with
// its keys under prefix; it is closed when the test ends.
func Etcd(t testing.TB, endpoints []string, prefix string) store.Store {
	t.Helper()
	st, err := etcd.New(context.Background(), etcd.Options{Endpoints: endpoints, Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// Each runs f in subtest "bolt" on a fresh bbolt store and in subtest
// "etcd" on a store in a fresh in-process etcd (skipped with -short).
func Each(t *testing.T, f func(t *testing.T, st store.Store)) {
	t.Run("bolt", func(t *testing.T) { f(t, Bolt(t)) })
	t.Run("etcd", func(t *testing.T) {
		if testing.Short() {
			t.Skip("starts etcd")
		}
		f(t, Etcd(t, etcdtest.Start(t), "/"+t.Name()+"/"))
	})
}
