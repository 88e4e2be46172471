package pki

import (
	"context"
	"testing"

	"github.com/meridian-platform/meridian/internal/store"
)

// storeCopy returns a Txn writing key's value from src into dst.
func storeCopy(t *testing.T, src, dst store.Store, key string) store.Txn {
	t.Helper()
	kv, err := src.Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	return store.Txn{Ops: []store.Op{store.Put(key, kv.Value)}}
}
