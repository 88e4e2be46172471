package audit

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/meridian-platform/meridian/internal/pki"
	"github.com/meridian-platform/meridian/internal/store"
	"github.com/meridian-platform/meridian/internal/store/bolt"
	"github.com/meridian-platform/meridian/internal/store/etcd"
	"github.com/meridian-platform/meridian/internal/store/etcd/etcdtest"
)

func openBolt(t *testing.T) store.Store { return openBoltB(t) }

func openBoltB(t testing.TB) store.Store {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "meridian.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func openEtcd(t *testing.T, endpoints []string) store.Store {
	t.Helper()
	st, err := etcd.New(context.Background(), etcd.Options{Endpoints: endpoints, Prefix: "/" + t.Name() + "/"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// forEachBackend runs fn on a fresh bbolt store and on a real in-process etcd.
func forEachBackend(t *testing.T, fn func(t *testing.T, st store.Store)) {
	t.Run("bolt", func(t *testing.T) { fn(t, openBolt(t)) })
	t.Run("etcd", func(t *testing.T) {
		if testing.Short() {
			t.Skip("starts etcd")
		}
		fn(t, openEtcd(t, etcdtest.Start(t)))
	})
}

func newKeyring(t *testing.T, st store.Store, master []byte) *pki.Keyring {
	t.Helper()
	kr, err := pki.NewKeyring(context.Background(), st, master, "")
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

func newLog(t *testing.T, st store.Store, opts Options) *Log {
	t.Helper()
	return New(st, newKeyring(t, st, pki.NewMasterKey()), opts)
}

func keyringB(t testing.TB, st store.Store) *pki.Keyring {
	t.Helper()
	kr, err := pki.NewKeyring(context.Background(), st, pki.NewMasterKey(), "")
	if err != nil {
		t.Fatal(err)
	}
	return kr
}
