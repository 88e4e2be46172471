package bolt_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/meridian-platform/meridian/internal/store"
	"github.com/meridian-platform/meridian/internal/store/bolt"
)

func Example() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	s, err := bolt.Open(filepath.Join(dir, "meridian.db"), bolt.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()
	ctx := context.Background()

	// Create only if absent, together with an audit record.
	rev, err := s.Txn(ctx, store.Txn{
		Compares: []store.Compare{{Key: "objects/retail/shop", ModRevision: 0}},
		Ops: []store.Op{
			store.Put("objects/retail/shop", []byte(`{"spec":{}}`)),
			store.Put("audit/acme/000001", []byte(`{"verb":"create"}`)),
		},
	})
	fmt.Println(rev, err)

	// A second create loses and names the key.
	_, err = s.Txn(ctx, store.Txn{
		Compares: []store.Compare{{Key: "objects/retail/shop", ModRevision: 0}},
		Ops:      []store.Op{store.Put("objects/retail/shop", []byte(`{}`))},
	})
	fmt.Println(err)

	// Replay everything after revision 0, then follow live changes.
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch, _ := s.Watch(wctx, "objects/", 0)
	r := <-ch
	fmt.Println(r.Events[0].KV.Key, r.Events[0].KV.ModRevision)
	// Output:
	// 1 <nil>
	// store: conflict on "objects/retail/shop": expected mod revision 0, found 1
	// objects/retail/shop 1
}
