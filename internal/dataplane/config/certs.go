package config

import (
	"crypto/tls"
	"crypto/x509"
	"strings"
)

// Certs selects a server certificate by SNI: exact names first, then
// wildcards ("*.example.com" covers one label), then the default.
type Certs struct {
	exact    map[string]*tls.Certificate
	wildcard map[string]*tls.Certificate // key: "example.com"
	def      *tls.Certificate
}

func (c *Certs) add(cert *tls.Certificate, asDefault bool) {
	if asDefault || c.def == nil {
		c.def = cert
	}
	leaf := cert.Leaf
	if leaf == nil && len(cert.Certificate) > 0 {
		l, err := x509.ParseCertificate(cert.Certificate[0])
		if err != nil {
			return
		}
		leaf = l
	}
	if leaf == nil {
		return
	}
	names := leaf.DNSNames
	if len(names) == 0 && leaf.Subject.CommonName != "" {
		names = []string{leaf.Subject.CommonName}
	}
	for _, n := range names {
		n = strings.ToLower(n)
		if strings.HasPrefix(n, "*.") {
			if _, taken := c.wildcard[n[2:]]; !taken {
				c.wildcard[n[2:]] = cert
			}
		} else if _, taken := c.exact[n]; !taken {
			c.exact[n] = cert
		}
	}
}

// Get returns the certificate for a server name (the default when none
// matches or the name is empty).
func (c *Certs) Get(serverName string) *tls.Certificate {
	if serverName != "" {
		n := strings.TrimSuffix(lowerASCII(serverName), ".")
		if cert := c.exact[n]; cert != nil {
			return cert
		}
		if i := strings.IndexByte(n, '.'); i > 0 {
			if cert := c.wildcard[n[i+1:]]; cert != nil {
				return cert
			}
		}
	}
	return c.def
}
