package pki

import (
	"crypto/ed25519"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

type ed25519PublicKey = ed25519.PublicKey

// SiteSPIFFEID returns the identity of a site, spiffe://<tenant>/site/<name>.
func SiteSPIFFEID(tenant, site string) string {
	return (&url.URL{Scheme: "spiffe", Host: tenant, Path: "/site/" + site}).String()
}

func parseSPIFFE(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("invalid SPIFFE ID %q: %w", s, err)
	}
	if u.Scheme != "spiffe" || u.Host == "" || u.User != nil || u.Port() != "" || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return nil, fmt.Errorf("invalid SPIFFE ID %q: want spiffe://<trust domain>/<path>", s)
	}
	if u.Path == "" || u.Path == "/" || strings.Contains(u.Path, "//") || strings.HasSuffix(u.Path, "/") {
		return nil, fmt.Errorf("invalid SPIFFE ID %q: bad path", s)
	}
	for _, seg := range strings.Split(u.Path[1:], "/") {
		if seg == "." || seg == ".." {
			return nil, fmt.Errorf("invalid SPIFFE ID %q: bad path", s)
		}
	}
	return u, nil
}

// ParseSiteSPIFFEID splits spiffe://<tenant>/site/<name> into its parts.
func ParseSiteSPIFFEID(s string) (tenant, site string, err error) {
	u, err := parseSPIFFE(s)
	if err != nil {
		return "", "", err
	}
	name, ok := strings.CutPrefix(u.Path, "/site/")
	if !ok || name == "" || strings.Contains(name, "/") {
		return "", "", fmt.Errorf("invalid site SPIFFE ID %q: want spiffe://<tenant>/site/<name>", s)
	}
	return u.Host, name, nil
}

// SiteIdentity returns the tenant and site named by a client certificate
// issued with IssueClientCert. The caller must have verified the chain.
func SiteIdentity(cert *x509.Certificate) (tenant, site string, err error) {
	if cert == nil {
		return "", "", errors.New("no client certificate")
	}
	if len(cert.URIs) != 1 {
		return "", "", fmt.Errorf("client certificate has %d URI SANs, want 1", len(cert.URIs))
	}
	return ParseSiteSPIFFEID(cert.URIs[0].String())
}
