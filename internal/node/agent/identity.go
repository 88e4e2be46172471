package agent

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
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/meridian-platform/meridian/internal/distrib"
	"github.com/meridian-platform/meridian/internal/fsutil"
	"github.com/meridian-platform/meridian/internal/sites"
)

// Files in the data directory.
const (
	keyFile      = "node.key"      // the node's private key (PKCS#8 PEM, 0600)
	nextKeyFile  = "node.key.next" // a renewed key until its certificate is saved
	certFile     = "node.crt"      // its client certificate chain
	caFile       = "ca.crt"        // the console CA
	identityFile = "identity.json" // console URL, tenant, site
	stateKeyFile = "state.key"     // key sealing the last-known-good snapshot (0600)
	snapshotFile = "snapshot.enc"  // last-known-good snapshot
)

type identityRecord struct {
	Console string    `json:"console"`
	Tenant  string    `json:"tenant"`
	Site    string    `json:"site"`
	State   string    `json:"state,omitempty"`
	Issued  time.Time `json:"issued"`
}

// identity is the node's current certificate.
type identity struct {
	rec    identityRecord
	cert   tls.Certificate
	leaf   *x509.Certificate
	caPool *x509.CertPool
	caPEM  []byte
}

func (a *Agent) path(name string) string { return filepath.Join(a.opts.DataDir, name) }

// loadIdentity reads the saved key, certificate and CA (nil when the node
// never registered).
func (a *Agent) loadIdentity() (*identity, error) {
	recB, err := os.ReadFile(a.path(identityFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading node identity: %w", err)
	}
	var rec identityRecord
	if err := json.Unmarshal(recB, &rec); err != nil {
		return nil, fmt.Errorf("reading node identity: %w", err)
	}
	certPEM, err := os.ReadFile(a.path(certFile))
	if err != nil {
		return nil, fmt.Errorf("reading node certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(a.path(keyFile))
	if err != nil {
		return nil, fmt.Errorf("reading node key: %w", err)
	}
	caPEM, err := os.ReadFile(a.path(caFile))
	if err != nil {
		return nil, fmt.Errorf("reading console CA: %w", err)
	}
	id, err := newIdentity(rec, certPEM, keyPEM, caPEM)
	if err == nil {
		return id, nil
	}
	// Stopped in the middle of saving a renewal: the new certificate is
	// in place and its key still under its temporary name.
	next, nerr := os.ReadFile(a.path(nextKeyFile))
	if nerr != nil {
		return nil, err
	}
	id, nerr = newIdentity(rec, certPEM, next, caPEM)
	if nerr != nil {
		return nil, err
	}
	if err := os.Rename(a.path(nextKeyFile), a.path(keyFile)); err != nil {
		return nil, fmt.Errorf("completing the saved renewal: %w", err)
	}
	return id, nil
}

func newIdentity(rec identityRecord, certPEM, keyPEM, caPEM []byte) (*identity, error) {
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("loading node certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("loading node certificate: %w", err)
	}
	c.Leaf = leaf
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("loading console CA: no certificate in PEM")
	}
	return &identity{rec: rec, cert: c, leaf: leaf, caPool: pool, caPEM: caPEM}, nil
}

// saveIdentity writes key, certificate, CA and record (each atomically).
// The key is written under a temporary name first and renamed once the
// certificate is in place, so that a node stopped in between finds a
// matching pair (loadIdentity completes the rename).
func (a *Agent) saveIdentity(rec identityRecord, id *sites.Identity, keyPEM []byte) (*identity, error) {
	ident, err := newIdentity(rec, []byte(id.Certificate), keyPEM, []byte(id.CA))
	if err != nil {
		return nil, err
	}
	recB, _ := json.MarshalIndent(rec, "", "  ")
	for _, f := range []struct {
		name string
		data []byte
		mode os.FileMode
	}{{nextKeyFile, keyPEM, 0o600}, {certFile, []byte(id.Certificate), 0o644}, {caFile, []byte(id.CA), 0o644}, {identityFile, recB, 0o644}} {
		if err := fsutil.WriteFileAtomic(a.path(f.name), f.data, f.mode); err != nil {
			return nil, fmt.Errorf("saving %s: %w", f.name, err)
		}
		if f.name == certFile {
			if err := os.Rename(a.path(nextKeyFile), a.path(keyFile)); err != nil {
				return nil, fmt.Errorf("saving %s: %w", keyFile, err)
			}
		}
	}
	return ident, nil
}

func newKeyAndCSR(site string) (keyPEM, csrPEM []byte, err error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, priv)
	if err != nil {
		return nil, nil, err
	}
	pk, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), nil
}

// permanent marks errors that retrying cannot fix (a refused token, a
// decommissioned site).
type permanent struct{ err error }

func (p *permanent) Error() string { return p.err.Error() }
func (p *permanent) Unwrap() error { return p.err }

func (a *Agent) httpClient(roots *x509.CertPool) *http.Client {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: true}}
}

func (a *Agent) post(ctx context.Context, hc *http.Client, path string, in, out any) error {
	b, _ := json.Marshal(in)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(a.opts.ConsoleURL, "/")+path, bytes.NewReader(b))
	if err != nil {
		return &permanent{err}
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 != 2 {
		e := sites.DecodeError(resp.StatusCode, body)
		if resp.StatusCode >= 400 && resp.StatusCode < 500 && resp.StatusCode != http.StatusTooManyRequests {
			return &permanent{e}
		}
		return e
	}
	return json.Unmarshal(body, out)
}

// register enrols the node with its token.
func (a *Agent) register(ctx context.Context) (*identity, error) {
	if a.opts.Token == "" {
		return nil, &permanent{errors.New("the node is not registered yet: a site token is required (--token)")}
	}
	roots, err := a.bootstrapRoots()
	if err != nil {
		return nil, &permanent{err}
	}
	keyPEM, csrPEM, err := newKeyAndCSR(a.opts.Name)
	if err != nil {
		return nil, &permanent{err}
	}
	var out sites.Identity
	err = a.post(ctx, a.httpClient(roots), sites.RegisterPath, sites.RegisterRequest{Token: a.opts.Token, Name: a.opts.Name,
		CSR: string(csrPEM), NodeVersion: a.opts.NodeVersion, CapabilityVersion: a.opts.CapabilityVersion}, &out)
	var verr *tls.CertificateVerificationError
	if errors.As(err, &verr) {
		return nil, &permanent{fmt.Errorf("registering site %q: the console's certificate is not trusted: "+
			"pass its CA (the console writes DATA_DIR/ca.crt) with --ca-file: %w", a.opts.Name, err)}
	}
	if err != nil {
		return nil, fmt.Errorf("registering site %q: %w", a.opts.Name, err)
	}
	a.log.Info("registered", "tenant", out.Tenant, "site", out.Site, "state", out.State, "certificateExpires", out.NotAfter)
	return a.saveIdentity(identityRecord{Console: a.opts.ConsoleURL, Tenant: out.Tenant, Site: out.Site, State: out.State,
		Issued: a.opts.Now().UTC()}, &out, keyPEM)
}

// bootstrapRoots is what the node trusts before it has the console CA.
func (a *Agent) bootstrapRoots() (*x509.CertPool, error) {
	if len(a.opts.CAData) == 0 {
		return x509.SystemCertPool()
	}
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(a.opts.CAData) {
		return nil, errors.New("the console CA given holds no PEM certificate")
	}
	return p, nil
}

// renew exchanges the current (or recently expired) certificate for a new
// one with a fresh key, over mTLS.
func (a *Agent) renew(ctx context.Context, id *identity) (*identity, error) {
	keyPEM, csrPEM, err := newKeyAndCSR(id.rec.Site)
	if err != nil {
		return nil, err
	}
	cert := id.cert
	conn, err := a.dial(id.caPool, func() *tls.Certificate { return &cert })
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	var out sites.Identity
	err = conn.Invoke(ctx, distrib.RenewMethod, &sites.RenewRequest{CSR: string(csrPEM),
		NodeVersion: a.opts.NodeVersion, CapabilityVersion: a.opts.CapabilityVersion}, &out)
	if err != nil {
		return nil, fmt.Errorf("renewing the certificate of site %q: %w", id.rec.Site, err)
	}
	rec := id.rec
	rec.State, rec.Issued = out.State, a.opts.Now().UTC()
	a.log.Info("certificate renewed", "site", rec.Site, "expires", out.NotAfter)
	return a.saveIdentity(rec, &out, keyPEM)
}

// renewDue says whether a certificate should be renewed now: two thirds of
// its lifetime have passed (or it expired).
func renewDue(leaf *x509.Certificate, now time.Time) bool {
	life := leaf.NotAfter.Sub(leaf.NotBefore)
	return now.After(leaf.NotBefore.Add(life * 2 / 3))
}

// Registered reports whether dataDir holds a node identity (the node
// registered before and needs no token).
func Registered(dataDir string) bool {
	_, err := os.Stat(filepath.Join(dataDir, identityFile))
	return err == nil
}
