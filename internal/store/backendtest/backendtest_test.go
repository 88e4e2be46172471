package backendtest

import (
	"context"
	"testing"

	"github.com/meridian-platform/meridian/internal/store"
)

// Each gives each subtest a store of its own that works and is empty.
func TestEach(t *testing.T) {
	var seen []string
	Each(t, func(t *testing.T, st store.Store) {
		seen = append(seen, t.Name())
		ctx := context.Background()
		if res, err := st.List(ctx, "", store.ListOptions{}); err != nil || len(res.Items) != 0 {
			t.Fatalf("a fresh store holds %d keys (%v)", len(res.Items), err)
		}
		if _, err := st.Txn(ctx, store.Txn{Ops: []store.Op{store.Put("k", []byte("v"))}}); err != nil {
			t.Fatal(err)
		}
		if kv, err := st.Get(ctx, "k"); err != nil || string(kv.Value) != "v" {
			t.Fatalf("get: %q, %v", kv.Value, err)
		}
	})
	want := 2
	if testing.Short() {
		want = 1
	}
	if len(seen) != want {
		t.Fatalf("ran on %v, want %d backends", seen, want)
	}
}
