package agent_test

import (
	"context"
	"crypto/ecdsa"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/internal/distrib"
	"github.com/meridian-platform/meridian/internal/node/agent"
	"github.com/meridian-platform/meridian/internal/sites/sitestest"
)

type nopApplier struct{}

func (nopApplier) Apply(context.Context, []v1.Object) []distrib.ObjectError { return nil }

// TestRenewOverMTLS: the node renews with a fresh key over the sync
// service, keeps the new identity on disk, and the console accepts it.
func TestRenewOverMTLS(t *testing.T) {
	e := sitestest.Start(t)
	tok := e.CreateToken(t, "", "t", v1.SiteTokenSpec{AutoApprove: true})
	dir := t.TempDir()
	a, err := agent.New(agent.Options{ConsoleURL: e.URL, Token: tok, Name: "r1", DataDir: dir, CAData: e.CA,
		Applier: nopApplier{}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	id, err := a.RegisterForTest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if agent.RenewDue(id.Leaf(), time.Now()) || !agent.RenewDue(id.Leaf(), id.Leaf().NotAfter.Add(-time.Hour)) {
		t.Fatal("renewal due at the wrong time")
	}
	nid, err := a.RenewForTest(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if nid.Leaf().SerialNumber.Cmp(id.Leaf().SerialNumber) == 0 || nid.Leaf().PublicKey.(*ecdsa.PublicKey).Equal(id.Leaf().PublicKey) {
		t.Fatal("renewal kept the serial or the key")
	}
	if nid.Leaf().URIs[0].String() != id.Leaf().URIs[0].String() {
		t.Fatalf("renewed identity names %s, want %s", nid.Leaf().URIs[0], id.Leaf().URIs[0])
	}
	saved, err := a.LoadIdentityForTest()
	if err != nil || saved.Leaf().SerialNumber.Cmp(nid.Leaf().SerialNumber) != 0 {
		t.Fatalf("renewed identity not saved: %v", err)
	}
	// The new certificate renews again.
	if _, err := a.RenewForTest(ctx, saved); err != nil {
		t.Fatal(err)
	}
	// Stopped between saving a renewed certificate and renaming its key
	// into place: the next start finds the pair.
	cur, err := os.ReadFile(filepath.Join(dir, "node.key"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "node.key"), filepath.Join(dir, "node.key.next")); err != nil {
		t.Fatal(err)
	}
	oldKey, _, err := agent.NewKeyAndCSRForTest("r1")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "node.key"), oldKey, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := a.LoadIdentityForTest(); err != nil {
		t.Fatalf("identity after an interrupted save: %v", err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "node.key")); string(got) != string(cur) {
		t.Fatal("the renewed key was not put in place")
	}
	if _, err := os.Stat(filepath.Join(dir, "node.key.next")); !os.IsNotExist(err) {
		t.Fatalf("node.key.next left behind: %v", err)
	}
	// A mismatched pair with no renewed key to complete it is an error.
	if err := os.WriteFile(filepath.Join(dir, "node.key"), oldKey, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := a.LoadIdentityForTest(); err == nil || !strings.Contains(err.Error(), "private key does not match") {
		t.Fatalf("mismatched key and certificate: %v", err)
	}
}
