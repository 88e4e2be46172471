package v1

import (
	"fmt"
	"strings"
	"time"
)

// APIVersion is the apiVersion of every object in this package.
const APIVersion = "meridian/v1"

// TypeMeta names an object's schema.
type TypeMeta struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
}

// ObjectMeta is the metadata every object carries. Fields marked "set by the
// console" are ignored on input and filled in on output.
type ObjectMeta struct {
	// Name is a DNS-1123 label, unique per kind within its namespace (or
	// within its tenant for tenant-scoped kinds).
	Name string `json:"name"`
	// Namespace is empty for tenant-scoped and system kinds.
	Namespace   string            `json:"namespace,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`

	// Tenant is set by the console from the caller's credentials.
	Tenant string `json:"tenant,omitempty"`
	// UID is set by the console when the object is created.
	UID string `json:"uid,omitempty"`
	// ResourceVersion is the store revision of the last change (set by the
	// console; sent back by a client for optimistic concurrency).
	ResourceVersion string `json:"resourceVersion,omitempty"`
	// Generation counts spec changes (set by the console).
	Generation int64 `json:"generation,omitempty"`
	// CreationTimestamp is set by the console.
	CreationTimestamp *time.Time `json:"creationTimestamp,omitempty"`
}

// Envelope is embedded (untagged, so JSON promotes its fields) in every kind:
// apiVersion, kind and metadata.
type Envelope struct {
	TypeMeta `json:",inline"`
	Metadata ObjectMeta `json:"metadata"`
}

// GetTypeMeta returns the object's apiVersion and kind.
func (e *Envelope) GetTypeMeta() *TypeMeta { return &e.TypeMeta }

// GetMetadata returns the object's metadata.
func (e *Envelope) GetMetadata() *ObjectMeta { return &e.Metadata }

// Object is implemented by every kind (through Envelope).
type Object interface {
	GetTypeMeta() *TypeMeta
	GetMetadata() *ObjectMeta
}

// Condition is one aspect of an object's observed state (Kubernetes style).
type Condition struct {
	Type               string    `json:"type"`
	Status             string    `json:"status"` // True | False | Unknown
	Reason             string    `json:"reason,omitempty"`
	Message            string    `json:"message,omitempty"`
	LastTransitionTime time.Time `json:"lastTransitionTime,omitempty"`
}

// Status is the status most kinds carry; it is written by the console only.
type Status struct {
	ObservedGeneration int64       `json:"observedGeneration,omitempty"`
	Conditions         []Condition `json:"conditions,omitempty"`
	// Rollout summarises where the object is applied, e.g.
	// "applied 24,998/25,000 sites; 2 failed: ...".
	Rollout string `json:"rollout,omitempty"`
	// Errors lists problems found with the object (one broken object is
	// marked and skipped; its neighbours still apply).
	Errors []string `json:"errors,omitempty"`
}

// Defaulter is implemented by kinds that fill in defaults. Defaults are
// applied by the console before validation and are visible on read.
type Defaulter interface {
	Default()
}

// Validator is implemented by kinds whose content can be checked without
// looking at other objects. Field paths start at the object root
// ("spec.routes[2].pool").
type Validator interface {
	Validate() FieldErrors
}

// Reference is a by-name reference from one object to another.
type Reference struct {
	// Field is the path of the referring field, e.g. "spec.routes[2].pool".
	Field string
	// Kind is the referenced kind, e.g. "OriginPool".
	Kind string
	// Namespace is the referenced object's namespace; empty for
	// tenant-scoped kinds.
	Namespace string
	Name      string
}

// Referrer is implemented by kinds that refer to other objects. The console
// rejects an object whose references dangle, and refuses to delete an
// object that others refer to.
type Referrer interface {
	References() []Reference
}

// SecretHolder is implemented by kinds with write-only secret fields.
type SecretHolder interface {
	// SecretFields returns pointers to the object's secret fields with
	// their field paths, so that the console can encrypt them at rest and
	// redact them on read.
	SecretFields() []SecretField
}

// SecretField is one write-only secret in an object.
type SecretField struct {
	Field string
	Value *Secret
}

// Secret is a write-only value (private keys, API keys, passwords). The API
// never returns it: a set secret is shown as SecretRedacted. Writing
// SecretRedacted back keeps the stored value.
type Secret string

// SecretRedacted is how a set secret is shown on read.
const SecretRedacted Secret = "(set)"

// Scope says where names of a kind are unique.
type Scope int

const (
	// ScopeNamespaced kinds live in a namespace of a tenant.
	ScopeNamespaced Scope = iota + 1
	// ScopeTenant kinds live directly in a tenant (Namespace, Site, ...).
	ScopeTenant
	// ScopeSystem kinds are managed by the system tenant only (Tenant).
	ScopeSystem
)

// FieldError is one problem with one field.
type FieldError struct {
	// Field is the path, e.g. "spec.routes[2].pool".
	Field string `json:"field"`
	// Reason is machine-readable: FieldValueRequired, FieldValueInvalid,
	// FieldValueNotSupported, FieldValueDuplicate, FieldValueNotFound,
	// FieldValueForbidden, FieldValueTooLong, FieldValueTypeInvalid,
	// FieldUnknown.
	Reason string `json:"reason"`
	// Message is for people.
	Message string `json:"message"`
}

func (e FieldError) Error() string { return e.Field + ": " + e.Message }

// FieldErrors is a list of field errors; nil means valid.
type FieldErrors []FieldError

func (fe FieldErrors) Error() string {
	parts := make([]string, len(fe))
	for i, e := range fe {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "; ")
}

// Field error reasons.
const (
	ReasonRequired     = "FieldValueRequired"
	ReasonInvalid      = "FieldValueInvalid"
	ReasonNotSupported = "FieldValueNotSupported"
	ReasonDuplicate    = "FieldValueDuplicate"
	ReasonNotFound     = "FieldValueNotFound"
	ReasonForbidden    = "FieldValueForbidden"
	ReasonTooLong      = "FieldValueTooLong"
	ReasonTypeInvalid  = "FieldValueTypeInvalid"
	ReasonUnknown      = "FieldUnknown"
)

// Required returns a FieldError for a missing value.
func Required(field, msg string) FieldError {
	if msg == "" {
		msg = "required value"
	}
	return FieldError{Field: field, Reason: ReasonRequired, Message: msg}
}

// Invalid returns a FieldError for a bad value.
func Invalid(field string, value any, msg string) FieldError {
	return FieldError{Field: field, Reason: ReasonInvalid, Message: fmt.Sprintf("invalid value %q: %s", fmt.Sprint(value), msg)}
}

// NotSupported returns a FieldError for a value outside an enumeration.
func NotSupported(field string, value any, allowed []string) FieldError {
	return FieldError{Field: field, Reason: ReasonNotSupported,
		Message: fmt.Sprintf("unsupported value %q: supported values: %s", fmt.Sprint(value), strings.Join(allowed, ", "))}
}

// Duration is a time.Duration written as a Go duration string ("5s", "1m30s").
type Duration struct{ time.Duration }

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return []byte(`"` + d.Duration.String() + `"`), nil }

// UnmarshalJSON reads a duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	s := string(b)
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' {
		return fmt.Errorf("duration must be a string such as \"5s\", got %s", s)
	}
	v, err := time.ParseDuration(s[1 : len(s)-1])
	if err != nil {
		return fmt.Errorf("invalid duration %s: %w", s, err)
	}
	if v < 0 {
		return fmt.Errorf("duration %s must not be negative", s)
	}
	d.Duration = v
	return nil
}
