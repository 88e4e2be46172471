package agent_test

import (
	"context"
	"crypto/ecdsa"
	"io"
	"log/slog"
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
	a, err := agent.New(agent.Options{ConsoleURL: e.URL, Token: tok, Name: "r1", DataDir: t.TempDir(), CAData: e.CA,
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
}
