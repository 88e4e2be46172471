package pki

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/meridian-platform/meridian/internal/store"
	"github.com/meridian-platform/meridian/internal/store/bolt"
)

// newTestStore opens a real bbolt store in a temporary directory.
func newTestStore(t *testing.T) store.Store {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "meridian.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// storeCopy returns a Txn writing key's value from src into dst.
func storeCopy(t *testing.T, src, dst store.Store, key string) store.Txn {
	t.Helper()
	kv, err := src.Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	return store.Txn{Ops: []store.Op{store.Put(key, kv.Value)}}
}
