package openapi

import (
	"reflect"
	"strings"
	"time"

	v1 "github.com/meridian-platform/meridian/api/v1"
)

// Schemaer may be implemented (on the value receiver) by an api/v1 type
// whose JSON form reflection cannot describe; the returned schema is used
// as is.
type Schemaer interface {
	OpenAPISchema() map[string]any
}

// enumTable lists enumerations of fields whose types carry no enum tag,
// keyed by "GoTypeName.jsonField".
func enumTable() map[string][]string {
	return map[string][]string{
		"OriginPoolSpec.loadBalancing": v1.LoadBalancingAlgorithms,
		"ListenerTLS.minVersion":       {"1.2", "1.3"},
		"HTTPRedirect.scheme":          {"http", "https"},
	}
}

// typeTable gives the schemas of types that decode from more than one JSON
// type.
func typeTable() map[reflect.Type]map[string]any {
	return map[reflect.Type]map[string]any{
		reflect.TypeFor[v1.RetryCondition](): {"type": []any{"string", "integer"},
			"description": "connect-failure, reset, 5xx, gateway-error, or a status code 400-599."},
	}
}

// durationPattern matches what time.ParseDuration accepts for the
// non-negative durations of the API.
const durationPattern = `^(0|([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+$`

// schemas builds component schemas from Go types, one per named struct.
type schemas struct {
	docs  *typeDocs
	defs  map[string]any
	names map[reflect.Type]string
	taken map[string]reflect.Type
}

func newSchemas(docs *typeDocs) *schemas {
	return &schemas{docs: docs, defs: map[string]any{}, names: map[reflect.Type]string{}, taken: map[string]reflect.Type{}}
}

var v1PkgPath = reflect.TypeFor[v1.ObjectMeta]().PkgPath()

func ref(name string) map[string]any { return map[string]any{"$ref": "#/components/schemas/" + name} }

// nameOf returns the component name of a named type, qualifying it with
// its package when two packages use the same name.
func (s *schemas) nameOf(t reflect.Type) string {
	if n, ok := s.names[t]; ok {
		return n
	}
	n := t.Name()
	if other, ok := s.taken[n]; ok && other != t {
		n = strings.ReplaceAll(t.PkgPath(), "/", ".") + "." + n
	}
	s.names[t] = n
	s.taken[n] = t
	return n
}

// rename gives a type from outside api/v1 its component name (before its
// schema is first asked for).
func (s *schemas) rename(t reflect.Type, name string) {
	s.names[t] = name
	s.taken[name] = t
}

var (
	durationType = reflect.TypeFor[v1.Duration]()
	secretType   = reflect.TypeFor[v1.Secret]()
	timeType     = reflect.TypeFor[time.Time]()
	schemaerType = reflect.TypeFor[Schemaer]()
)

// schemaOf returns the schema of a Go type: a $ref for named structs and
// special types, an inline schema otherwise.
func (s *schemas) schemaOf(t reflect.Type) map[string]any {
	switch t {
	case durationType:
		s.defs["Duration"] = map[string]any{
			"type": "string", "pattern": durationPattern,
			"description": "A duration such as \"5s\", \"1m30s\" or \"72h\".",
			"examples":    []any{"5s"},
		}
		return ref("Duration")
	case secretType:
		s.defs["Secret"] = map[string]any{
			"type": "string", "writeOnly": true,
			"description": "A write-only secret: never returned (a set secret reads as \"" + string(v1.SecretRedacted) + "\"; writing that value back keeps the stored one).",
		}
		return ref("Secret")
	case timeType:
		return map[string]any{"type": "string", "format": "date-time"}
	}
	if sch, ok := typeTable()[t]; ok {
		return sch
	}
	if t.Implements(schemaerType) {
		return reflect.Zero(t).Interface().(Schemaer).OpenAPISchema()
	}
	switch t.Kind() {
	case reflect.Pointer:
		return s.schemaOf(t.Elem())
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int8, reflect.Int16, reflect.Int32:
		return map[string]any{"type": "integer", "format": "int32"}
	case reflect.Int, reflect.Int64:
		return map[string]any{"type": "integer", "format": "int64"}
	case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint, reflect.Uint64:
		return map[string]any{"type": "integer", "minimum": 0}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return map[string]any{"type": "string", "contentEncoding": "base64"}
		}
		return map[string]any{"type": "array", "items": s.schemaOf(t.Elem())}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": s.schemaOf(t.Elem())}
	case reflect.Struct:
		if t.Name() == "" {
			return s.structSchema(t)
		}
		name := s.nameOf(t)
		if _, done := s.defs[name]; !done {
			s.defs[name] = map[string]any{} // placeholder against recursion
			def := s.structSchema(t)
			if doc := s.docOfType(t); doc != "" {
				def["description"] = doc
			}
			s.defs[name] = def
		}
		return ref(name)
	}
	return map[string]any{}
}

// structSchema describes a struct as encoding/json encodes it: fields by
// their JSON names, embedded structs flattened, fields without omitempty
// required, `enum:"a,b"` tags as enums.
func (s *schemas) structSchema(t reflect.Type) map[string]any {
	props := map[string]any{}
	var required []string
	enums := enumTable()
	for _, f := range v1.JSONFields(t) {
		p := s.schemaOf(f.Type)
		if enum := f.Field.Tag.Get("enum"); enum != "" {
			p = withEnum(p, strings.Split(enum, ","))
		} else if vals, ok := enums[t.Name()+"."+f.Name]; ok {
			p = withEnum(p, vals)
		}
		if doc := s.docOfField(f); doc != "" {
			p = withDescription(p, doc)
		}
		props[f.Name] = p
		if !f.OmitEmpty {
			required = append(required, f.Name)
		}
	}
	out := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	if len(required) > 0 {
		out["required"] = required
	}
	return out
}

func (s *schemas) docOfType(t reflect.Type) string {
	if t.PkgPath() != v1PkgPath {
		return ""
	}
	return s.docs.typeDoc(t.Name())
}

func (s *schemas) docOfField(f v1.JSONField) string {
	if f.Owner == nil || f.Owner.PkgPath() != v1PkgPath {
		return ""
	}
	doc := s.docs.fieldDoc(f.Owner.Name(), f.Field.Name)
	// "LoadBalancing is ..." reads "loadBalancing is ..." in the API.
	if rest, ok := strings.CutPrefix(doc, f.Field.Name+" "); ok {
		doc = f.Name + " " + rest
	}
	return doc
}

// withDescription returns a copy of p with a description.
func withDescription(p map[string]any, doc string) map[string]any {
	cp := map[string]any{}
	for k, v := range p {
		cp[k] = v
	}
	cp["description"] = doc
	return cp
}

// withEnum adds an enum to a string schema or to the items of an array
// schema.
func withEnum(p map[string]any, values []string) map[string]any {
	vals := make([]any, len(values))
	for i, v := range values {
		vals[i] = v
	}
	cp := map[string]any{}
	for k, v := range p {
		cp[k] = v
	}
	if cp["type"] == "array" {
		items, _ := cp["items"].(map[string]any)
		cp["items"] = withEnum(items, values)
		return cp
	}
	cp["enum"] = vals
	return cp
}
