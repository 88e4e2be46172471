package pki

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/meridian-platform/meridian/internal/store"
)

// DefaultCAPrefix is where LoadOrCreateCA keeps CAs, one key per CA name.
const DefaultCAPrefix = "/sys/ca/"

// ClockSkew is how far in the past issued certificates start to be valid, so
// that peers whose clocks run behind (small sites drift) accept them.
const ClockSkew = 5 * time.Minute

// CALifetime is the validity of a newly created CA certificate.
const CALifetime = 10 * 365 * 24 * time.Hour

// MaxLeafTTL bounds the validity of issued certificates.
const MaxLeafTTL = 397 * 24 * time.Hour

// CA is the console's certificate authority. Its private key is kept in the
// store sealed by the Keyring; the certificate is public.
type CA struct {
	name string
	cert *x509.Certificate
	pem  []byte
	key  *ecdsa.PrivateKey
	now  func() time.Time
}

type caRecord struct {
	Name    string `json:"name"`
	CertPEM string `json:"certPEM"`
	// Key is the PKCS#8 private key sealed by the Keyring.
	Key string `json:"key"`
}

// Sealer is what a CA needs from the Keyring.
type Sealer interface {
	Encrypt(plaintext, aad []byte) (string, error)
	DecryptContext(ctx context.Context, ct string, aad []byte) ([]byte, error)
}

func caAAD(name string) []byte { return []byte("meridian/ca/" + name) }

// LoadOrCreateCA loads the CA called name from st, or creates it (ECDSA
// P-256, self-signed) when absent. When two consoles start at once, the
// creation is a create-only transaction: one wins, the other loads its CA.
func LoadOrCreateCA(ctx context.Context, st store.Store, kr Sealer, name string) (*CA, error) {
	if name == "" || strings.Contains(name, "/") {
		return nil, fmt.Errorf("loading CA: invalid name %q", name)
	}
	key := DefaultCAPrefix + name
	kv, err := st.Get(ctx, key)
	if err == nil {
		return parseCA(ctx, kv.Value, kr, name)
	}
	if !errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("loading CA %q: %w", name, err)
	}
	ca, rec, err := newCA(name, kr, time.Now)
	if err != nil {
		return nil, fmt.Errorf("creating CA %q: %w", name, err)
	}
	b, _ := json.Marshal(rec)
	_, err = st.Txn(ctx, store.Txn{
		Compares: []store.Compare{{Key: key, ModRevision: 0}},
		Ops:      []store.Op{store.Put(key, b)},
	})
	if err == nil {
		return ca, nil
	}
	if !store.IsConflict(err) {
		return nil, fmt.Errorf("storing CA %q: %w", name, err)
	}
	kv, err = st.Get(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("loading CA %q after losing the race to create it: %w", name, err)
	}
	return parseCA(ctx, kv.Value, kr, name)
}

func newCA(name string, kr Sealer, now func() time.Time) (*CA, caRecord, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, caRecord{}, err
	}
	t := now()
	tmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{CommonName: "Meridian CA " + name, Organization: []string{"Meridian"}},
		NotBefore:             t.Add(-ClockSkew),
		NotAfter:              t.Add(CALifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		return nil, caRecord{}, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, caRecord{}, err
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, caRecord{}, err
	}
	sealed, err := kr.Encrypt(pkcs8, caAAD(name))
	if err != nil {
		return nil, caRecord{}, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	ca := &CA{name: name, cert: cert, pem: certPEM, key: priv, now: now}
	return ca, caRecord{Name: name, CertPEM: string(certPEM), Key: sealed}, nil
}

func parseCA(ctx context.Context, b []byte, kr Sealer, name string) (*CA, error) {
	var rec caRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, fmt.Errorf("loading CA %q: %w", name, err)
	}
	block, _ := pem.Decode([]byte(rec.CertPEM))
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("loading CA %q: no certificate PEM", name)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("loading CA %q: %w", name, err)
	}
	pkcs8, err := kr.DecryptContext(ctx, rec.Key, caAAD(name))
	if err != nil {
		return nil, fmt.Errorf("loading CA %q private key: %w", name, err)
	}
	k, err := x509.ParsePKCS8PrivateKey(pkcs8)
	if err != nil {
		return nil, fmt.Errorf("loading CA %q private key: %w", name, err)
	}
	priv, ok := k.(*ecdsa.PrivateKey)
	if !ok || !priv.PublicKey.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("loading CA %q: private key does not match certificate", name)
	}
	return &CA{name: name, cert: cert, pem: []byte(rec.CertPEM), key: priv, now: time.Now}, nil
}

func randomSerial() *big.Int {
	b := make([]byte, 16)
	rand.Read(b)
	b[0] &= 0x7f // positive
	b[0] |= 0x01 // never zero
	return new(big.Int).SetBytes(b)
}

// Name returns the CA's name.
func (c *CA) Name() string { return c.name }

// Certificate returns the CA certificate.
func (c *CA) Certificate() *x509.Certificate { return c.cert }

// CACertPEM returns the CA certificate in PEM form (what clients trust).
func (c *CA) CACertPEM() []byte { return append([]byte(nil), c.pem...) }

// CertPool returns a pool holding only this CA.
func (c *CA) CertPool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(c.cert)
	return p
}

// IssuedCert is a certificate issued by the CA, with its private key when the
// CA generated it.
type IssuedCert struct {
	// CertPEM holds the leaf certificate followed by the CA certificate.
	CertPEM []byte
	// KeyPEM is the PKCS#8 private key; nil when the caller supplied the
	// public key.
	KeyPEM []byte
	Leaf   *x509.Certificate
}

// TLSCertificate returns the certificate and key for a tls.Config.
func (ic *IssuedCert) TLSCertificate() (tls.Certificate, error) {
	if ic.KeyPEM == nil {
		return tls.Certificate{}, errors.New("issued certificate has no private key")
	}
	c, err := tls.X509KeyPair(ic.CertPEM, ic.KeyPEM)
	if err != nil {
		return tls.Certificate{}, err
	}
	c.Leaf = ic.Leaf
	return c, nil
}

// WithClock returns the CA signing with the same key but reading the time
// from now, for tests and tools that must issue certificates as of another
// time (a certificate that expired while its node was offline, say).
func (c *CA) WithClock(now func() time.Time) *CA {
	cp := *c
	cp.now = now
	return &cp
}

func (c *CA) validity(ttl time.Duration) (time.Time, time.Time, error) {
	if ttl <= 0 || ttl > MaxLeafTTL {
		return time.Time{}, time.Time{}, fmt.Errorf("ttl %s out of range (0, %s]", ttl, MaxLeafTTL)
	}
	t := c.now()
	nb, na := t.Add(-ClockSkew), t.Add(ttl)
	if na.After(c.cert.NotAfter) {
		na = c.cert.NotAfter
	}
	return nb, na, nil
}

func (c *CA) sign(tmpl *x509.Certificate, pub crypto.PublicKey) (*IssuedCert, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, pub, c.key)
	if err != nil {
		return nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	out := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	out = append(out, c.pem...)
	return &IssuedCert{CertPEM: out, Leaf: leaf}, nil
}

// IssueServerCert issues a TLS server certificate for hosts (DNS names or IP
// addresses) with a fresh P-256 key.
func (c *CA) IssueServerCert(hosts []string, ttl time.Duration) (*IssuedCert, error) {
	if len(hosts) == 0 {
		return nil, errors.New("issuing server certificate: no hosts")
	}
	nb, na, err := c.validity(ttl)
	if err != nil {
		return nil, fmt.Errorf("issuing server certificate: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject:      pkix.Name{CommonName: commonName(hosts[0]), Organization: []string{"Meridian"}},
		NotBefore:    nb,
		NotAfter:     na,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		h = strings.TrimSpace(h)
		if h == "" {
			return nil, errors.New("issuing server certificate: empty host")
		}
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("issuing server certificate: %w", err)
	}
	ic, err := c.sign(tmpl, &priv.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("issuing server certificate for %v: %w", hosts, err)
	}
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(priv)
	ic.KeyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})
	return ic, nil
}

// IssueClientCert issues a TLS client certificate for pub whose only name is
// the URI SAN spiffeURI (see SiteSPIFFEID).
func (c *CA) IssueClientCert(spiffeURI string, pub crypto.PublicKey, ttl time.Duration) (*IssuedCert, error) {
	u, err := parseSPIFFE(spiffeURI)
	if err != nil {
		return nil, fmt.Errorf("issuing client certificate: %w", err)
	}
	switch pub.(type) {
	case *ecdsa.PublicKey, ed25519PublicKey:
	default:
		return nil, fmt.Errorf("issuing client certificate: unsupported public key type %T", pub)
	}
	nb, na, err := c.validity(ttl)
	if err != nil {
		return nil, fmt.Errorf("issuing client certificate: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject:      pkix.Name{CommonName: commonName(u.String()), Organization: []string{"Meridian"}},
		NotBefore:    nb,
		NotAfter:     na,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		URIs:         []*url.URL{u},
	}
	ic, err := c.sign(tmpl, pub)
	if err != nil {
		return nil, fmt.Errorf("issuing client certificate for %s: %w", spiffeURI, err)
	}
	return ic, nil
}

// IssueClientCertFromCSR checks the CSR's signature and issues a client
// certificate for its public key. The names the CSR asks for are ignored:
// the certificate names spiffeURI only, which the caller decides.
func (c *CA) IssueClientCertFromCSR(csrPEMOrDER []byte, spiffeURI string, ttl time.Duration) (*IssuedCert, error) {
	der := csrPEMOrDER
	if block, _ := pem.Decode(csrPEMOrDER); block != nil {
		if block.Type != "CERTIFICATE REQUEST" {
			return nil, fmt.Errorf("issuing client certificate: PEM block is %q, want CERTIFICATE REQUEST", block.Type)
		}
		der = block.Bytes
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, fmt.Errorf("issuing client certificate: parsing CSR: %w", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("issuing client certificate: CSR signature: %w", err)
	}
	return c.IssueClientCert(spiffeURI, csr.PublicKey, ttl)
}

// ServerTLSConfig returns a tls.Config for a console listener serving cert
// that also verifies client certificates issued by this CA when presented
// (VerifyClientCertIfGiven); handlers decide which routes require one.
func (c *CA) ServerTLSConfig(cert tls.Certificate) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		ClientCAs:    c.CertPool(),
		ClientAuth:   tls.VerifyClientCertIfGiven,
	}
}

// VerifyClientCert checks that cert chains to this CA for client auth at
// time now widened by ClockSkew (a site whose clock drifts still verifies).
func (c *CA) VerifyClientCert(cert *x509.Certificate, now time.Time) error {
	for _, t := range []time.Time{now, now.Add(ClockSkew), now.Add(-ClockSkew)} {
		_, err := cert.Verify(x509.VerifyOptions{
			Roots:       c.CertPool(),
			CurrentTime: t,
			KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		})
		if err == nil {
			return nil
		}
		if t == now.Add(-ClockSkew) {
			return fmt.Errorf("verifying client certificate: %w", err)
		}
	}
	return nil
}

// commonName returns s when it fits the 64-character bound of RFC 5280;
// names are carried by the SANs anyway.
func commonName(s string) string {
	if len(s) > 64 {
		return ""
	}
	return s
}
