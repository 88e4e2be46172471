package openapi

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"

	v1 "github.com/meridian-platform/meridian/api/v1"
)

// Reference returns a Markdown reference of every kind: scope, names, URL
// and a table of its spec fields (nested fields by dotted path), with the
// doc comments of the Go types.
func Reference() ([]byte, error) {
	docs, err := parseDocs(v1.Sources())
	if err != nil {
		return nil, fmt.Errorf("reading api/v1 doc comments: %w", err)
	}
	s := newSchemas(docs)
	var b bytes.Buffer
	b.WriteString("# Meridian resource kinds (" + v1.APIVersion + ")\n\n")
	b.WriteString("Every object has `apiVersion`, `kind`, `metadata` (name, namespace for namespaced kinds, labels, annotations; " +
		"uid, resourceVersion, generation, creationTimestamp and tenant are set by the console), `spec` and `status` (written by the console only).\n\n")
	b.WriteString("| kind | scope | plural | short names |\n|---|---|---|---|\n")
	for _, ki := range v1.Kinds() {
		fmt.Fprintf(&b, "| [%s](#%s) | %s | %s | %s |\n", ki.Kind, strings.ToLower(ki.Kind), scopeName(ki.Scope), ki.Plural, strings.Join(ki.ShortNames, ", "))
	}
	for _, ki := range v1.Kinds() {
		t := reflect.TypeOf(ki.New()).Elem()
		fmt.Fprintf(&b, "\n## %s\n\n", ki.Kind)
		if doc := s.docOfType(t); doc != "" {
			b.WriteString(doc + "\n\n")
		}
		path := "/api/v1/" + ki.Plural
		if ki.Scope == v1.ScopeNamespaced {
			path = "/api/v1/namespaces/{namespace}/" + ki.Plural
		}
		fmt.Fprintf(&b, "Scope: %s. URL: `%s[/{name}]`.", scopeName(ki.Scope), path)
		if len(ki.ShortNames) > 0 {
			fmt.Fprintf(&b, " Short names: %s.", strings.Join(ki.ShortNames, ", "))
		}
		b.WriteString("\n\n| field | type | required | description |\n|---|---|---|---|\n")
		for _, f := range v1.JSONFields(t) {
			switch {
			case f.Name == "spec":
				s.writeFields(&b, f.Name, f, map[reflect.Type]bool{})
			case f.Name == "status" && f.Type == statusType:
				b.WriteString("| `status` | object |  | Written by the console: observedGeneration, conditions, rollout, errors. |\n")
			case f.Name == "status":
				s.writeFields(&b, f.Name, f, map[reflect.Type]bool{})
			}
		}
	}
	return b.Bytes(), nil
}

var statusType = reflect.TypeFor[v1.Status]()

// writeFields writes one row for the field and rows for its nested fields.
func (s *schemas) writeFields(b *bytes.Buffer, path string, f v1.JSONField, seen map[reflect.Type]bool) {
	t := f.Type
	suffix := ""
	for {
		if t.Kind() == reflect.Pointer {
			t = t.Elem()
			continue
		}
		if (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) && t.Elem().Kind() != reflect.Uint8 {
			suffix += "[]"
			t = t.Elem()
			continue
		}
		break
	}
	req := ""
	if !f.OmitEmpty {
		req = "yes"
	}
	doc := s.docOfField(f)
	if path == "status" {
		doc = "Written by the console: observedGeneration, conditions, rollout, errors, and:"
	}
	if enum := f.Field.Tag.Get("enum"); enum != "" && !strings.Contains(doc, strings.Split(enum, ",")[0]) {
		doc = strings.TrimSpace(doc + " One of: " + strings.ReplaceAll(enum, ",", ", ") + ".")
	}
	fmt.Fprintf(b, "| `%s` | %s | %s | %s |\n", path, typeName(f.Type), req, strings.ReplaceAll(doc, "|", "\\|"))
	if t.Kind() != reflect.Struct || isLeafStruct(t) || seen[t] {
		return
	}
	seen[t] = true
	defer delete(seen, t)
	for _, sub := range v1.JSONFields(t) {
		if sub.Owner == statusType {
			continue // the common status fields, summarised once per kind
		}
		s.writeFields(b, path+suffix+"."+sub.Name, sub, seen)
	}
}

// isLeafStruct reports whether a struct type is written as a scalar.
func isLeafStruct(t reflect.Type) bool {
	return t == durationType || t == timeType || t.Kind() != reflect.Struct
}

// typeName is how a field's type reads in the reference.
func typeName(t reflect.Type) string {
	switch t {
	case durationType:
		return "duration"
	case secretType:
		return "secret (write-only)"
	case timeType:
		return "time (RFC 3339)"
	}
	if _, ok := typeTable()[t]; ok {
		return "string or integer"
	}
	switch t.Kind() {
	case reflect.Pointer:
		return typeName(t.Elem())
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Slice, reflect.Array:
		return "list of " + typeName(t.Elem())
	case reflect.Map:
		return "map of " + typeName(t.Elem())
	case reflect.Struct:
		return "object"
	}
	return t.String()
}
