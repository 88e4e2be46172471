package distrib_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/internal/distrib"
	"github.com/meridian-platform/meridian/internal/sites"
	"github.com/meridian-platform/meridian/internal/sites/sitestest"
)

// registerByHand enrols a site the way a node does, without running one.
func registerByHand(t *testing.T, e *sitestest.Env, token, name string) tls.Certificate {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, k)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(sites.RegisterRequest{Token: token, Name: name, NodeVersion: "test",
		CSR: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr})), CapabilityVersion: distrib.CapabilityVersion})
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(e.CA)
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	defer hc.CloseIdleConnections()
	resp, err := hc.Post(e.URL+sites.RegisterPath, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("registering %s: %s: %s", name, resp.Status, b)
	}
	var id sites.Identity
	if err := json.Unmarshal(b, &id); err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalPKCS8PrivateKey(k)
	c, err := tls.X509KeyPair([]byte(id.Certificate), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// handStream is a sync stream spoken by hand.
type handStream struct {
	cs grpc.ClientStream
}

func openHand(t *testing.T, e *sitestest.Env, cert *tls.Certificate, hello distrib.Hello) *handStream {
	t.Helper()
	conn := e.Dial(t, cert)
	t.Cleanup(func() { conn.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	cs, err := conn.NewStream(ctx, &distrib.StreamDesc, distrib.StreamMethod)
	if err != nil {
		t.Fatal(err)
	}
	// A refused stream may end before the hello is sent: the status comes
	// with RecvMsg.
	_ = cs.SendMsg(&distrib.NodeMessage{Hello: &hello})
	return &handStream{cs: cs}
}

// recv waits up to 10s for the next update or the stream's end.
func (h *handStream) recv(t *testing.T) (*distrib.Update, error) {
	t.Helper()
	type res struct {
		up  *distrib.Update
		err error
	}
	ch := make(chan res, 1)
	go func() {
		var up distrib.Update
		err := h.cs.RecvMsg(&up)
		ch <- res{&up, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, r.err
		}
		return r.up, nil
	case <-time.After(10 * time.Second):
		t.Fatal("nothing received within 10s: the stream hangs")
		return nil, nil
	}
}

// TestStreamLifecycle: updates reach a stream (first snapshot, a
// confirmation on reconnect, a delta after a change, a full snapshot on
// the node's resync request), and a stream closed from the console's side
// (replaced by a newer stream of its site, the site decommissioned) ends
// with its status although the node sends nothing on it.
func TestStreamLifecycle(t *testing.T) {
	e := sitestest.Start(t)
	applyTenant(t, e, "", "d")
	tok := e.CreateToken(t, "", "t", v1.SiteTokenSpec{MaxUses: 2, AutoApprove: true, Labels: map[string]string{"region": "us"}})
	cert := registerByHand(t, e, tok, "hand-us")

	a := openHand(t, e, &cert, distrib.Hello{Site: "hand-us", CapabilityVersion: distrib.CapabilityVersion})
	first, err := a.recv(t)
	if err != nil || !first.Full || first.Version == "" || len(first.Objects) == 0 {
		t.Fatalf("first update: %+v, %v", first, err)
	}

	// A newer stream of the same site replaces a: a ends (Unavailable)
	// although the node sends nothing on it.
	b := openHand(t, e, &cert, distrib.Hello{Site: "hand-us", CapabilityVersion: distrib.CapabilityVersion, AppliedVersion: first.Version})
	confirm, err := b.recv(t)
	if err != nil || confirm.Full || confirm.Base != first.Version || len(confirm.Objects) != 0 {
		t.Fatalf("reconnect with the current content: want an empty confirmation from %s, got %+v, %v", first.Version, confirm, err)
	}
	if _, err := a.recv(t); status.Code(err) != codes.Unavailable {
		t.Fatalf("replaced stream: %v, want Unavailable", err)
	}

	// A change reaches b as a delta from what it runs.
	patch := []byte(`{"spec":{"endpoints":[{"address":"127.0.0.1:10"}]}}`)
	if err := e.Client(t, "").Patch(context.Background(), "OriginPool", "retail", "pool-d", patch, nil); err != nil {
		t.Fatal(err)
	}
	delta, err := b.recv(t)
	if err != nil || delta.Full || delta.Base != confirm.Version || len(delta.Objects) != 1 || !bytes.Contains(delta.Objects[0], []byte("127.0.0.1:10")) {
		t.Fatalf("change: want a delta from %s with the pool, got %+v, %v", confirm.Version, delta, err)
	}

	// The node asks for everything again.
	if err := b.cs.SendMsg(&distrib.NodeMessage{Ack: &distrib.Ack{Resync: true}}); err != nil {
		t.Fatal(err)
	}
	full, err := b.recv(t)
	if err != nil || !full.Full || full.Version != delta.Version || len(full.Objects) != len(first.Objects) {
		t.Fatalf("resync: want the full snapshot %s, got %+v, %v", delta.Version, full, err)
	}

	// Decommissioned: the stream ends with the status that says so.
	if err := e.Client(t, "").Patch(context.Background(), "Site", "", "hand-us", []byte(`{"spec":{"decommissioned":true}}`), nil); err != nil {
		t.Fatal(err)
	}
	for {
		_, err := b.recv(t)
		if err == nil {
			continue // an update sent before the decommission was seen
		}
		if !distrib.IsDecommissioned(err) {
			t.Fatalf("decommissioned site's stream: %v, want PermissionDenied ... is decommissioned", err)
		}
		break
	}
}
