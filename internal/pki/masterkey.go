package pki

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// MasterKeySize is the length of a master key in bytes (AES-256).
const MasterKeySize = 32

// ErrNoMasterKey is returned by LoadMasterKey when neither the environment
// variable nor the file supplies a key.
var ErrNoMasterKey = errors.New("pki: no master key supplied")

// MasterKeyID returns the id of a master key: a short fingerprint that is
// stored next to every data key it wraps, so a wrong master key is reported
// as such instead of as a decryption failure.
func MasterKeyID(key []byte) string {
	sum := sha256.Sum256(append([]byte("meridian master key id\x00"), key...))
	return "mk-" + hex.EncodeToString(sum[:8])
}

// ParseMasterKey decodes a master key from its text form: standard or URL
// base64 (padded or not) or hex of exactly MasterKeySize bytes. Surrounding
// white space is ignored.
func ParseMasterKey(text []byte) ([]byte, error) {
	s := strings.TrimSpace(string(text))
	if s == "" {
		return nil, errors.New("pki: master key is empty")
	}
	decoders := []func(string) ([]byte, error){
		base64.StdEncoding.DecodeString,
		base64.RawStdEncoding.DecodeString,
		base64.URLEncoding.DecodeString,
		base64.RawURLEncoding.DecodeString,
		hex.DecodeString,
	}
	for _, dec := range decoders {
		if b, err := dec(s); err == nil && len(b) == MasterKeySize {
			return b, nil
		}
	}
	return nil, fmt.Errorf("pki: master key must be %d bytes encoded as base64 or hex", MasterKeySize)
}

// EncodeMasterKey returns the text form of a master key (standard base64 and
// a newline), as written by GenerateMasterKeyFile.
func EncodeMasterKey(key []byte) []byte {
	return []byte(base64.StdEncoding.EncodeToString(key) + "\n")
}

// LoadMasterKey loads the master key from the environment variable env when
// it is set and non-empty, otherwise from the file at path. Either may be
// empty to skip that source. It returns ErrNoMasterKey (wrapped) when neither
// supplies a key, so the caller can decide to generate one.
func LoadMasterKey(path, env string) ([]byte, string, error) {
	if env != "" {
		if v := os.Getenv(env); v != "" {
			key, err := ParseMasterKey([]byte(v))
			if err != nil {
				return nil, "", fmt.Errorf("loading master key from $%s: %w", env, err)
			}
			return key, MasterKeyID(key), nil
		}
	}
	if path == "" {
		return nil, "", fmt.Errorf("loading master key: %w", ErrNoMasterKey)
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, "", fmt.Errorf("loading master key from %s: %w", path, ErrNoMasterKey)
	}
	if err != nil {
		return nil, "", fmt.Errorf("loading master key: %w", err)
	}
	key, err := ParseMasterKey(b)
	if err != nil {
		return nil, "", fmt.Errorf("loading master key from %s: %w", path, err)
	}
	return key, MasterKeyID(key), nil
}

// NewMasterKey returns a fresh random master key.
func NewMasterKey() []byte {
	key := make([]byte, MasterKeySize)
	rand.Read(key)
	return key
}

// GenerateMasterKeyFile creates a new random master key in a new file at path
// with mode 0600 (its directory is created with mode 0700 when missing). It
// refuses to overwrite an existing file.
func GenerateMasterKeyFile(path string) ([]byte, string, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, "", fmt.Errorf("generating master key: %w", err)
	}
	key := NewMasterKey()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, "", fmt.Errorf("generating master key: %w", err)
	}
	if _, err := f.Write(EncodeMasterKey(key)); err != nil {
		f.Close()
		os.Remove(path)
		return nil, "", fmt.Errorf("generating master key %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return nil, "", fmt.Errorf("generating master key %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return nil, "", fmt.Errorf("generating master key %s: %w", path, err)
	}
	return key, MasterKeyID(key), nil
}

// LoadOrGenerateMasterKey is the embedded single-console default: it loads
// the key like LoadMasterKey and, when none is supplied, generates one into
// path. Two consoles sharing a store must be given the same key instead.
func LoadOrGenerateMasterKey(path, env string) ([]byte, string, error) {
	key, id, err := LoadMasterKey(path, env)
	if err == nil || !errors.Is(err, ErrNoMasterKey) || path == "" {
		return key, id, err
	}
	key, id, err = GenerateMasterKeyFile(path)
	if errors.Is(err, os.ErrExist) { // lost a race with another process
		return LoadMasterKey(path, "")
	}
	return key, id, err
}
