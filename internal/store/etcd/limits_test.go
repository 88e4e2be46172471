package etcd

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/meridian-platform/meridian/internal/store"
)

// etcd takes store.MaxTxnOps operations and compares in one transaction;
// one more is refused with store.ErrTooManyOps, and nothing is written.
func TestTxnOpsLimit(t *testing.T) {
	s := openT(t, Options{})
	ctx := context.Background()
	txn := func(n int, prefix string) store.Txn {
		var t store.Txn
		for i := 0; i < n; i++ {
			k := fmt.Sprintf("%s/%03d", prefix, i)
			t.Compares = append(t.Compares, store.Compare{Key: k})
			t.Ops = append(t.Ops, store.Put(k, []byte("v")))
		}
		return t
	}
	if _, err := s.Txn(ctx, txn(store.MaxTxnOps, "ok")); err != nil {
		t.Fatalf("%d ops: %v", store.MaxTxnOps, err)
	}
	_, err := s.Txn(ctx, txn(store.MaxTxnOps+1, "big"))
	if !errors.Is(err, store.ErrTooManyOps) {
		t.Fatalf("%d ops: %v", store.MaxTxnOps+1, err)
	}
	if res, err := s.List(ctx, "big/", store.ListOptions{}); err != nil || len(res.Items) != 0 {
		t.Fatalf("refused transaction wrote %d keys (%v)", len(res.Items), err)
	}
	// Over etcd's request limit (1.5 MiB), and over the client's (2 MiB).
	for _, size := range []int{800 << 10, 1 << 20} {
		big := store.Txn{Ops: []store.Op{store.Put("huge/a", make([]byte, size)), store.Put("huge/b", make([]byte, size))}}
		if _, err := s.Txn(ctx, big); !errors.Is(err, store.ErrTxnTooLarge) {
			t.Fatalf("transaction of 2 x %d bytes: %v", size, err)
		}
	}
	if _, ok := store.AsBatcher(s); ok {
		t.Fatal("etcd claims to be a store.Batcher (one revision per transaction)")
	}
}
