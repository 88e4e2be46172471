package pki

import (
	"context"
	"crypto/cipher"
	"encoding/json"
	"strings"
	"sync"
	"testing"

	"github.com/meridian-platform/meridian/internal/store"
	"github.com/meridian-platform/meridian/internal/store/backendtest"
)

// hookStore is a real store that runs a hook once, right after the first
// List whose prefix satisfies match returns: the hook is another writer
// committing between two reads of the code under test (a deterministic
// interleaving, no sleeps).
type hookStore struct {
	store.Store
	mu    sync.Mutex
	match func(prefix string) bool
	hook  func()
}

func (h *hookStore) List(ctx context.Context, prefix string, opts store.ListOptions) (store.ListResult, error) {
	res, err := h.Store.List(ctx, prefix, opts)
	h.mu.Lock()
	hook := h.hook
	if hook != nil && h.match(prefix) {
		h.hook = nil
	} else {
		hook = nil
	}
	h.mu.Unlock()
	if hook != nil {
		hook()
	}
	return res, err
}

func (h *hookStore) arm(match func(string) bool, hook func()) {
	h.mu.Lock()
	h.match, h.hook = match, hook
	h.mu.Unlock()
}

func isDataPrefix(p string) bool { return strings.HasSuffix(p, "/data/") }

// A keyring loading an empty store while another console creates the first
// key (data key and pointer in one transaction) between the keyring's read
// of the data keys and its read of the pointer: both reads are at one
// revision, so it sees neither (and then creates or adopts the key), never
// the pointer without its key. Reading "at" Store.Revision, 0 on an empty
// store, read the pointer at the newer current revision.
func TestKeyringReloadEmptyStoreRace(t *testing.T) {
	ctx := context.Background()
	base := backendtest.Bolt(t)
	master := NewMasterKey()
	hs := &hookStore{Store: base}
	var other *Keyring
	hs.arm(isDataPrefix, func() {
		var err error
		if other, err = NewKeyring(ctx, base, master, ""); err != nil {
			t.Error(err)
		}
	})
	k := &Keyring{st: hs, prefix: DefaultKeyPrefix, masterID: MasterKeyID(master),
		masters: map[string][]byte{MasterKeyID(master): master}, keys: map[string]cipher.AEAD{}, secrets: map[string][]byte{}}
	if err := k.reload(ctx); err != nil {
		t.Fatalf("reload racing the first key: %v", err)
	}
	if other == nil {
		t.Fatal("the hook did not run")
	}
	if p := k.Primary(); p != "" {
		t.Fatalf("reload saw primary %s written after the data keys were read", p)
	}
	// And through NewKeyring: it loses the create race and adopts the key.
	hs2 := &hookStore{Store: backendtest.Bolt(t)}
	hs2.arm(isDataPrefix, func() {
		if other, err := NewKeyring(ctx, hs2.Store, master, ""); err != nil || other.Primary() == "" {
			t.Errorf("other console: %v", err)
		}
	})
	kr, err := NewKeyring(ctx, hs2, master, "")
	if err != nil {
		t.Fatal(err)
	}
	ct, err := kr.Encrypt([]byte("x"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if id, _, _ := ParseCiphertext(ct); id != kr.Primary() {
		t.Fatalf("sealed with %s, primary %s", id, kr.Primary())
	}
}

// A reload that read the data keys (and so the pointer) at a revision older
// than a Rotate of the same keyring that finished in between must not move
// the primary back to the older key.
func TestKeyringReloadDoesNotUndoRotate(t *testing.T) {
	ctx := context.Background()
	base := backendtest.Bolt(t)
	master := NewMasterKey()
	hs := &hookStore{Store: base}
	k := newTestKeyring(t, hs, master)
	first := k.Primary()
	var rotated string
	hs.arm(isDataPrefix, func() {
		var err error
		if rotated, err = k.Rotate(ctx); err != nil {
			t.Error(err)
		}
	})
	if err := k.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if rotated == "" || rotated == first {
		t.Fatalf("rotation in the hook: %q (first %q)", rotated, first)
	}
	if p := k.Primary(); p != rotated {
		t.Fatalf("primary %s after a reload of an older revision, want the rotated %s", p, rotated)
	}
	ct, _ := k.Encrypt([]byte("x"), nil)
	if id, _, _ := ParseCiphertext(ct); id != rotated {
		t.Fatalf("sealed with %s, want %s", id, rotated)
	}
	// A later reload (at a newer revision) still agrees.
	if err := k.Reload(ctx); err != nil || k.Primary() != rotated {
		t.Fatalf("second reload: %s %v", k.Primary(), err)
	}
}

// RewrapMaster while another console (still on the old master) rotates
// after the rewrap read the data keys: no data key is left wrapped by the
// old master once RewrapMaster returns.
func TestKeyringRewrapMasterRacesRotate(t *testing.T) {
	ctx := context.Background()
	base := backendtest.Bolt(t)
	oldMaster, newMaster := NewMasterKey(), NewMasterKey()
	hs := &hookStore{Store: base}
	k := newTestKeyring(t, hs, oldMaster)
	other := newTestKeyring(t, base, oldMaster)
	var made string
	hs.arm(isDataPrefix, func() {
		var err error
		if made, err = other.Rotate(ctx); err != nil {
			t.Error(err)
		}
	})
	if _, err := k.RewrapMaster(ctx, newMaster); err != nil {
		t.Fatal(err)
	}
	if made == "" {
		t.Fatal("the hook did not run")
	}
	res, err := base.List(ctx, DefaultKeyPrefix+"data/", store.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range res.Items {
		var rec dataKeyRecord
		if err := json.Unmarshal(kv.Value, &rec); err != nil {
			t.Fatal(err)
		}
		if rec.MasterKeyID != MasterKeyID(newMaster) {
			t.Fatalf("data key %s still wrapped by %s after RewrapMaster", rec.ID, rec.MasterKeyID)
		}
	}
	if len(res.Items) != 2 {
		t.Fatalf("%d data keys, want 2", len(res.Items))
	}
	// A console with only the new master opens the store and the key the
	// other console made during the rewrap.
	fresh := newTestKeyring(t, base, newMaster)
	ct, _ := other.Encrypt([]byte("y"), nil)
	if pt, err := fresh.Decrypt(ct, nil); err != nil || string(pt) != "y" {
		t.Fatalf("key made during the rewrap: %q %v", pt, err)
	}
}

// Readers and Rotate concurrently (for the race detector): every
// ciphertext opens, and the primary never goes back.
func TestKeyringConcurrentRotateReaders(t *testing.T) {
	ctx := context.Background()
	st := backendtest.Bolt(t)
	master := NewMasterKey()
	a := newTestKeyring(t, st, master)
	b := newTestKeyring(t, st, master)
	var wg sync.WaitGroup
	done := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(done)
		for i := 0; i < 30; i++ {
			if _, err := a.Rotate(ctx); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for g := 0; g < 2; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				if err := b.Reload(ctx); err != nil {
					t.Error(err)
					return
				}
				ct, err := a.Encrypt([]byte("z"), nil)
				if err != nil {
					t.Error(err)
					return
				}
				if _, err := b.Decrypt(ct, nil); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := b.Reload(ctx); err != nil || b.Primary() != a.Primary() {
		t.Fatalf("after rotations: b %s, a %s, %v", b.Primary(), a.Primary(), err)
	}
}
