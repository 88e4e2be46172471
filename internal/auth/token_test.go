package auth

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestTokens(t *testing.T) {
	plain, id, hash := NewToken()
	if !strings.HasPrefix(plain, "mrd_"+id+"_") || len(id) != 16 {
		t.Fatalf("token %q id %q", plain, id)
	}
	if strings.Contains(hash, plain) || !strings.HasPrefix(hash, "sha256:") {
		t.Fatalf("hash %q", hash)
	}
	prefix, gotID, err := ParseToken(plain)
	if err != nil || prefix != APITokenPrefix || gotID != id {
		t.Fatalf("ParseToken = %q %q %v", prefix, gotID, err)
	}
	if !VerifyToken(plain, hash) {
		t.Fatal("VerifyToken rejected the token")
	}
	other, _, otherHash := NewToken()
	if VerifyToken(other, hash) || VerifyToken(plain, otherHash) || VerifyToken(plain, "") {
		t.Fatal("VerifyToken accepted a wrong token")
	}
	if p2, id2, _ := NewToken(); p2 == plain || id2 == id {
		t.Fatal("tokens repeat")
	}
	for _, bad := range []string{
		"", "mrd", "mrd__", "xyz_" + id + "_" + strings.SplitN(plain, "_", 3)[2],
		"mrd_" + strings.ToUpper(id) + "_" + strings.SplitN(plain, "_", 3)[2],
		"mrd_" + id + "_short", "mrd_zz" + id[2:] + "_" + strings.SplitN(plain, "_", 3)[2],
		plain + "A", strings.Repeat("a", 300),
	} {
		if _, _, err := ParseToken(bad); !errors.Is(err, ErrInvalidToken) {
			t.Errorf("ParseToken(%q) = %v", bad, err)
		}
	}
}

func TestSessions(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	plain, s := NewSession("acme", "alice", time.Hour, now)
	if !strings.HasPrefix(plain, SessionPrefix+"_") || s.Tenant != "acme" || s.User != "alice" || !s.ExpiresAt.Equal(now.Add(time.Hour)) {
		t.Fatalf("session %+v token %q", s, plain)
	}
	if err := s.Check(plain, now.Add(59*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := s.Check(plain, now.Add(time.Hour)); !errors.Is(err, ErrExpiredToken) {
		t.Fatalf("expired: %v", err)
	}
	api, _, _ := NewToken()
	other, _ := NewSession("acme", "alice", time.Hour, now)
	for _, bad := range []string{api, other, "", plain[:len(plain)-1] + "x"} {
		if err := s.Check(bad, now); !errors.Is(err, ErrInvalidToken) {
			t.Errorf("Check(%q) = %v", bad, err)
		}
	}
	if p := s.Principal(); p.Tenant != "acme" || p.Name != "alice" || p.Kind != KindUser {
		t.Fatalf("principal %+v", p)
	}
}

func FuzzParseToken(f *testing.F) {
	plain, _, _ := NewToken()
	f.Add(plain)
	f.Add("mrs_0011223344556677_x")
	f.Fuzz(func(t *testing.T, s string) {
		prefix, id, err := ParseToken(s)
		if err != nil {
			return
		}
		if !strings.HasPrefix(s, prefix+"_"+id+"_") || len(id) != 16 {
			t.Fatalf("%q parsed as %q %q", s, prefix, id)
		}
	})
}
