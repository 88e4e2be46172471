package apiserver

import "github.com/meridian-platform/meridian/internal/auth"

// testPasswords is internal/auth's argon2id at a low cost, so that tests
// stay fast.
type testPasswords struct{}

func (testPasswords) HashPassword(p string) (string, error) {
	return auth.HashPasswordParams(p, auth.PasswordParams{Memory: 64, Time: 1, Threads: 1})
}

func (testPasswords) CheckPassword(h, p string) error { return auth.CheckPassword(h, p) }
