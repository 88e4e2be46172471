package v1

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/meridian-platform/meridian/internal/labels"
)

// Bounds on metadata.
const (
	// MaxNameLength bounds metadata.name (a DNS-1123 label).
	MaxNameLength = 63
	// MaxAnnotationsBytes bounds the total size of annotation keys and values.
	MaxAnnotationsBytes = 256 * 1024
	// MaxLabels bounds the number of labels of one object.
	MaxLabels = 64
)

// IsDNS1123Label reports whether s is a DNS-1123 label: 1-63 lower-case
// letters, digits and '-', starting and ending with a letter or digit.
func IsDNS1123Label(s string) bool {
	if len(s) == 0 || len(s) > MaxNameLength {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case c == '-' && i > 0 && i < len(s)-1:
		default:
			return false
		}
	}
	return true
}

const dnsLabelMsg = "must be a DNS-1123 label: 1-63 lower-case letters, digits and '-', starting and ending with a letter or digit"

// validateNameField checks a by-name field (a name or a reference).
func validateNameField(field, name string) FieldErrors {
	if name == "" {
		return FieldErrors{Required(field, "")}
	}
	if !IsDNS1123Label(name) {
		return FieldErrors{Invalid(field, name, dnsLabelMsg)}
	}
	return nil
}

// ValidateObjectMeta checks metadata for an object of the given scope:
// the name, the namespace (required for namespaced kinds, forbidden
// otherwise), labels and annotations. Fields set by the console are not
// checked.
func ValidateObjectMeta(m *ObjectMeta, scope Scope) FieldErrors {
	var errs FieldErrors
	errs = append(errs, validateNameField("metadata.name", m.Name)...)
	switch scope {
	case ScopeNamespaced:
		errs = append(errs, validateNameField("metadata.namespace", m.Namespace)...)
	default:
		if m.Namespace != "" {
			errs = append(errs, FieldError{Field: "metadata.namespace", Reason: ReasonForbidden,
				Message: "must not be set: the kind is not namespaced"})
		}
	}
	errs = append(errs, validateLabels("metadata.labels", m.Labels)...)
	errs = append(errs, validateAnnotations("metadata.annotations", m.Annotations)...)
	return errs
}

// validateLabels checks a label map with Kubernetes key/value syntax.
func validateLabels(field string, set map[string]string) FieldErrors {
	var errs FieldErrors
	if len(set) > MaxLabels {
		errs = append(errs, FieldError{Field: field, Reason: ReasonTooLong,
			Message: fmt.Sprintf("at most %d labels are allowed, got %d", MaxLabels, len(set))})
	}
	for _, k := range sortedKeys(set) {
		if err := labels.ValidateKey(k); err != nil {
			errs = append(errs, Invalid(mapPath(field, k), k, err.Error()))
			continue
		}
		if err := labels.ValidateValue(set[k]); err != nil {
			errs = append(errs, Invalid(mapPath(field, k), set[k], err.Error()))
		}
	}
	return errs
}

func validateAnnotations(field string, ann map[string]string) FieldErrors {
	var errs FieldErrors
	total := 0
	for _, k := range sortedKeys(ann) {
		total += len(k) + len(ann[k])
		if err := labels.ValidateKey(k); err != nil {
			errs = append(errs, Invalid(mapPath(field, k), k, err.Error()))
		}
	}
	if total > MaxAnnotationsBytes {
		errs = append(errs, FieldError{Field: field, Reason: ReasonTooLong,
			Message: fmt.Sprintf("annotations total %d bytes, more than the limit of %d", total, MaxAnnotationsBytes)})
	}
	return errs
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// mapPath is the path of a map entry: labels[app].
func mapPath(field, key string) string { return field + "[" + key + "]" }

// idx is the path of a list element: rules[2].
func idx(field string, i int) string { return fmt.Sprintf("%s[%d]", field, i) }

func oneOf(field, v string, allowed []string) FieldErrors {
	if slices.Contains(allowed, v) {
		return nil
	}
	if v == "" {
		return FieldErrors{Required(field, "supported values: "+strings.Join(allowed, ", "))}
	}
	return FieldErrors{NotSupported(field, v, allowed)}
}

func forbidden(field, msg string) FieldError {
	return FieldError{Field: field, Reason: ReasonForbidden, Message: msg}
}

func tooLong(field string, n, limit int) FieldError {
	return FieldError{Field: field, Reason: ReasonTooLong, Message: fmt.Sprintf("%d bytes, more than the limit of %d", n, limit)}
}

func duplicate(field string, v any) FieldError {
	return FieldError{Field: field, Reason: ReasonDuplicate, Message: fmt.Sprintf("duplicate value %q", fmt.Sprint(v))}
}

// validateCIDRs checks a list of CIDRs (a bare address counts as a
// single-host prefix).
func validateCIDRs(field string, cidrs []string) FieldErrors {
	var errs FieldErrors
	for i, c := range cidrs {
		if _, err := parseCIDR(c); err != nil {
			errs = append(errs, Invalid(idx(field, i), c, err.Error()))
		}
	}
	return errs
}

// parseCIDR reads "10.0.0.0/8", "2001:db8::/32" or a bare address.
func parseCIDR(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("must be a CIDR such as 10.0.0.0/8")
		}
		if p.Masked() != p {
			return netip.Prefix{}, fmt.Errorf("host bits are set; did you mean %s?", p.Masked())
		}
		return p, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("must be a CIDR such as 10.0.0.0/8 or an IP address")
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// MaxRegexLength bounds regular expressions in specs.
const MaxRegexLength = 4096

func validateRegex(field, re string) FieldErrors {
	if len(re) > MaxRegexLength {
		return FieldErrors{tooLong(field, len(re), MaxRegexLength)}
	}
	if _, err := regexp.Compile(re); err != nil {
		return FieldErrors{Invalid(field, re, "does not compile: "+err.Error())}
	}
	return nil
}

// isHTTPToken reports whether s is an RFC 9110 token (header names, methods).
func isHTTPToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			continue
		}
		if !strings.ContainsRune("!#$%&'*+-.^_`|~", rune(c)) {
			return false
		}
	}
	return true
}

// isHostPattern reports whether s is a DNS name, optionally starting with
// "*." (a wildcard), or "*" alone.
func isHostPattern(s string) bool {
	if s == "*" {
		return true
	}
	s = strings.TrimPrefix(s, "*.")
	if s == "" || len(s) > 253 {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if l == "" || len(l) > 63 {
			return false
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' ||
				c == '-' && i > 0 && i < len(l)-1
			if !ok {
				return false
			}
		}
	}
	return true
}

func validatePath(field, p string) FieldErrors {
	if !strings.HasPrefix(p, "/") {
		return FieldErrors{Invalid(field, p, "must start with '/'")}
	}
	for i := 0; i < len(p); i++ {
		if p[i] < 0x21 || p[i] == 0x7f {
			return FieldErrors{Invalid(field, p, "must not contain spaces or control characters")}
		}
	}
	return nil
}
