package pki

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/meridian-platform/meridian/internal/store"
	"github.com/meridian-platform/meridian/internal/store/backendtest"
)

func newTestKeyring(t *testing.T, st store.Store, master []byte, opts ...KeyringOption) *Keyring {
	t.Helper()
	kr, err := NewKeyring(context.Background(), st, master, "", opts...)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

func TestKeyringRoundTrip(t *testing.T) {
	st := backendtest.Bolt(t)
	kr := newTestKeyring(t, st, NewMasterKey())
	aad := []byte("acme/Certificate/retail/shop/spec.privateKey")
	ct, err := kr.Encrypt([]byte("s3cret"), aad)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(ct, "v1:"+kr.Primary()+":") || strings.Contains(ct, "s3cret") {
		t.Fatalf("ciphertext %q", ct)
	}
	pt, err := kr.Decrypt(ct, aad)
	if err != nil || string(pt) != "s3cret" {
		t.Fatalf("Decrypt = %q, %v", pt, err)
	}
	// Wrong associated data (the ciphertext moved to another object).
	if _, err := kr.Decrypt(ct, []byte("acme/Certificate/retail/other/spec.privateKey")); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("wrong aad: err = %v", err)
	}
	// Tampered body.
	b := []byte(ct)
	b[len(b)-3] ^= 1
	if b[len(b)-3] == '-' || b[len(b)-3] == '_' {
		b[len(b)-3] = 'A'
	}
	if _, err := kr.Decrypt(string(b), aad); err == nil {
		t.Fatal("tampered ciphertext decrypted")
	}
	// Unknown key id and malformed input.
	for _, bad := range []string{"v1:dk-0000000000000000:" + strings.SplitN(ct, ":", 3)[2], "v2:x:y", "plain", "v1::abc", "v1:dk:!!!"} {
		if _, err := kr.Decrypt(bad, aad); err == nil {
			t.Fatalf("Decrypt(%q) succeeded", bad)
		}
	}
	if _, err := kr.Decrypt("v1:dk-0000000000000000:"+strings.SplitN(ct, ":", 3)[2], aad); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("unknown key: err = %v", err)
	}
}

func TestKeyringRotateAndReencrypt(t *testing.T) {
	ctx := context.Background()
	st := backendtest.Bolt(t)
	kr := newTestKeyring(t, st, NewMasterKey())
	first := kr.Primary()
	old, _ := kr.Encrypt([]byte("one"), nil)
	second, err := kr.Rotate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if second == first || kr.Primary() != second {
		t.Fatalf("Rotate: primary %s -> %s", first, kr.Primary())
	}
	if pt, err := kr.Decrypt(old, nil); err != nil || string(pt) != "one" {
		t.Fatalf("old ciphertext after rotation: %q %v", pt, err)
	}
	re, changed, err := kr.Reencrypt(old, nil)
	if err != nil || !changed || !strings.HasPrefix(re, "v1:"+second+":") {
		t.Fatalf("Reencrypt = %q %v %v", re, changed, err)
	}
	again, changed, err := kr.Reencrypt(re, nil)
	if err != nil || changed || again != re {
		t.Fatalf("Reencrypt of current = %v %v", changed, err)
	}
	if _, _, err := kr.Reencrypt(old, []byte("wrong")); err == nil {
		t.Fatal("Reencrypt with wrong aad succeeded")
	}
}

// Two consoles sharing a store: the second sees the first's keys, and keys
// created by one after the other started are loaded on demand.
func TestKeyringSharedStore(t *testing.T) {
	ctx := context.Background()
	st := backendtest.Bolt(t)
	master := NewMasterKey()

	// Both start at once on an empty store: exactly one first key wins.
	var wg sync.WaitGroup
	krs := make([]*Keyring, 4)
	errs := make([]error, 4)
	for i := range krs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			krs[i], errs[i] = NewKeyring(ctx, st, master, "")
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("keyring %d: %v", i, err)
		}
		if krs[i].Primary() != krs[0].Primary() {
			t.Fatalf("keyring %d primary %s, keyring 0 primary %s", i, krs[i].Primary(), krs[0].Primary())
		}
	}
	a, b := krs[0], krs[1]
	newID, err := a.Rotate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ct, _ := a.Encrypt([]byte("shared"), []byte("x"))
	pt, err := b.Decrypt(ct, []byte("x"))
	if err != nil || string(pt) != "shared" {
		t.Fatalf("other console: %q %v", pt, err)
	}
	if b.Primary() != newID {
		t.Fatalf("other console primary = %s after loading %s", b.Primary(), newID)
	}
	// Named secrets are the same everywhere.
	s1, err := a.Secret(ctx, "audit-hmac/acme", 32)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := b.Secret(ctx, "audit-hmac/acme", 32)
	if err != nil || !bytes.Equal(s1, s2) {
		t.Fatalf("secret differs between consoles: %v", err)
	}
	if _, err := b.Secret(ctx, "audit-hmac/acme", 16); err == nil {
		t.Fatal("secret with a different size accepted")
	}
	kv, err := st.Get(ctx, DefaultKeyPrefix+"secrets/audit-hmac/acme")
	if err != nil || bytes.Contains(kv.Value, s1) {
		t.Fatalf("stored secret: %v (plaintext stored?)", err)
	}
}

func TestKeyringConcurrentSecret(t *testing.T) {
	ctx := context.Background()
	st := backendtest.Bolt(t)
	master := NewMasterKey()
	kr1 := newTestKeyring(t, st, master)
	kr2 := newTestKeyring(t, st, master)
	var wg sync.WaitGroup
	out := make([][]byte, 8)
	for i := range out {
		wg.Add(1)
		go func() {
			defer wg.Done()
			kr := kr1
			if i%2 == 1 {
				kr = kr2
			}
			s, err := kr.Secret(ctx, "signing", 32)
			if err != nil {
				t.Error(err)
			}
			out[i] = s
		}()
	}
	wg.Wait()
	for i := range out {
		if !bytes.Equal(out[i], out[0]) {
			t.Fatalf("secret %d differs", i)
		}
	}
}

func TestKeyringWrongMaster(t *testing.T) {
	ctx := context.Background()
	st := backendtest.Bolt(t)
	newTestKeyring(t, st, NewMasterKey())
	_, err := NewKeyring(ctx, st, NewMasterKey(), "")
	if err == nil || !strings.Contains(err.Error(), "same master key") {
		t.Fatalf("wrong master: err = %v", err)
	}
	if _, err := NewKeyring(ctx, st, []byte("short"), ""); err == nil {
		t.Fatal("short master accepted")
	}
}

func TestKeyringRewrapMaster(t *testing.T) {
	ctx := context.Background()
	st := backendtest.Bolt(t)
	oldMaster, newMaster := NewMasterKey(), NewMasterKey()
	kr := newTestKeyring(t, st, oldMaster)
	var cts []string
	for i := 0; i < 3; i++ {
		ct, _ := kr.Encrypt([]byte{byte(i)}, nil)
		cts = append(cts, ct)
		if _, err := kr.Rotate(ctx); err != nil {
			t.Fatal(err)
		}
	}
	id, err := kr.RewrapMaster(ctx, newMaster)
	if err != nil {
		t.Fatal(err)
	}
	if id != MasterKeyID(newMaster) || kr.MasterKeyID() != id {
		t.Fatalf("master id %s / %s", id, kr.MasterKeyID())
	}
	// A fresh console with the new master reads everything.
	fresh := newTestKeyring(t, st, newMaster)
	for i, ct := range cts {
		pt, err := fresh.Decrypt(ct, nil)
		if err != nil || !bytes.Equal(pt, []byte{byte(i)}) {
			t.Fatalf("ciphertext %d under new master: %v", i, err)
		}
	}
	// The old master no longer opens the store.
	if _, err := NewKeyring(ctx, st, oldMaster, ""); err == nil {
		t.Fatal("old master still opens the store after rewrap")
	}
	// Keys created after the rewrap are wrapped by the new master.
	if _, err := kr.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	newTestKeyring(t, st, newMaster)
	// A console still on the old master can take over with both keys.
	newTestKeyring(t, st, newMaster, WithPreviousMasterKey(oldMaster))
}

func FuzzParseCiphertext(f *testing.F) {
	f.Add("v1:dk-0011223344556677:AAAA")
	f.Add("v1::")
	f.Fuzz(func(t *testing.T, s string) {
		id, _, err := ParseCiphertext(s)
		if err == nil && (id == "" || strings.Contains(id, ":")) {
			t.Fatalf("bad id %q accepted", id)
		}
	})
}
