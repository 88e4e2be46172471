package sites_test

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
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/client"
	"github.com/meridian-platform/meridian/internal/sites"
	"github.com/meridian-platform/meridian/internal/sites/sitestest"
)

type node struct {
	key  *ecdsa.PrivateKey
	csr  string
	cert tls.Certificate
}

func newNode(t testing.TB) *node {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	// The CSR asks for a name it must not get.
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: []string{"console.example"}}, k)
	if err != nil {
		t.Fatal(err)
	}
	return &node{key: k, csr: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))}
}

func (n *node) setCert(t testing.TB, id *sites.Identity) {
	t.Helper()
	kb, _ := x509.MarshalPKCS8PrivateKey(n.key)
	c, err := tls.X509KeyPair([]byte(id.Certificate), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}))
	if err != nil {
		t.Fatal(err)
	}
	n.cert = c
}

func httpClient(t testing.TB, e *sitestest.Env, cert *tls.Certificate) *http.Client {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(e.CA)
	cfg := &tls.Config{RootCAs: pool}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	return &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg, MaxIdleConnsPerHost: 64}}
}

func post(t testing.TB, hc *http.Client, url string, in any) (int, []byte) {
	b, _ := json.Marshal(in)
	resp, err := hc.Post(url, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

func register(t testing.TB, e *sitestest.Env, hc *http.Client, token, name string, n *node) (int, *sites.Identity, string) {
	code, body := post(t, hc, e.URL+sites.RegisterPath, sites.RegisterRequest{Token: token, Name: name, CSR: n.csr,
		NodeVersion: "test", CapabilityVersion: 1})
	if code != http.StatusCreated {
		return code, nil, sites.DecodeError(code, body).Message
	}
	var id sites.Identity
	if err := json.Unmarshal(body, &id); err != nil {
		t.Fatal(err)
	}
	return code, &id, ""
}

func getSite(t testing.TB, c *client.Client, name string) *v1.Site {
	t.Helper()
	var s v1.Site
	if err := c.Get(context.Background(), "Site", "", name, &s); err != nil {
		t.Fatalf("getting site %q: %v", name, err)
	}
	return &s
}

func TestRegistration(t *testing.T) {
	e := sitestest.Start(t)
	admin := e.Client(t, "")
	hc := httpClient(t, e, nil)
	tok := e.CreateToken(t, "", "eu", v1.SiteTokenSpec{MaxUses: 2, Labels: map[string]string{"region": "eu"}})

	n := newNode(t)
	code, id, msg := register(t, e, hc, tok, "station-1", n)
	if code != http.StatusCreated {
		t.Fatalf("register: %d %s", code, msg)
	}
	if id.State != v1.SiteStatePending || id.Tenant != e.Tenant || id.Site != "station-1" {
		t.Fatalf("identity: %+v", id)
	}
	block, _ := pem.Decode([]byte(id.Certificate))
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	want := "spiffe://" + e.Tenant + "/site/station-1"
	if len(leaf.URIs) != 1 || leaf.URIs[0].String() != want || len(leaf.DNSNames) != 0 {
		t.Fatalf("certificate names %v %v, want only %s", leaf.URIs, leaf.DNSNames, want)
	}
	if life := leaf.NotAfter.Sub(time.Now()); life > 25*time.Hour || life < 23*time.Hour {
		t.Fatalf("certificate lifetime %s, want about 24h", life)
	}
	s := getSite(t, admin, "station-1")
	if s.Metadata.Labels["region"] != "eu" || s.Spec.Approved || s.Status.State != v1.SiteStatePending ||
		s.Status.SiteToken != "eu" || s.Status.NodeVersion != "test" {
		t.Fatalf("site: %+v", s)
	}

	// No takeover, even with a token that has uses left.
	if code, _, msg := register(t, e, hc, tok, "station-1", newNode(t)); code != http.StatusConflict || !strings.Contains(msg, "already exists") {
		t.Fatalf("second registration of the name: %d %s", code, msg)
	}
	// A malformed or unknown token says the same thing.
	for _, bad := range []string{"nope", strings.Replace(tok, tok[len(tok)-4:], "AAAA", 1)} {
		if code, _, msg := register(t, e, hc, bad, "station-x", newNode(t)); code != http.StatusUnauthorized || !strings.Contains(msg, "invalid site token") {
			t.Fatalf("bad token: %d %s", code, msg)
		}
	}
	if code, _, msg := register(t, e, hc, tok, "Bad_Name", newNode(t)); code != http.StatusUnprocessableEntity {
		t.Fatalf("bad name: %d %s", code, msg)
	}
	if code, _, msg := register(t, e, hc, tok, "station-2", &node{csr: "garbage"}); code != http.StatusUnprocessableEntity || !strings.Contains(msg, "csr") {
		t.Fatalf("bad csr: %d %s", code, msg)
	}
	if code, _, msg := register(t, e, hc, tok, "station-2", newNode(t)); code != http.StatusCreated {
		t.Fatalf("second site: %d %s", code, msg)
	}
	if code, _, msg := register(t, e, hc, tok, "station-3", newNode(t)); code != http.StatusForbidden || !strings.Contains(msg, "used up") {
		t.Fatalf("used-up token: %d %s", code, msg)
	}
	var st v1.SiteToken
	if err := admin.Get(context.Background(), "SiteToken", "", "eu", &st); err != nil || st.Status.Uses != 2 {
		t.Fatalf("token uses %d, %v", st.Status.Uses, err)
	}

	// Revoked and expired tokens.
	rtok := e.CreateToken(t, "", "revoked", v1.SiteTokenSpec{MaxUses: 5})
	if err := admin.Patch(context.Background(), "SiteToken", "", "revoked", []byte(`{"spec":{"revoked":true}}`), nil); err != nil {
		t.Fatal(err)
	}
	if code, _, msg := register(t, e, hc, rtok, "station-4", newNode(t)); code != http.StatusForbidden || !strings.Contains(msg, "revoked") {
		t.Fatalf("revoked token: %d %s", code, msg)
	}
	etok := e.CreateToken(t, "", "short", v1.SiteTokenSpec{MaxUses: 5, Expires: v1.Duration{Duration: time.Second}})
	time.Sleep(1100 * time.Millisecond)
	if code, _, msg := register(t, e, hc, etok, "station-4", newNode(t)); code != http.StatusForbidden || !strings.Contains(msg, "expired") {
		t.Fatalf("expired token: %d %s", code, msg)
	}
	// A deleted token is unknown.
	if err := admin.Delete(context.Background(), "SiteToken", "", "revoked"); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := register(t, e, hc, rtok, "station-4", newNode(t)); code != http.StatusUnauthorized {
		t.Fatalf("deleted token: %d", code)
	}

	// Registrations are audited.
	recs, err := admin.AuditRecords(context.Background(), client.AuditFilter{Verb: "register"})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs.Items) != 2 {
		t.Fatalf("%d register audit records, want 2", len(recs.Items))
	}
}

func TestAutoApproveRenewDecommission(t *testing.T) {
	e := sitestest.Start(t)
	admin := e.Client(t, "")
	tok := e.CreateToken(t, "", "auto", v1.SiteTokenSpec{MaxUses: 3, AutoApprove: true})
	n := newNode(t)
	code, id, msg := register(t, e, httpClient(t, e, nil), tok, "edge-1", n)
	if code != http.StatusCreated || id.State != v1.SiteStateApproved {
		t.Fatalf("register: %d %s %+v", code, msg, id)
	}
	n.setCert(t, id)

	// Renewal needs the client certificate.
	n2 := newNode(t)
	if _, err := e.Renew(t, nil, sites.RenewRequest{CSR: n2.csr}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("renew without certificate: %v", err)
	}
	rid, err := e.Renew(t, &n.cert, sites.RenewRequest{CSR: n2.csr})
	if err != nil {
		t.Fatalf("renew: %v", err)
	}
	if rid.Site != "edge-1" || rid.Tenant != e.Tenant || rid.Certificate == "" {
		t.Fatalf("renewed identity %+v", rid)
	}
	n2.setCert(t, rid)
	if _, err := e.Renew(t, &n.cert, sites.RenewRequest{CSR: "garbage"}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("renew with a bad CSR: %v", err)
	}

	// A certificate of another CA naming the same site is refused.
	other := sitestest.Start(t)
	otok := other.CreateToken(t, "", "o", v1.SiteTokenSpec{})
	on := newNode(t)
	_, oid, omsg := register(t, other, httpClient(t, other, nil), otok, "edge-1", on)
	if oid == nil {
		t.Fatal(omsg)
	}
	on.setCert(t, oid)
	if _, err := e.Renew(t, &on.cert, sites.RenewRequest{CSR: newNode(t).csr}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("foreign certificate: %v", err)
	}

	// Decommissioning stops both certificates at once.
	if err := admin.Patch(context.Background(), "Site", "", "edge-1", []byte(`{"spec":{"decommissioned":true}}`), nil); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*tls.Certificate{&n.cert, &n2.cert} {
		_, err := e.Renew(t, c, sites.RenewRequest{CSR: newNode(t).csr})
		if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "decommissioned") {
			t.Fatalf("renew after decommission: %v", err)
		}
	}
	// The name stays taken.
	if code, _, _ := register(t, e, httpClient(t, e, nil), tok, "edge-1", newNode(t)); code != http.StatusConflict {
		t.Fatalf("re-registering a decommissioned name: %d", code)
	}
	// Status follows the spec.
	deadline := time.Now().Add(10 * time.Second)
	for getSite(t, admin, "edge-1").Status.State != v1.SiteStateDecommissioned {
		if time.Now().After(deadline) {
			t.Fatal("site status never showed decommissioned")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestTokenMaxUsesUnderConcurrency(t *testing.T) {
	e := sitestest.Start(t)
	const maxUses, attempts = 15, 60
	tok := e.CreateToken(t, "", "burst", v1.SiteTokenSpec{MaxUses: maxUses})
	hc := httpClient(t, e, nil)
	nodes := make([]*node, attempts)
	for i := range nodes {
		nodes[i] = newNode(t)
	}
	var ok, usedUp, other atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < attempts; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			<-start
			code, _, _ := register(t, e, hc, tok, fmt.Sprintf("s-%03d", i), nodes[i])
			switch code {
			case http.StatusCreated:
				ok.Add(1)
			case http.StatusForbidden:
				usedUp.Add(1)
			default:
				other.Add(1)
			}
		}(i)
	}
	close(start)
	wg.Wait()
	if ok.Load() != maxUses || usedUp.Load() != attempts-maxUses || other.Load() != 0 {
		t.Fatalf("created %d, used up %d, other %d; want %d, %d, 0", ok.Load(), usedUp.Load(), other.Load(), maxUses, attempts-maxUses)
	}
	l, err := e.Client(t, "").List(context.Background(), "Site", "", client.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Items) != maxUses {
		t.Fatalf("%d sites stored, want %d", len(l.Items), maxUses)
	}
}
