package pki

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meridian-platform/meridian/internal/store/backendtest"
)

func TestCALoadOrCreate(t *testing.T) {
	ctx := context.Background()
	st := backendtest.Bolt(t)
	master := NewMasterKey()
	kr := newTestKeyring(t, st, master)

	// Two consoles start at once.
	var wg sync.WaitGroup
	cas := make([]*CA, 4)
	for i := range cas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			kri := newTestKeyring(t, st, master)
			ca, err := LoadOrCreateCA(ctx, st, kri, "console")
			if err != nil {
				t.Error(err)
			}
			cas[i] = ca
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	for i, ca := range cas {
		if !bytes.Equal(ca.CACertPEM(), cas[0].CACertPEM()) {
			t.Fatalf("CA %d differs from CA 0", i)
		}
	}
	again, err := LoadOrCreateCA(ctx, st, kr, "console")
	if err != nil || !bytes.Equal(again.CACertPEM(), cas[0].CACertPEM()) {
		t.Fatalf("reload: %v", err)
	}
	c := again.Certificate()
	if !c.IsCA || c.PublicKeyAlgorithm != x509.ECDSA || time.Until(c.NotBefore) > -ClockSkew+time.Minute {
		t.Fatalf("CA cert: isCA=%v alg=%v notBefore=%v", c.IsCA, c.PublicKeyAlgorithm, c.NotBefore)
	}
	// The private key is not stored in clear.
	kv, _ := st.Get(ctx, DefaultCAPrefix+"console")
	if bytes.Contains(kv.Value, []byte("PRIVATE KEY")) {
		t.Fatal("CA private key stored in clear")
	}
	// Another master key cannot load the CA.
	other := backendtest.Bolt(t)
	otherKR := newTestKeyring(t, other, NewMasterKey())
	other.Txn(ctx, storeCopy(t, st, other, DefaultCAPrefix+"console"))
	if _, err := LoadOrCreateCA(ctx, other, otherKR, "console"); err == nil {
		t.Fatal("CA loaded with a foreign keyring")
	}
	if _, err := LoadOrCreateCA(ctx, st, kr, "a/b"); err == nil {
		t.Fatal("invalid CA name accepted")
	}
}

func TestCAServerAndClientTLS(t *testing.T) {
	ctx := context.Background()
	st := backendtest.Bolt(t)
	kr := newTestKeyring(t, st, NewMasterKey())
	ca, err := LoadOrCreateCA(ctx, st, kr, "console")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ca.IssueServerCert([]string{"localhost", "127.0.0.1", "::1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	leaf := srv.Leaf
	if len(leaf.DNSNames) != 1 || len(leaf.IPAddresses) != 2 {
		t.Fatalf("SANs: %v %v", leaf.DNSNames, leaf.IPAddresses)
	}
	if d := time.Since(leaf.NotBefore); d < ClockSkew-time.Minute || d > ClockSkew+time.Minute {
		t.Fatalf("NotBefore %v is not ~%v in the past", leaf.NotBefore, ClockSkew)
	}
	srvCert, err := srv.TLSCertificate()
	if err != nil {
		t.Fatal(err)
	}

	// Site: its own key, a CSR, a SPIFFE client certificate.
	siteKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csrDER, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: "evil"},
		URIs:    []*url.URL{{Scheme: "spiffe", Host: "other", Path: "/site/x"}},
	}, siteKey)
	csrPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csrDER})
	id := SiteSPIFFEID("acme", "station-1")
	cli, err := ca.IssueClientCertFromCSR(csrPEM, id, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if tn, site, err := SiteIdentity(cli.Leaf); err != nil || tn != "acme" || site != "station-1" {
		t.Fatalf("SiteIdentity = %q %q %v", tn, site, err)
	}
	if err := ca.VerifyClientCert(cli.Leaf, time.Now()); err != nil {
		t.Fatal(err)
	}
	// A site clock a few minutes behind still accepts.
	if err := ca.VerifyClientCert(cli.Leaf, time.Now().Add(-ClockSkew-2*time.Minute)); err != nil {
		t.Fatalf("skewed clock: %v", err)
	}
	if err := ca.VerifyClientCert(cli.Leaf, time.Now().Add(48*time.Hour)); err == nil {
		t.Fatal("expired certificate verified")
	}
	cliKeyDER, _ := x509.MarshalPKCS8PrivateKey(siteKey)
	cliCert, err := tls.X509KeyPair(cli.CertPEM, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: cliKeyDER}))
	if err != nil {
		t.Fatal(err)
	}

	// Real mTLS on loopback.
	ln, err := tls.Listen("tcp", "127.0.0.1:0", ca.ServerTLSConfig(srvCert))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan string, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				tc := c.(*tls.Conn)
				if err := tc.Handshake(); err != nil {
					got <- "handshake: " + err.Error()
					return
				}
				peers := tc.ConnectionState().PeerCertificates
				if len(peers) == 0 {
					got <- "no client certificate"
					return
				}
				_, site, err := SiteIdentity(peers[0])
				if err != nil {
					got <- err.Error()
					return
				}
				io.WriteString(c, "hi")
				got <- site
			}()
		}
	}()
	dialer := &net.Dialer{Timeout: 10 * time.Second, Deadline: time.Now().Add(10 * time.Second)}
	conn, err := tls.DialWithDialer(dialer, "tcp", ln.Addr().String(), &tls.Config{
		RootCAs:      ca.CertPool(),
		ServerName:   "127.0.0.1",
		Certificates: []tls.Certificate{cliCert},
	})
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2)
	io.ReadFull(conn, buf)
	conn.Close()
	if s := <-got; s != "station-1" {
		t.Fatalf("server saw %q", s)
	}

	// A client that does not trust the CA fails.
	if c, err := tls.DialWithDialer(dialer, "tcp", ln.Addr().String(), &tls.Config{ServerName: "localhost"}); err == nil {
		c.Close()
		t.Fatal("handshake succeeded without trusting the CA")
	}
}

func TestCAIssueErrors(t *testing.T) {
	ctx := context.Background()
	st := backendtest.Bolt(t)
	ca, err := LoadOrCreateCA(ctx, st, newTestKeyring(t, st, NewMasterKey()), "c")
	if err != nil {
		t.Fatal(err)
	}
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	if _, err := ca.IssueClientCert(SiteSPIFFEID("acme", "s"), pub, time.Hour); err != nil {
		t.Fatalf("ed25519 key: %v", err)
	}
	for _, tt := range []struct {
		name string
		fn   func() error
	}{
		{"no hosts", func() error { _, err := ca.IssueServerCert(nil, time.Hour); return err }},
		{"zero ttl", func() error { _, err := ca.IssueServerCert([]string{"a"}, 0); return err }},
		{"huge ttl", func() error { _, err := ca.IssueServerCert([]string{"a"}, 100*365*24*time.Hour); return err }},
		{"not spiffe", func() error { _, err := ca.IssueClientCert("https://acme/site/x", pub, time.Hour); return err }},
		{"dotdot", func() error { _, err := ca.IssueClientCert("spiffe://acme/site/..", pub, time.Hour); return err }},
		{"bad key type", func() error { _, err := ca.IssueClientCert(SiteSPIFFEID("a", "b"), "key", time.Hour); return err }},
		{"bad csr", func() error {
			_, err := ca.IssueClientCertFromCSR([]byte("junk"), SiteSPIFFEID("a", "b"), time.Hour)
			return err
		}},
	} {
		if err := tt.fn(); err == nil {
			t.Errorf("%s: no error", tt.name)
		}
	}
}

func TestParseSiteSPIFFEID(t *testing.T) {
	for _, tt := range []struct {
		in           string
		tenant, site string
		ok           bool
	}{
		{SiteSPIFFEID("acme", "station-1"), "acme", "station-1", true},
		{"spiffe://acme/site/a/b", "", "", false},
		{"spiffe://acme/node/a", "", "", false},
		{"spiffe://acme:1/site/a", "", "", false},
		{"spiffe:///site/a", "", "", false},
		{"http://acme/site/a", "", "", false},
	} {
		tn, s, err := ParseSiteSPIFFEID(tt.in)
		if (err == nil) != tt.ok || tn != tt.tenant || s != tt.site {
			t.Errorf("ParseSiteSPIFFEID(%q) = %q %q %v", tt.in, tn, s, err)
		}
	}
	if !strings.HasPrefix(SiteSPIFFEID("t", "s"), "spiffe://t/site/s") {
		t.Fatal(SiteSPIFFEID("t", "s"))
	}
}

func FuzzParseSiteSPIFFEID(f *testing.F) {
	f.Add("spiffe://acme/site/x")
	f.Fuzz(func(t *testing.T, s string) {
		tn, site, err := ParseSiteSPIFFEID(s)
		if err == nil && (tn == "" || site == "" || strings.Contains(site, "/")) {
			t.Fatalf("%q accepted as %q %q", s, tn, site)
		}
	})
}
