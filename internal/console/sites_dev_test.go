package console

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/meridian-platform/meridian/client"
)

// TestRunDevNode: the dev node registers with a token of its own, comes
// online, and a restart reuses its identity (no second token).
func TestRunDevNode(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	c, err := New(ctx, Options{DataDir: filepath.Join(t.TempDir(), "d"), Listen: "127.0.0.1:0", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() { defer close(served); c.Serve(ctx) }()
	defer func() { cancel(); <-served }()
	b := c.Bootstrap()
	run := func() {
		nctx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() {
			done <- c.RunDevNode(nctx, DevNodeOptions{AdminToken: b.AdminToken, Tenant: b.DefaultTenant, Logger: quiet})
		}()
		deadline := time.Now().Add(15 * time.Second)
		for {
			if st, _ := c.Distributor().State(b.DefaultTenant, "dev-node"); st.Online && st.AppliedVersion != "" {
				break
			}
			select {
			case err := <-done:
				t.Fatalf("dev node ended: %v", err)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatal("dev node never came online")
			}
			time.Sleep(20 * time.Millisecond)
		}
		stop()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	run()
	run()
	cl, err := client.New(client.Config{Server: c.URL(), Token: b.AdminToken, CAData: c.CACertPEM(), Tenant: b.DefaultTenant})
	if err != nil {
		t.Fatal(err)
	}
	l, err := cl.List(ctx, "SiteToken", "", client.ListOptions{})
	if err != nil || len(l.Items) != 1 {
		t.Fatalf("%d site tokens after two starts, want 1 (%v)", len(l.Items), err)
	}
}
