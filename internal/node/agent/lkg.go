package agent

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/meridian-platform/meridian/internal/fsutil"
)

// lastGood is the snapshot the node applied last, kept on disk sealed with
// AES-256-GCM under a key of the data directory.
type lastGood struct {
	Version string            `json:"version"`
	Objects []json.RawMessage `json:"objects"`
}

func (a *Agent) stateAEAD() (cipher.AEAD, error) {
	p := a.path(stateKeyFile)
	key, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		key = make([]byte, 32)
		rand.Read(key)
		if err := fsutil.WriteFileAtomic(p, key, 0o600); err != nil {
			return nil, fmt.Errorf("creating the snapshot key: %w", err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("reading the snapshot key: %w", err)
	}
	if len(key) != 32 {
		return nil, fmt.Errorf("snapshot key %s: want 32 bytes, have %d", p, len(key))
	}
	blk, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(blk)
}

var snapshotAAD = []byte("meridian/node/last-known-good/v1")

// saveLastGood seals and writes the snapshot (atomic rename, fsync).
func (a *Agent) saveLastGood(lg *lastGood) error {
	pt, err := json.Marshal(lg)
	if err != nil {
		return err
	}
	nonce := make([]byte, a.aead.NonceSize())
	rand.Read(nonce)
	out := a.aead.Seal(nonce, nonce, pt, snapshotAAD)
	if err := fsutil.WriteFileAtomic(a.path(snapshotFile), out, 0o600); err != nil {
		return fmt.Errorf("saving last-known-good snapshot: %w", err)
	}
	return nil
}

// loadLastGood reads the saved snapshot (nil when there is none).
func (a *Agent) loadLastGood() (*lastGood, error) {
	b, err := os.ReadFile(a.path(snapshotFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading last-known-good snapshot: %w", err)
	}
	ns := a.aead.NonceSize()
	if len(b) < ns {
		return nil, errors.New("reading last-known-good snapshot: file too short")
	}
	pt, err := a.aead.Open(nil, b[:ns], b[ns:], snapshotAAD)
	if err != nil {
		return nil, fmt.Errorf("reading last-known-good snapshot: %w", err)
	}
	var lg lastGood
	if err := json.Unmarshal(pt, &lg); err != nil {
		return nil, fmt.Errorf("reading last-known-good snapshot: %w", err)
	}
	return &lg, nil
}
