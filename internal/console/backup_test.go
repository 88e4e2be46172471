package console

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/meridian-platform/meridian/internal/store"
	"github.com/meridian-platform/meridian/internal/store/backendtest"
)

func fillStore(t *testing.T, st store.Store, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		v := bytes.Repeat([]byte{byte(i)}, i%300) // includes empty and binary values
		if _, err := st.Txn(context.Background(), store.Txn{Ops: []store.Op{store.Put(fmt.Sprintf("/k/%05d", i), v)}}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestBackupRestoreRoundTrip(t *testing.T) {
	ctx := context.Background()
	src := backendtest.Bolt(t)
	fillStore(t, src, 2500) // several list pages
	var buf bytes.Buffer
	n, rev, err := Backup(ctx, src, &buf)
	if err != nil {
		t.Fatal(err)
	}
	if n != 2500 || rev == 0 {
		t.Fatalf("backup: %d keys at revision %d", n, rev)
	}
	dst := backendtest.Bolt(t)
	got, err := Restore(ctx, dst, bytes.NewReader(buf.Bytes()))
	if err != nil || got != n {
		t.Fatalf("restore: %d, %v", got, err)
	}
	a, _ := src.List(ctx, "", store.ListOptions{})
	b, _ := dst.List(ctx, "", store.ListOptions{})
	if len(a.Items) != len(b.Items) {
		t.Fatalf("restored %d keys, want %d", len(b.Items), len(a.Items))
	}
	for i := range a.Items {
		if a.Items[i].Key != b.Items[i].Key || !bytes.Equal(a.Items[i].Value, b.Items[i].Value) {
			t.Fatalf("key %d differs: %q vs %q", i, a.Items[i].Key, b.Items[i].Key)
		}
	}
	// A second restore into the now non-empty store is refused.
	if _, err := Restore(ctx, dst, bytes.NewReader(buf.Bytes())); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("restore into a non-empty store: %v", err)
	}
}

func TestRestoreRejectsDamagedBackups(t *testing.T) {
	ctx := context.Background()
	src := backendtest.Bolt(t)
	fillStore(t, src, 20)
	var buf bytes.Buffer
	if _, _, err := Backup(ctx, src, &buf); err != nil {
		t.Fatal(err)
	}
	good := buf.String()
	lines := strings.SplitAfter(good, "\n")
	cases := map[string]struct {
		data string
		want string
	}{
		"empty":         {"", "empty backup"},
		"not a backup":  {"{\"hello\":1}\n", "not a meridian-backup/v1 file"},
		"truncated":     {strings.Join(lines[:10], ""), "no end marker"},
		"line removed":  {strings.Join(append(append([]string{}, lines[:3]...), lines[4:]...), ""), "counts 20 keys"},
		"value altered": {strings.Replace(good, `"k":"/k/00005"`, `"k":"/k/00099"`, 1), "checksum mismatch"},
		"garbage line":  {strings.Join(lines[:2], "") + "{oops\n" + strings.Join(lines[2:], ""), "line 3"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			dst := backendtest.Bolt(t)
			_, err := Restore(ctx, dst, strings.NewReader(tc.data))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
			// Nothing was written.
			l, _ := dst.List(ctx, "", store.ListOptions{Limit: 1})
			if len(l.Items) != 0 {
				t.Fatalf("a rejected restore wrote keys")
			}
		})
	}
}
