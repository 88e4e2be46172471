package audit

import (
	"context"
	"testing"

	"github.com/meridian-platform/meridian/internal/pki"
	"github.com/meridian-platform/meridian/internal/store"
)

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
