package apiserver

import (
	"context"
	"fmt"
	"strings"

	v1 "github.com/meridian-platform/meridian/api/v1"
)

// SecretEncrypter seals secret fields before they are stored (satisfied by
// *pki.Keyring). The ciphertext is stored in place of the plaintext.
type SecretEncrypter interface {
	Encrypt(plaintext, aad []byte) (string, error)
}

// SecretAAD is the associated data a secret field of an object is sealed
// with: whoever decrypts it (configuration distribution) passes the same.
// ns is empty for tenant-scoped kinds.
func SecretAAD(tenant, kind, ns, name, field string) []byte {
	return []byte("meridian/secret/v1:" + tenant + "/" + kind + "/" + ns + "/" + name + "/" + field)
}

// isPasswordField reports whether a secret field holds a password, stored
// as a slow one-way hash instead of a ciphertext.
func isPasswordField(kind, field string) bool {
	return kind == "User" && field == "spec.password"
}

// consoleField reports whether a secret field is written by the console
// only (a token hash in status): never sealed, never taken from a client.
func consoleField(field string) bool { return strings.HasPrefix(field, "status.") }

// sealSecrets replaces plaintext secrets of p.obj by ciphertext (or a
// password hash) and redacted values by the sealed value of keepFrom.
func (s *Server) sealSecrets(ctx context.Context, p *writePlan, keepFrom v1.Object) error {
	sh, ok := p.obj.(v1.SecretHolder)
	if !ok {
		return nil
	}
	kept := map[string]v1.Secret{}
	if keepFrom != nil {
		if kh, ok := keepFrom.(v1.SecretHolder); ok {
			for _, f := range kh.SecretFields() {
				if f.Value != nil {
					kept[f.Field] = *f.Value
				}
			}
		}
	}
	md := p.obj.GetMetadata()
	var causes v1.FieldErrors
	for _, f := range sh.SecretFields() {
		if f.Value == nil || consoleField(f.Field) {
			continue
		}
		v := *f.Value
		switch {
		case v == "":
		case v == v1.SecretRedacted:
			old, ok := kept[f.Field]
			if !ok || old == "" {
				causes = append(causes, v1.FieldError{Field: f.Field, Reason: v1.ReasonRequired,
					Message: fmt.Sprintf("%q keeps the stored secret, but none is stored: give the value", string(v1.SecretRedacted))})
				continue
			}
			*f.Value = old
		case isPasswordField(p.info.Kind, f.Field):
			h, err := s.opts.Passwords.HashPassword(string(v))
			if err != nil {
				return errInternal(fmt.Errorf("hashing %s: %w", f.Field, err))
			}
			*f.Value = v1.Secret(h)
		default:
			ct, err := s.opts.Secrets.Encrypt([]byte(v), SecretAAD(p.tenant, p.info.Kind, md.Namespace, md.Name, f.Field))
			if err != nil {
				return errInternal(fmt.Errorf("encrypting %s: %w", f.Field, err))
			}
			*f.Value = v1.Secret(ct)
		}
	}
	if len(causes) > 0 {
		return errInvalid(p.info.Kind, md.Name, causes)
	}
	return nil
}

// redact replaces every set secret of obj by SecretRedacted.
func (s *Server) redact(_ v1.KindInfo, obj v1.Object) {
	sh, ok := obj.(v1.SecretHolder)
	if !ok {
		return
	}
	for _, f := range sh.SecretFields() {
		if f.Value != nil && *f.Value != "" {
			*f.Value = v1.SecretRedacted
		}
	}
}
