package authn

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"sync"
	"time"
)

// MaxJWKSBytes bounds a JWKS document.
const MaxJWKSBytes = 1 << 20

// jwk is one JSON Web Key (RFC 7517), public parts only.
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	N   string `json:"n"`
	E   string `json:"e"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// Key is a verification key from a JWKS.
type Key struct {
	ID  string
	Alg string // "" when the JWK does not restrict it
	Pub crypto.PublicKey
}

// ParseJWKS parses a JWKS document. Keys that are not for signatures or
// whose type is unknown are skipped; a malformed key is an error.
func ParseJWKS(doc []byte) (map[string]Key, error) {
	var set struct {
		Keys []jwk `json:"keys"`
	}
	if err := json.Unmarshal(doc, &set); err != nil {
		return nil, fmt.Errorf("parsing JWKS: %w", err)
	}
	out := map[string]Key{}
	for i, k := range set.Keys {
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		pub, err := k.public()
		if err != nil {
			return nil, fmt.Errorf("parsing JWKS key %d (kid %q): %w", i, k.Kid, err)
		}
		if pub == nil {
			continue
		}
		out[k.Kid] = Key{ID: k.Kid, Alg: k.Alg, Pub: pub}
	}
	return out, nil
}

func b64(s string) ([]byte, error) { return base64.RawURLEncoding.DecodeString(s) }

func (k *jwk) public() (crypto.PublicKey, error) {
	switch k.Kty {
	case "RSA":
		n, err := b64(k.N)
		if err != nil || len(n) == 0 {
			return nil, errors.New("bad modulus")
		}
		e, err := b64(k.E)
		if err != nil || len(e) == 0 || len(e) > 4 {
			return nil, errors.New("bad exponent")
		}
		if len(n) < 256 {
			return nil, errors.New("RSA keys shorter than 2048 bits are refused")
		}
		return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}, nil
	case "EC":
		var c elliptic.Curve
		switch k.Crv {
		case "P-256":
			c = elliptic.P256()
		case "P-384":
			c = elliptic.P384()
		case "P-521":
			c = elliptic.P521()
		default:
			return nil, fmt.Errorf("unsupported curve %q", k.Crv)
		}
		x, err1 := b64(k.X)
		y, err2 := b64(k.Y)
		if err1 != nil || err2 != nil {
			return nil, errors.New("bad coordinates")
		}
		size := (c.Params().BitSize + 7) / 8
		if len(x) != size || len(y) != size {
			return nil, errors.New("bad coordinate length")
		}
		raw := append(append([]byte{4}, x...), y...)
		pub, err := ecdsa.ParseUncompressedPublicKey(c, raw)
		if err != nil {
			return nil, fmt.Errorf("point not on curve: %w", err)
		}
		return pub, nil
	case "OKP":
		if k.Crv != "Ed25519" {
			return nil, fmt.Errorf("unsupported curve %q", k.Crv)
		}
		x, err := b64(k.X)
		if err != nil || len(x) != ed25519.PublicKeySize {
			return nil, errors.New("bad Ed25519 key")
		}
		return ed25519.PublicKey(x), nil
	}
	return nil, nil
}

// KeySource loads a JWKS document.
type KeySource interface {
	Load(ctx context.Context) ([]byte, error)
}

// FileSource reads a JWKS from a file.
type FileSource struct{ Path string }

// Load implements KeySource.
func (f FileSource) Load(context.Context) ([]byte, error) {
	fh, err := os.Open(f.Path)
	if err != nil {
		return nil, fmt.Errorf("reading JWKS file: %w", err)
	}
	defer fh.Close()
	b, err := io.ReadAll(io.LimitReader(fh, MaxJWKSBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading JWKS file %s: %w", f.Path, err)
	}
	if len(b) > MaxJWKSBytes {
		return nil, fmt.Errorf("JWKS file %s is larger than %d bytes", f.Path, MaxJWKSBytes)
	}
	return b, nil
}

// URLSource fetches a JWKS over HTTP(S).
type URLSource struct {
	URL    string
	Client *http.Client // default: 5 s timeout
}

// Load implements KeySource.
func (u URLSource) Load(ctx context.Context) ([]byte, error) {
	c := u.Client
	if c == nil {
		c = &http.Client{Timeout: 5 * time.Second}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.URL, nil)
	if err != nil {
		return nil, fmt.Errorf("fetching JWKS: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetching JWKS: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetching JWKS from %s: status %d", u.URL, resp.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxJWKSBytes+1))
	if err != nil {
		return nil, fmt.Errorf("fetching JWKS from %s: %w", u.URL, err)
	}
	if len(b) > MaxJWKSBytes {
		return nil, fmt.Errorf("JWKS from %s is larger than %d bytes", u.URL, MaxJWKSBytes)
	}
	return b, nil
}

// KeySet caches the keys of a KeySource. Keys older than Refresh are
// reloaded in the background while the old ones keep serving; a token that
// names an unknown key id triggers a reload, at most once per MinRefresh (so
// that tokens with made-up key ids cannot make the node hammer the
// identity provider). A failed reload keeps the old keys. Only requests
// that wait for an unknown key id wait for the identity provider.
type KeySet struct {
	src        KeySource
	refresh    time.Duration
	minRefresh time.Duration
	now        func() time.Time

	mu        sync.RWMutex // guards keys, loaded
	keys      map[string]Key
	loaded    time.Time  // last successful load
	fetch     sync.Mutex // one load at a time; guards attempted, lastErr, loads
	attempted time.Time
	lastErr   error
	loads     int
	bgRunning bool
}

// NewKeySet returns a key set; refresh and minRefresh default to 10 min
// and 30 s.
func NewKeySet(src KeySource, refresh, minRefresh time.Duration, now func() time.Time) *KeySet {
	if refresh <= 0 {
		refresh = 10 * time.Minute
	}
	if minRefresh <= 0 {
		minRefresh = 30 * time.Second
	}
	if now == nil {
		now = time.Now
	}
	return &KeySet{src: src, refresh: refresh, minRefresh: minRefresh, now: now}
}

// Key returns the key with id kid, loading or refreshing the set when
// needed.
func (s *KeySet) Key(ctx context.Context, kid string) (Key, error) {
	s.mu.RLock()
	k, ok := s.keys[kid]
	have := s.keys != nil
	stale := s.now().Sub(s.loaded) >= s.refresh
	s.mu.RUnlock()
	if ok {
		if stale {
			s.refreshInBackground()
		}
		return k, nil
	}
	// Unknown key id (or nothing loaded yet): reload now, rate-limited.
	s.fetch.Lock()
	// Another request may have loaded it meanwhile.
	s.mu.RLock()
	k, ok = s.keys[kid]
	s.mu.RUnlock()
	if !ok && (!have || s.now().Sub(s.attempted) >= s.minRefresh || s.attempted.IsZero()) {
		s.loadLocked(ctx)
		s.mu.RLock()
		k, ok = s.keys[kid]
		have = s.keys != nil
		s.mu.RUnlock()
	}
	err := s.lastErr
	s.fetch.Unlock()
	if !ok {
		if !have && err != nil {
			return Key{}, err
		}
		return Key{}, fmt.Errorf("unknown key id %q", kid)
	}
	return k, nil
}

// refreshInBackground reloads stale keys without making anyone wait.
func (s *KeySet) refreshInBackground() {
	s.fetch.Lock()
	if s.bgRunning || s.now().Sub(s.attempted) < s.minRefresh {
		s.fetch.Unlock()
		return
	}
	s.bgRunning = true
	s.fetch.Unlock()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		s.fetch.Lock()
		s.loadLocked(ctx)
		s.bgRunning = false
		s.fetch.Unlock()
	}()
}

// loadLocked reads the source; s.fetch is held.
func (s *KeySet) loadLocked(ctx context.Context) {
	now := s.now()
	s.attempted = now
	s.loads++
	doc, err := s.src.Load(ctx)
	if err == nil {
		var keys map[string]Key
		if keys, err = ParseJWKS(doc); err == nil {
			s.mu.Lock()
			s.keys, s.loaded = keys, now
			s.mu.Unlock()
			s.lastErr = nil
			return
		}
	}
	s.lastErr = err
}

// Loads returns how many times the source was read (for tests and metrics).
func (s *KeySet) Loads() int {
	s.fetch.Lock()
	defer s.fetch.Unlock()
	return s.loads
}
