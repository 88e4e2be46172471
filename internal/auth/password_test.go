package auth

import (
	"errors"
	"strings"
	"testing"
)

var fastParams = PasswordParams{Memory: 64, Time: 1, Threads: 1}

func TestPasswordHash(t *testing.T) {
	h, err := HashPassword("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") || strings.Contains(h, "correct") {
		t.Fatalf("hash %q", h)
	}
	if err := CheckPassword(h, "correct horse"); err != nil {
		t.Fatal(err)
	}
	if err := CheckPassword(h, "correct horsE"); !errors.Is(err, ErrPasswordMismatch) {
		t.Fatalf("wrong password: %v", err)
	}
	if h2, _ := HashPassword("correct horse"); h2 == h {
		t.Fatal("same salt twice")
	}
	if NeedsRehash(h) {
		t.Fatal("default hash needs rehash")
	}
}

func TestPasswordUnknownUser(t *testing.T) {
	// The dummy hash has the default cost, so a missing user costs the same.
	p, _, _, err := parsePasswordHash(dummyHash)
	if err != nil || p != DefaultPasswordParams {
		t.Fatalf("dummy hash params %+v, %v; want %+v", p, err, DefaultPasswordParams)
	}
	for _, pw := range []string{"", "x", "correct horse"} {
		if err := CheckPassword("", pw); !errors.Is(err, ErrPasswordMismatch) {
			t.Fatalf("unknown user with %q: %v", pw, err)
		}
	}
}

func TestPasswordEdgeCases(t *testing.T) {
	if _, err := HashPasswordParams("", fastParams); err == nil {
		t.Fatal("empty password hashed")
	}
	if _, err := HashPasswordParams(strings.Repeat("a", MaxPasswordLen+1), fastParams); err == nil {
		t.Fatal("oversize password hashed")
	}
	if _, err := HashPasswordParams("x", PasswordParams{Memory: 1 << 30, Time: 1, Threads: 1}); err == nil {
		t.Fatal("absurd parameters accepted")
	}
	h, err := HashPasswordParams("pw", fastParams)
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckPassword(h, "pw"); err != nil {
		t.Fatal(err)
	}
	if !NeedsRehash(h) {
		t.Fatal("weak hash does not need rehash")
	}
	if err := CheckPassword(h, strings.Repeat("p", MaxPasswordLen+5)); !errors.Is(err, ErrPasswordMismatch) {
		t.Fatalf("oversize password: %v", err)
	}
	for _, bad := range []string{
		"plain", "$argon2i$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=18$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=4294967295,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=64,t=1,p=1$!!$aGFzaGhhc2hoYXNoaGFzaA",
	} {
		if err := CheckPassword(bad, "pw"); err == nil || errors.Is(err, ErrPasswordMismatch) {
			t.Errorf("CheckPassword(%q) = %v, want a corrupt-hash error", bad, err)
		}
	}
}

func FuzzParsePasswordHash(f *testing.F) {
	f.Add(dummyHash)
	f.Add("$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA")
	f.Fuzz(func(t *testing.T, s string) {
		p, salt, hash, err := parsePasswordHash(s)
		if err != nil {
			return
		}
		if p.check() != nil || len(salt) < 8 || len(hash) < 16 {
			t.Fatalf("accepted %q", s)
		}
	})
}
