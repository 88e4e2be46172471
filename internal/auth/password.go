package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
)

// PasswordParams are the argon2id cost parameters.
type PasswordParams struct {
	Memory  uint32 // KiB
	Time    uint32
	Threads uint8
}

// DefaultPasswordParams follow the OWASP recommendation for argon2id.
var DefaultPasswordParams = PasswordParams{Memory: 19 * 1024, Time: 2, Threads: 1}

// MaxPasswordLen bounds the length of a password.
const MaxPasswordLen = 1024

const (
	saltLen = 16
	hashLen = 32
)

// dummyHash is a hash with DefaultPasswordParams of a random password nobody
// knows. CheckPassword compares against it when the user does not exist, so
// that "no such user" and "wrong password" take the same time.
const dummyHash = "$argon2id$v=19$m=19456,t=2,p=1$fSuMb3cx1A5UthvgGFvUVw$jUwwf6fBmizSd57UocEOnTEhG9NXMDMlY/jtFFYOMgM"

// ErrPasswordMismatch is returned by CheckPassword for a wrong password or an
// unknown user.
var ErrPasswordMismatch = errors.New("auth: wrong user name or password")

// HashPassword returns the encoded argon2id hash of password with the
// default parameters: $argon2id$v=19$m=..,t=..,p=..$<salt>$<hash>.
func HashPassword(password string) (string, error) {
	return HashPasswordParams(password, DefaultPasswordParams)
}

// HashPasswordParams is HashPassword with explicit cost parameters.
func HashPasswordParams(password string, p PasswordParams) (string, error) {
	if password == "" {
		return "", errors.New("hashing password: empty password")
	}
	if len(password) > MaxPasswordLen {
		return "", fmt.Errorf("hashing password: longer than %d bytes", MaxPasswordLen)
	}
	if err := p.check(); err != nil {
		return "", fmt.Errorf("hashing password: %w", err)
	}
	salt := make([]byte, saltLen)
	rand.Read(salt)
	h := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, hashLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.Memory, p.Time, p.Threads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(h)), nil
}

func (p PasswordParams) check() error {
	if p.Memory < 8 || p.Memory > 1<<20 || p.Time < 1 || p.Time > 16 || p.Threads < 1 || p.Threads > 16 {
		return fmt.Errorf("argon2id parameters out of range: m=%d t=%d p=%d", p.Memory, p.Time, p.Threads)
	}
	return nil
}

// parsePasswordHash decodes an encoded argon2id hash.
func parsePasswordHash(encoded string) (p PasswordParams, salt, hash []byte, err error) {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return p, nil, nil, errors.New("not an argon2id hash")
	}
	var v int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return p, nil, nil, fmt.Errorf("unsupported argon2 version %q", parts[2])
	}
	var threads uint32
	if n, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &threads); err != nil || n != 3 || threads > 255 {
		return p, nil, nil, fmt.Errorf("bad argon2id parameters %q", parts[3])
	}
	p.Threads = uint8(threads)
	if err := p.check(); err != nil {
		return p, nil, nil, err
	}
	if salt, err = base64.RawStdEncoding.DecodeString(parts[4]); err != nil || len(salt) < 8 {
		return p, nil, nil, errors.New("bad argon2id salt")
	}
	if hash, err = base64.RawStdEncoding.DecodeString(parts[5]); err != nil || len(hash) < 16 || len(hash) > 64 {
		return p, nil, nil, errors.New("bad argon2id hash")
	}
	return p, salt, hash, nil
}

// CheckPassword checks password against an encoded hash. Pass encoded == ""
// when the user does not exist: the password is then checked against a
// dummy hash of the same cost and ErrPasswordMismatch returned, so timing
// does not reveal which user names exist. It returns nil on a match,
// ErrPasswordMismatch on a mismatch, and another error for a corrupt hash.
func CheckPassword(encoded, password string) error {
	known := encoded != ""
	if !known {
		encoded = dummyHash
	}
	p, salt, want, err := parsePasswordHash(encoded)
	if err != nil {
		return fmt.Errorf("checking password: %w", err)
	}
	if len(password) > MaxPasswordLen {
		password = password[:MaxPasswordLen]
		known = false
	}
	got := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, uint32(len(want)))
	if subtle.ConstantTimeCompare(got, want) != 1 || !known {
		return ErrPasswordMismatch
	}
	return nil
}

// NeedsRehash reports whether encoded was made with weaker parameters than
// DefaultPasswordParams, so a caller can rehash after a successful login.
func NeedsRehash(encoded string) bool {
	p, _, _, err := parsePasswordHash(encoded)
	if err != nil {
		return true
	}
	d := DefaultPasswordParams
	return p.Memory < d.Memory || p.Time < d.Time
}
