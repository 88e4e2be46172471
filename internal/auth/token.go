package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Token prefixes. A token is "<prefix>_<id>_<secret>": the id (16 hex
// characters) locates the stored record, the secret is 32 random bytes in
// base64url. Only a hash of the whole token is stored.
const (
	APITokenPrefix = "mrd"
	SessionPrefix  = "mrs"
)

const (
	tokenIDBytes     = 8
	tokenSecretBytes = 32
	hashScheme       = "sha256:"
)

// ErrInvalidToken is returned for a token that is malformed, unknown or
// does not match its record.
var ErrInvalidToken = errors.New("auth: invalid token")

// ErrExpiredToken is returned for a session or token past its expiry.
var ErrExpiredToken = errors.New("auth: token expired")

// NewToken returns a fresh API token, its id and the hash to store.
func NewToken() (plaintext, id, hash string) { return newToken(APITokenPrefix) }

// NewSessionToken returns a fresh session token, its id and its hash.
func NewSessionToken() (plaintext, id, hash string) { return newToken(SessionPrefix) }

func newToken(prefix string) (plaintext, id, hash string) {
	var idb [tokenIDBytes]byte
	var secret [tokenSecretBytes]byte
	rand.Read(idb[:])
	rand.Read(secret[:])
	id = hex.EncodeToString(idb[:])
	plaintext = prefix + "_" + id + "_" + base64.RawURLEncoding.EncodeToString(secret[:])
	return plaintext, id, HashToken(plaintext)
}

// HashToken returns the stored form of a token: "sha256:<hex>". Tokens carry
// 256 random bits, so a fast hash is enough (nothing to brute-force).
func HashToken(plaintext string) string {
	sum := sha256.Sum256([]byte(plaintext))
	return hashScheme + hex.EncodeToString(sum[:])
}

// ParseToken splits a token into prefix and id, checking its shape only.
func ParseToken(plaintext string) (prefix, id string, err error) {
	if len(plaintext) > 256 {
		return "", "", ErrInvalidToken
	}
	prefix, rest, ok := strings.Cut(plaintext, "_")
	if !ok || (prefix != APITokenPrefix && prefix != SessionPrefix) {
		return "", "", ErrInvalidToken
	}
	id, secret, ok := strings.Cut(rest, "_")
	if !ok || len(id) != 2*tokenIDBytes {
		return "", "", ErrInvalidToken
	}
	if _, err := hex.DecodeString(id); err != nil || strings.ToLower(id) != id {
		return "", "", ErrInvalidToken
	}
	b, err := base64.RawURLEncoding.DecodeString(secret)
	if err != nil || len(b) != tokenSecretBytes {
		return "", "", ErrInvalidToken
	}
	return prefix, id, nil
}

// VerifyToken reports whether plaintext matches storedHash, comparing in
// constant time.
func VerifyToken(plaintext, storedHash string) bool {
	got := HashToken(plaintext)
	return subtle.ConstantTimeCompare([]byte(got), []byte(storedHash)) == 1
}

// Session is the stored record of a login session. Only Hash is kept of the
// token; the plaintext goes to the client once.
type Session struct {
	ID        string    `json:"id"`
	Tenant    string    `json:"tenant"`
	User      string    `json:"user"`
	Hash      string    `json:"hash"`
	Created   time.Time `json:"created"`
	ExpiresAt time.Time `json:"expiresAt"`
}

// NewSession starts a session for a user of a tenant, valid for ttl from now.
func NewSession(tenant, user string, ttl time.Duration, now time.Time) (plaintext string, s Session) {
	plaintext, id, hash := NewSessionToken()
	return plaintext, Session{ID: id, Tenant: tenant, User: user, Hash: hash, Created: now.UTC(), ExpiresAt: now.Add(ttl).UTC()}
}

// Check verifies plaintext against the session at time now.
func (s Session) Check(plaintext string, now time.Time) error {
	prefix, id, err := ParseToken(plaintext)
	if err != nil || prefix != SessionPrefix || id != s.ID {
		return ErrInvalidToken
	}
	if !VerifyToken(plaintext, s.Hash) {
		return ErrInvalidToken
	}
	if !now.Before(s.ExpiresAt) {
		return fmt.Errorf("session of %s/%s expired at %s: %w", s.Tenant, s.User, s.ExpiresAt.Format(time.RFC3339), ErrExpiredToken)
	}
	return nil
}

// Principal returns the principal a valid session authenticates.
func (s Session) Principal() Principal {
	return Principal{Tenant: s.Tenant, Name: s.User, Kind: KindUser}
}
