package pki

import (
	"context"
	"testing"
	"time"

	"github.com/meridian-platform/meridian/internal/store/backendtest"
)

func TestWatchAndReload(t *testing.T) {
	st := backendtest.Bolt(t)
	master := NewMasterKey()
	a := newTestKeyring(t, st, master)
	b := newTestKeyring(t, st, master)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { b.WatchAndReload(ctx, func(err error) { t.Error(err) }); close(done) }()
	defer func() { cancel(); <-done }()

	id, err := a.Rotate(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for b.Primary() != id {
		if time.Now().After(deadline) {
			t.Fatalf("b's primary %s, want %s", b.Primary(), id)
		}
		time.Sleep(5 * time.Millisecond)
	}
	ct, _ := b.Encrypt([]byte("x"), nil)
	if got, _, _ := ParseCiphertext(ct); got != id {
		t.Fatalf("b encrypts with %s", got)
	}
}
