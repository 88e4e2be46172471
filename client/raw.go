package client

import (
	"bytes"
	"encoding/json"
	"fmt"

	v1 "github.com/meridian-platform/meridian/api/v1"
)

// Raw is an object of any kind, known to this build or not: its envelope is
// decoded (so Raw is a v1.Object) and every other top-level field (spec,
// status, ...) is kept as raw JSON, so nothing is lost on a round trip.
type Raw struct {
	v1.Envelope
	// Fields holds the top-level fields other than apiVersion, kind and
	// metadata, as the server sent them.
	Fields map[string]json.RawMessage
}

var _ v1.Object = (*Raw)(nil)

// ParseRaw decodes one JSON object into a Raw.
func ParseRaw(data []byte) (*Raw, error) {
	r := &Raw{}
	if err := json.Unmarshal(data, r); err != nil {
		return nil, err
	}
	return r, nil
}

// UnmarshalJSON decodes the envelope and keeps the rest raw.
func (r *Raw) UnmarshalJSON(data []byte) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return fmt.Errorf("decoding object: %w", err)
	}
	if m == nil {
		return fmt.Errorf("decoding object: null")
	}
	r.Envelope = v1.Envelope{}
	if v, ok := m["apiVersion"]; ok {
		if err := json.Unmarshal(v, &r.APIVersion); err != nil {
			return fmt.Errorf("decoding apiVersion: %w", err)
		}
	}
	if v, ok := m["kind"]; ok {
		if err := json.Unmarshal(v, &r.Kind); err != nil {
			return fmt.Errorf("decoding kind: %w", err)
		}
	}
	if v, ok := m["metadata"]; ok && !bytes.Equal(v, []byte("null")) {
		if err := json.Unmarshal(v, &r.Metadata); err != nil {
			return fmt.Errorf("decoding metadata: %w", err)
		}
	}
	delete(m, "apiVersion")
	delete(m, "kind")
	delete(m, "metadata")
	r.Fields = m
	return nil
}

// MarshalJSON writes the envelope and the raw fields back as one object.
func (r Raw) MarshalJSON() ([]byte, error) {
	m := make(map[string]any, len(r.Fields)+3)
	for k, v := range r.Fields {
		m[k] = v
	}
	m["apiVersion"] = r.APIVersion
	m["kind"] = r.Kind
	m["metadata"] = r.Metadata
	return json.Marshal(m)
}

// Into decodes the object into a typed one (for example *v1.OriginPool).
func (r *Raw) Into(obj any) error {
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return json.Unmarshal(data, obj)
}

// Map returns the object as generic JSON values, for printers and field lookups.
func (r *Raw) Map() (map[string]any, error) {
	var m map[string]any
	if err := r.Into(&m); err != nil {
		return nil, err
	}
	return m, nil
}

// ToRaw converts any object (typed or Raw) into a new Raw (a deep copy).
func ToRaw(obj any) (*Raw, error) {
	data, err := json.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("encoding object: %w", err)
	}
	return ParseRaw(data)
}
