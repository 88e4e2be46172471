package pki

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/meridian-platform/meridian/internal/store"
	"github.com/meridian-platform/meridian/internal/store/backendtest"
	"github.com/meridian-platform/meridian/internal/store/etcd/etcdtest"
)

// Key rotation and master rewrap with more data keys than one etcd
// transaction takes (store.MaxTxnOps): the rewrap goes in several
// transactions, every key ends under the new master, and every ciphertext
// still opens. The race tests of keyring_race_test.go run here on etcd too.
func TestKeyringManyKeysOnEtcd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd")
	}
	ctx := context.Background()
	st := backendtest.Etcd(t, etcdtest.Start(t), "/kr/")
	oldMaster, newMaster := NewMasterKey(), NewMasterKey()
	kr := newTestKeyring(t, st, oldMaster)
	n := store.MaxTxnOps + 12
	cts := make([]string, 0, n)
	for i := 0; i < n; i++ {
		ct, err := kr.Encrypt([]byte{byte(i)}, nil)
		if err != nil {
			t.Fatal(err)
		}
		cts = append(cts, ct)
		if _, err := kr.Rotate(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := kr.RewrapMaster(ctx, newMaster); err != nil {
		t.Fatal(err)
	}
	res, err := st.List(ctx, DefaultKeyPrefix+"data/", store.ListOptions{})
	if err != nil || len(res.Items) != n+1 {
		t.Fatalf("%d data keys (%v), want %d", len(res.Items), err, n+1)
	}
	for _, kv := range res.Items {
		var rec dataKeyRecord
		if err := json.Unmarshal(kv.Value, &rec); err != nil || rec.MasterKeyID != MasterKeyID(newMaster) {
			t.Fatalf("data key %s: master %s (%v)", kv.Key, rec.MasterKeyID, err)
		}
	}
	fresh := newTestKeyring(t, st, newMaster)
	for i, ct := range cts {
		if pt, err := fresh.Decrypt(ct, nil); err != nil || len(pt) != 1 || pt[0] != byte(i) {
			t.Fatalf("ciphertext %d: %v", i, err)
		}
	}

	// The interleavings of keyring_race_test.go, on etcd.
	hs := &hookStore{Store: st}
	k := newTestKeyring(t, hs, newMaster)
	var rotated string
	hs.arm(isDataPrefix, func() {
		if rotated, err = k.Rotate(ctx); err != nil {
			t.Error(err)
		}
	})
	if err := k.Reload(ctx); err != nil || k.Primary() != rotated {
		t.Fatalf("reload of an older revision: primary %s, rotated %s, %v", k.Primary(), rotated, err)
	}
}
