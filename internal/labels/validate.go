package labels

import (
	"fmt"
	"strings"
)

// Limits of label keys and values (the Kubernetes ones).
const (
	// MaxNameLength bounds the name part of a key and a value.
	MaxNameLength = 63
	// MaxPrefixLength bounds the optional DNS-subdomain prefix of a key.
	MaxPrefixLength = 253
)

// ValidateKey checks a label key: an optional DNS-1123 subdomain prefix and
// a slash, then a name of at most 63 characters made of alphanumerics, '-',
// '_' and '.', starting and ending with an alphanumeric. It returns nil when
// the key is valid.
func ValidateKey(key string) error {
	if key == "" {
		return fmt.Errorf("label key must not be empty")
	}
	name := key
	if i := strings.IndexByte(key, '/'); i >= 0 {
		prefix := key[:i]
		name = key[i+1:]
		if prefix == "" {
			return fmt.Errorf("label key %q: prefix before '/' must not be empty", key)
		}
		if err := validateSubdomain(prefix); err != nil {
			return fmt.Errorf("label key %q: prefix %w", key, err)
		}
	}
	if name == "" {
		return fmt.Errorf("label key %q: name must not be empty", key)
	}
	if err := validateName(name); err != nil {
		return fmt.Errorf("label key %q: name %w", key, err)
	}
	return nil
}

// ValidateValue checks a label value: empty, or at most 63 characters made
// of alphanumerics, '-', '_' and '.', starting and ending with an
// alphanumeric. It returns nil when the value is valid.
func ValidateValue(v string) error {
	if v == "" {
		return nil
	}
	if err := validateName(v); err != nil {
		return fmt.Errorf("label value %q: %w", v, err)
	}
	return nil
}

// ValidateSet checks every key and value of a label map, in key order, and
// returns the problems found keyed by label key.
func ValidateSet(set map[string]string) map[string]error {
	var out map[string]error
	for k, v := range set {
		err := ValidateKey(k)
		if err == nil {
			err = ValidateValue(v)
		}
		if err != nil {
			if out == nil {
				out = map[string]error{}
			}
			out[k] = err
		}
	}
	return out
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// validateName checks the name part of a key, or a non-empty value.
func validateName(s string) error {
	if len(s) > MaxNameLength {
		return fmt.Errorf("must be at most %d characters", MaxNameLength)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isAlnum(c) {
			continue
		}
		if (c == '-' || c == '_' || c == '.') && i > 0 && i < len(s)-1 {
			continue
		}
		if c == '-' || c == '_' || c == '.' {
			return fmt.Errorf("must start and end with a letter or digit")
		}
		return fmt.Errorf("has invalid character %q at offset %d (allowed: letters, digits, '-', '_', '.')", c, i)
	}
	return nil
}

// validateSubdomain checks a DNS-1123 subdomain (lower-case labels separated
// by dots, at most 253 characters).
func validateSubdomain(s string) error {
	if len(s) > MaxPrefixLength {
		return fmt.Errorf("must be at most %d characters", MaxPrefixLength)
	}
	for _, part := range strings.Split(s, ".") {
		if part == "" || len(part) > 63 {
			return fmt.Errorf("%q must be a DNS-1123 subdomain (lower-case labels of 1-63 characters separated by dots)", s)
		}
		for i := 0; i < len(part); i++ {
			c := part[i]
			ok := c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' && i > 0 && i < len(part)-1
			if !ok {
				return fmt.Errorf("%q must be a DNS-1123 subdomain (lower-case letters, digits and '-', separated by dots)", s)
			}
		}
	}
	return nil
}
