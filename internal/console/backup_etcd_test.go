package console

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/meridian-platform/meridian/internal/store"
	"github.com/meridian-platform/meridian/internal/store/backendtest"
	"github.com/meridian-platform/meridian/internal/store/etcd/etcdtest"
)

// A restore into etcd of more keys than one etcd transaction takes
// (store.MaxTxnOps), with values that together exceed etcd's request size
// limit (1.5 MiB by default): it is written in several transactions and
// every key comes back.
func TestRestoreIntoEtcd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd")
	}
	ctx := context.Background()
	src := backendtest.Bolt(t)
	const n = 3*store.MaxTxnOps + 5
	for i := 0; i < n; i++ {
		v := bytes.Repeat([]byte{byte(i)}, (i%4)*8<<10) // up to 24 KiB
		if _, err := src.Txn(ctx, store.Txn{Ops: []store.Op{store.Put(fmt.Sprintf("/k/%05d", i), v)}}); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if _, _, err := Backup(ctx, src, &buf); err != nil {
		t.Fatal(err)
	}
	dst := backendtest.Etcd(t, etcdtest.Start(t), "/restore/")
	got, err := Restore(ctx, dst, bytes.NewReader(buf.Bytes()))
	if err != nil || got != n {
		t.Fatalf("restore: %d, %v", got, err)
	}
	a, _ := src.List(ctx, "", store.ListOptions{})
	b, _ := dst.List(ctx, "", store.ListOptions{})
	if len(a.Items) != n || len(b.Items) != n {
		t.Fatalf("restored %d keys, want %d", len(b.Items), len(a.Items))
	}
	for i := range a.Items {
		if a.Items[i].Key != b.Items[i].Key || !bytes.Equal(a.Items[i].Value, b.Items[i].Value) {
			t.Fatalf("key %d differs: %q vs %q", i, a.Items[i].Key, b.Items[i].Key)
		}
	}
}
