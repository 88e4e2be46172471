package pki

import (
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestParseMasterKey(t *testing.T) {
	key := bytes.Repeat([]byte{0xab}, MasterKeySize)
	tests := []struct {
		name string
		in   string
		ok   bool
	}{
		{"base64", string(EncodeMasterKey(key)), true},
		{"hex", hex.EncodeToString(key), true},
		{"hex with spaces", "  " + hex.EncodeToString(key) + "\n\n", true},
		{"empty", "", false},
		{"short", hex.EncodeToString(key[:16]), false},
		{"garbage", "not a key", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseMasterKey([]byte(tt.in))
			if tt.ok != (err == nil) {
				t.Fatalf("err = %v, want ok=%v", err, tt.ok)
			}
			if tt.ok && !bytes.Equal(got, key) {
				t.Fatalf("got %x", got)
			}
		})
	}
}

func TestLoadMasterKeySources(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "master.key")

	if _, _, err := LoadMasterKey(path, ""); !errors.Is(err, ErrNoMasterKey) {
		t.Fatalf("missing file: err = %v, want ErrNoMasterKey", err)
	}
	gen, genID, err := GenerateMasterKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("mode = %v, want 0600", st.Mode().Perm())
	}
	if _, _, err := GenerateMasterKeyFile(path); err == nil {
		t.Fatal("GenerateMasterKeyFile overwrote an existing key")
	}
	got, id, err := LoadMasterKey(path, "")
	if err != nil || !bytes.Equal(got, gen) || id != genID {
		t.Fatalf("load from file = %x %s %v", got, id, err)
	}

	// The environment variable wins over the file.
	envKey := NewMasterKey()
	t.Setenv("MERIDIAN_TEST_MASTER_KEY", hex.EncodeToString(envKey))
	got, id, err = LoadMasterKey(path, "MERIDIAN_TEST_MASTER_KEY")
	if err != nil || !bytes.Equal(got, envKey) || id != MasterKeyID(envKey) || id == genID {
		t.Fatalf("load from env = %x %s %v", got, id, err)
	}
	t.Setenv("MERIDIAN_TEST_MASTER_KEY", "too short")
	if _, _, err := LoadMasterKey(path, "MERIDIAN_TEST_MASTER_KEY"); err == nil {
		t.Fatal("a malformed key in the environment was accepted")
	}

	// LoadOrGenerate: generates once, then loads the same key.
	p2 := filepath.Join(dir, "other.key")
	k1, id1, err := LoadOrGenerateMasterKey(p2, "")
	if err != nil {
		t.Fatal(err)
	}
	k2, id2, err := LoadOrGenerateMasterKey(p2, "")
	if err != nil || !bytes.Equal(k1, k2) || id1 != id2 {
		t.Fatalf("second LoadOrGenerate = %x %s %v, want %x %s", k2, id2, err, k1, id1)
	}
}

func FuzzParseMasterKey(f *testing.F) {
	f.Add([]byte(EncodeMasterKey(bytes.Repeat([]byte{1}, 32))))
	f.Add([]byte("00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := ParseMasterKey(b)
		if err == nil && len(k) != MasterKeySize {
			t.Fatalf("accepted a %d-byte key", len(k))
		}
	})
}
