package pki

import (
	"bytes"
	"context"
	"sync"
	"testing"

	"github.com/meridian-platform/meridian/internal/store/backendtest"
	"github.com/meridian-platform/meridian/internal/store/etcd/etcdtest"
)

// Two consoles, each with its own etcd client, share one etcd and one master
// key: they agree on the first data key and the CA, and read each other's
// secrets, also after one of them rotates.
func TestTwoConsolesShareEtcd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd")
	}
	ctx := context.Background()
	endpoints := etcdtest.Start(t)
	master := NewMasterKey()
	type console struct {
		kr *Keyring
		ca *CA
	}
	consoles := make([]console, 2)
	var wg sync.WaitGroup
	for i := range consoles {
		st := backendtest.Etcd(t, endpoints, "/meridian/")
		wg.Add(1)
		go func() {
			defer wg.Done()
			kr, err := NewKeyring(ctx, st, master, "")
			if err != nil {
				t.Error(err)
				return
			}
			ca, err := LoadOrCreateCA(ctx, st, kr, "console")
			if err != nil {
				t.Error(err)
				return
			}
			consoles[i] = console{kr, ca}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	a, b := consoles[0], consoles[1]
	if a.kr.Primary() != b.kr.Primary() || !bytes.Equal(a.ca.CACertPEM(), b.ca.CACertPEM()) {
		t.Fatal("consoles disagree on the first data key or the CA")
	}
	if _, err := a.kr.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	ct, _ := a.kr.Encrypt([]byte("private key"), []byte("aad"))
	if pt, err := b.kr.Decrypt(ct, []byte("aad")); err != nil || string(pt) != "private key" {
		t.Fatalf("console b: %q %v", pt, err)
	}
	ct, _ = b.kr.Encrypt([]byte("back"), nil)
	if pt, err := a.kr.Decrypt(ct, nil); err != nil || string(pt) != "back" {
		t.Fatalf("console a: %q %v", pt, err)
	}
}
