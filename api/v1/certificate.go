package v1

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"strings"
)

// Certificate holds a PEM certificate chain and its private key. A
// Certificate without a private key serves as a CA bundle (OriginPool
// spec.tls.caRef).
type Certificate struct {
	Envelope
	Spec   CertificateSpec `json:"spec"`
	Status Status          `json:"status,omitempty"`
}

// CertificateSpec is the desired state of a Certificate.
type CertificateSpec struct {
	// Certificate is one or more PEM "CERTIFICATE" blocks: the leaf first,
	// then intermediates (or, without a key, the CA certificates).
	Certificate string `json:"certificate"`
	// PrivateKey is the PEM private key of the leaf; write-only.
	PrivateKey Secret `json:"privateKey,omitempty"`
}

// Validate checks that the certificate parses and, when a key is given,
// that the key matches the leaf.
func (c *Certificate) Validate() FieldErrors {
	var errs FieldErrors
	s := &c.Spec
	if strings.TrimSpace(s.Certificate) == "" {
		return FieldErrors{Required("spec.certificate", "a PEM certificate is required")}
	}
	rest := []byte(s.Certificate)
	n := 0
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			errs = append(errs, Invalid("spec.certificate", b.Type, "only CERTIFICATE PEM blocks are allowed"))
			continue
		}
		if _, err := x509.ParseCertificate(b.Bytes); err != nil {
			errs = append(errs, Invalid("spec.certificate", "PEM block", "parsing certificate: "+err.Error()))
		}
		n++
	}
	if n == 0 {
		errs = append(errs, Invalid("spec.certificate", "(PEM)", "no CERTIFICATE PEM block found"))
	}
	if s.PrivateKey != "" && s.PrivateKey != SecretRedacted && len(errs) == 0 {
		if _, err := tls.X509KeyPair([]byte(s.Certificate), []byte(s.PrivateKey)); err != nil {
			errs = append(errs, FieldError{Field: "spec.privateKey", Reason: ReasonInvalid,
				Message: "private key does not parse or does not match the certificate: " + err.Error()})
		}
	}
	return errs
}

// SecretFields returns the private key.
func (c *Certificate) SecretFields() []SecretField {
	return []SecretField{{Field: "spec.privateKey", Value: &c.Spec.PrivateKey}}
}
