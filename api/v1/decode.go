package v1

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"
)

// Bounds on decoded input.
const (
	// MaxDecodeBytes bounds the whole input of DecodeAll.
	MaxDecodeBytes = 32 << 20
	// MaxObjectBytes bounds one object (as JSON).
	MaxObjectBytes = 1536 << 10
	// MaxDocuments bounds the number of objects in one input.
	MaxDocuments = 10000
)

// DecodeError is a problem with one document (or one item of a list) of
// the input.
type DecodeError struct {
	// Document is the 1-based position of the document among the
	// non-empty documents of the input; 0 when the input as a whole is at
	// fault.
	Document int
	// Line is the 1-based line the YAML document starts at (0 for JSON).
	Line int
	// Item is the 1-based position in a JSON array or List; 0 otherwise.
	Item int
	// Kind and Name identify the object when they could be read.
	Kind, Name string
	// Err is FieldErrors for unknown fields, wrong types and missing
	// apiVersion/kind, or a syntax error.
	Err error
}

func (e *DecodeError) Error() string {
	var b strings.Builder
	if e.Document > 0 {
		fmt.Fprintf(&b, "document %d", e.Document)
		if e.Line > 0 {
			fmt.Fprintf(&b, " (line %d)", e.Line)
		}
		if e.Item > 0 {
			fmt.Fprintf(&b, ", item %d", e.Item)
		}
		if e.Kind != "" {
			fmt.Fprintf(&b, " (%s", e.Kind)
			if e.Name != "" {
				fmt.Fprintf(&b, " %q", e.Name)
			}
			b.WriteString(")")
		}
		b.WriteString(": ")
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *DecodeError) Unwrap() error { return e.Err }

// FieldErrors returns the field errors of the document, if any.
func (e *DecodeError) FieldErrors() FieldErrors {
	var fe FieldErrors
	if errors.As(e.Err, &fe) {
		return fe
	}
	return nil
}

// Decode reads exactly one object (YAML or JSON); see DecodeAll.
func Decode(data []byte) (Object, error) {
	objs, err := DecodeAll(data)
	if err != nil {
		return nil, err
	}
	if len(objs) != 1 {
		return nil, &DecodeError{Err: fmt.Errorf("expected exactly one object, got %d", len(objs))}
	}
	return objs[0], nil
}

// DecodeAll reads every object of a multi-document YAML input (documents
// separated by "---" lines) or a JSON input (one object, a stream of
// objects, or an array). A document that is a List (kind "List" or
// "<Kind>List" with items) contributes its items. Decoding is strict:
// apiVersion and kind are required, and unknown fields and values of the
// wrong type are rejected with their field path. Errors are *DecodeError.
// Defaults are not applied and the objects are not validated (see
// DefaultObject and ValidateObject).
func DecodeAll(data []byte) ([]Object, error) {
	if len(data) > MaxDecodeBytes {
		return nil, &DecodeError{Err: fmt.Errorf("input is %d bytes, more than the limit of %d", len(data), MaxDecodeBytes)}
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	docs, err := splitDocuments(data)
	if err != nil {
		return nil, err
	}
	var out []Object
	for _, d := range docs {
		items, isList := listItems(d.value)
		for i, item := range items {
			e := &DecodeError{Document: d.index, Line: d.line}
			if isList {
				e.Item = i + 1
			}
			if len(out) >= MaxDocuments {
				e.Err = fmt.Errorf("more than %d objects in one input", MaxDocuments)
				return nil, e
			}
			obj, err := decodeObject(item, e)
			if err != nil {
				return nil, err
			}
			out = append(out, obj)
		}
	}
	return out, nil
}

type document struct {
	index int
	line  int
	value any
}

// splitDocuments parses the input as JSON when it looks like JSON, as
// multi-document YAML otherwise. Empty documents are dropped.
func splitDocuments(data []byte) ([]document, error) {
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) == 0 {
		return nil, nil
	}
	if trimmed[0] == '{' || trimmed[0] == '[' {
		docs, jsonErr := jsonDocuments(data)
		if jsonErr == nil {
			return docs, nil
		}
		// YAML flow style also starts with { or [; prefer the JSON error
		// when YAML does not parse either.
		if docs, err := yamlDocuments(data); err == nil {
			return docs, nil
		}
		return nil, jsonErr
	}
	return yamlDocuments(data)
}

func jsonDocuments(data []byte) ([]document, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var docs []document
	for n := 1; ; n++ {
		var raw json.RawMessage
		err := dec.Decode(&raw)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			var se *json.SyntaxError
			if errors.As(err, &se) {
				line, col := lineCol(data, int(se.Offset))
				err = fmt.Errorf("invalid JSON at line %d, column %d: %v", line, col, se)
			}
			return nil, &DecodeError{Document: n, Err: err}
		}
		vdec := json.NewDecoder(bytes.NewReader(raw))
		vdec.UseNumber()
		v, err := jsonValue(vdec, "")
		if err != nil {
			return nil, &DecodeError{Document: n, Err: err}
		}
		if v != nil {
			docs = append(docs, document{index: len(docs) + 1, value: v})
		}
	}
}

// jsonValue reads one JSON value token by token, rejecting duplicate
// object keys (which encoding/json would silently resolve to the last).
func jsonValue(dec *json.Decoder, path string) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return tok, nil
	}
	switch d {
	case '{':
		m := map[string]any{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return nil, err
			}
			k, _ := kt.(string)
			p := joinPath(path, k)
			if _, dup := m[k]; dup {
				return nil, FieldErrors{{Field: p, Reason: ReasonDuplicate, Message: "duplicate field"}}
			}
			v, err := jsonValue(dec, p)
			if err != nil {
				return nil, err
			}
			m[k] = v
		}
		_, err := dec.Token()
		return m, err
	case '[':
		arr := []any{}
		for i := 0; dec.More(); i++ {
			v, err := jsonValue(dec, idx(path, i))
			if err != nil {
				return nil, err
			}
			arr = append(arr, v)
		}
		_, err := dec.Token()
		return arr, err
	}
	return nil, fmt.Errorf("unexpected %v", d)
}

func lineCol(data []byte, off int) (int, int) {
	if off > len(data) {
		off = len(data)
	}
	line := 1 + bytes.Count(data[:off], []byte("\n"))
	col := off - bytes.LastIndexByte(data[:off], '\n')
	return line, col
}

// isDocSeparator reports whether a line starts a new YAML document, and
// returns what follows the marker on the line.
func isDocSeparator(line []byte) ([]byte, bool) {
	line = bytes.TrimRight(line, "\r")
	if !bytes.HasPrefix(line, []byte("---")) {
		return nil, false
	}
	rest := line[3:]
	if len(rest) == 0 {
		return nil, true
	}
	if rest[0] == ' ' || rest[0] == '\t' {
		return rest, true
	}
	return nil, false
}

func yamlDocuments(data []byte) ([]document, error) {
	var docs []document
	var cur bytes.Buffer
	start := 1
	flush := func(next int) error {
		if len(bytes.TrimSpace(cur.Bytes())) > 0 {
			js, err := yaml.YAMLToJSONStrict(cur.Bytes())
			if err != nil {
				return &DecodeError{Document: len(docs) + 1, Line: start, Err: fmt.Errorf("invalid YAML: %s", absoluteLines(err.Error(), start))}
			}
			dec := json.NewDecoder(bytes.NewReader(js))
			dec.UseNumber()
			var v any
			if err := dec.Decode(&v); err != nil {
				return &DecodeError{Document: len(docs) + 1, Line: start, Err: fmt.Errorf("invalid YAML: %w", err)}
			}
			if v != nil {
				docs = append(docs, document{index: len(docs) + 1, line: start, value: v})
			}
		}
		cur.Reset()
		start = next
		return nil
	}
	lines := bytes.SplitAfter(data, []byte("\n"))
	for i, l := range lines {
		if rest, ok := isDocSeparator(bytes.TrimSuffix(l, []byte("\n"))); ok {
			next := i + 2
			if len(bytes.TrimSpace(rest)) > 0 {
				next = i + 1
			}
			if err := flush(next); err != nil {
				return nil, err
			}
			if len(rest) > 0 {
				cur.Write(rest)
				cur.WriteByte('\n')
			}
			continue
		}
		if cur.Len() == 0 && len(bytes.TrimSpace(l)) == 0 {
			start = i + 2
		}
		cur.Write(l)
	}
	if err := flush(0); err != nil {
		return nil, err
	}
	return docs, nil
}

// absoluteLines rewrites the "line N" of a YAML parser message, counted
// from the start of the document, as a line of the whole input.
func absoluteLines(msg string, start int) string {
	return yamlLineRE().ReplaceAllStringFunc(msg, func(m string) string {
		n, err := strconv.Atoi(strings.TrimPrefix(m, "line "))
		if err != nil {
			return m
		}
		return "line " + strconv.Itoa(n+start-1)
	})
}

func yamlLineRE() *regexp.Regexp { return regexp.MustCompile(`line [0-9]+`) }

// listItems returns the objects a document holds: the elements of an
// array, the items of a List, or the document itself.
func listItems(v any) ([]any, bool) {
	switch t := v.(type) {
	case []any:
		return t, true
	case map[string]any:
		kind, _ := t["kind"].(string)
		if items, ok := t["items"]; ok && (kind == "List" || strings.HasSuffix(kind, "List")) {
			if arr, ok := items.([]any); ok {
				return arr, true
			}
			if items == nil {
				return nil, true
			}
		}
	}
	return []any{v}, false
}

func decodeObject(v any, e *DecodeError) (Object, error) {
	m, ok := v.(map[string]any)
	if !ok {
		e.Err = fmt.Errorf("expected an object, got %s", jsonTypeName(v))
		return nil, e
	}
	if md, ok := m["metadata"].(map[string]any); ok {
		e.Name, _ = md["name"].(string)
	}
	var errs FieldErrors
	av, hasAV := m["apiVersion"]
	switch s, isStr := av.(string); {
	case !hasAV || av == nil || s == "" && isStr:
		errs = append(errs, Required("apiVersion", "apiVersion is required (\""+APIVersion+"\")"))
	case !isStr:
		errs = append(errs, typeError("apiVersion", "string", av))
	case s != APIVersion:
		errs = append(errs, NotSupported("apiVersion", s, []string{APIVersion}))
	}
	var ki KindInfo
	kv, hasKind := m["kind"]
	switch s, isStr := kv.(string); {
	case !hasKind || kv == nil || s == "" && isStr:
		errs = append(errs, Required("kind", "kind is required"))
	case !isStr:
		errs = append(errs, typeError("kind", "string", kv))
	default:
		k, found := LookupKind(s)
		switch {
		case !found:
			errs = append(errs, FieldError{Field: "kind", Reason: ReasonNotSupported, Message: fmt.Sprintf("unknown kind %q", s)})
		case k.Kind != s:
			errs = append(errs, FieldError{Field: "kind", Reason: ReasonNotSupported, Message: fmt.Sprintf("unknown kind %q (did you mean %q?)", s, k.Kind)})
		default:
			ki = k
			e.Kind = k.Kind
		}
	}
	if len(errs) > 0 {
		e.Err = errs
		return nil, e
	}
	raw, err := json.Marshal(m)
	if err != nil {
		e.Err = fmt.Errorf("re-encoding document: %w", err)
		return nil, e
	}
	if len(raw) > MaxObjectBytes {
		e.Err = fmt.Errorf("object is %d bytes, more than the limit of %d", len(raw), MaxObjectBytes)
		return nil, e
	}
	obj := ki.New()
	w := &walker{fields: map[reflect.Type]map[string]JSONField{}}
	w.check("", m, reflect.TypeOf(obj).Elem(), &errs)
	if len(errs) > 0 {
		e.Err = errs
		return nil, e
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(obj); err != nil {
		e.Err = fmt.Errorf("decoding %s: %w", ki.Kind, err)
		return nil, e
	}
	return obj, nil
}

func typeError(path, want string, got any) FieldError {
	return FieldError{Field: path, Reason: ReasonTypeInvalid, Message: fmt.Sprintf("expected %s, got %s", want, jsonTypeName(got))}
}

func jsonTypeName(v any) string {
	switch t := v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case bool:
		return "boolean"
	case json.Number:
		if _, err := strconv.ParseInt(string(t), 10, 64); err == nil {
			return "integer"
		}
		return "number"
	case float64:
		return "number"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

func joinPath(path, field string) string {
	if path == "" {
		return field
	}
	return path + "." + field
}

var (
	jsonUnmarshalerType = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// walker checks decoded JSON values against Go types; it keeps the field
// tables of the struct types it met.
type walker struct {
	fields map[reflect.Type]map[string]JSONField
}

func (w *walker) fieldsOf(t reflect.Type) map[string]JSONField {
	f, ok := w.fields[t]
	if !ok {
		f = jsonFields(t)
		w.fields[t] = f
	}
	return f
}

// check walks a decoded JSON value against the Go type it will be decoded
// into, collecting unknown fields and wrong types with their paths. null is
// accepted everywhere (it leaves the zero value).
func (w *walker) check(path string, v any, t reflect.Type, errs *FieldErrors) {
	if v == nil {
		return
	}
	if t.Kind() != reflect.Pointer && t.Kind() != reflect.Interface {
		pt := reflect.PointerTo(t)
		if pt.Implements(jsonUnmarshalerType) {
			raw, err := json.Marshal(v)
			if err == nil {
				err = reflect.New(t).Interface().(json.Unmarshaler).UnmarshalJSON(raw)
			}
			if err != nil {
				*errs = append(*errs, FieldError{Field: path, Reason: ReasonTypeInvalid, Message: err.Error()})
			}
			return
		}
		if pt.Implements(textUnmarshalerType) {
			s, ok := v.(string)
			if !ok {
				*errs = append(*errs, typeError(path, "string", v))
				return
			}
			if err := reflect.New(t).Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(s)); err != nil {
				*errs = append(*errs, FieldError{Field: path, Reason: ReasonTypeInvalid, Message: err.Error()})
			}
			return
		}
	}
	switch t.Kind() {
	case reflect.Pointer:
		w.check(path, v, t.Elem(), errs)
	case reflect.Interface:
		// Any JSON value fits.
	case reflect.String:
		if _, ok := v.(string); !ok {
			*errs = append(*errs, typeError(path, "string", v))
		}
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			*errs = append(*errs, typeError(path, "boolean", v))
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, ok := v.(json.Number)
		if !ok {
			*errs = append(*errs, typeError(path, "integer", v))
			return
		}
		if _, err := strconv.ParseInt(string(n), 10, t.Bits()); err != nil {
			*errs = append(*errs, numberError(path, n, "integer", err))
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, ok := v.(json.Number)
		if !ok {
			*errs = append(*errs, typeError(path, "non-negative integer", v))
			return
		}
		if _, err := strconv.ParseUint(string(n), 10, t.Bits()); err != nil {
			*errs = append(*errs, numberError(path, n, "non-negative integer", err))
		}
	case reflect.Float32, reflect.Float64:
		n, ok := v.(json.Number)
		if !ok {
			*errs = append(*errs, typeError(path, "number", v))
			return
		}
		if _, err := strconv.ParseFloat(string(n), t.Bits()); err != nil {
			*errs = append(*errs, FieldError{Field: path, Reason: ReasonTypeInvalid, Message: fmt.Sprintf("number %s out of range", n)})
		}
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 && t.Kind() == reflect.Slice {
			if _, ok := v.(string); !ok {
				*errs = append(*errs, typeError(path, "base64 string", v))
			}
			return
		}
		arr, ok := v.([]any)
		if !ok {
			*errs = append(*errs, typeError(path, "array", v))
			return
		}
		if t.Kind() == reflect.Array && len(arr) > t.Len() {
			*errs = append(*errs, FieldError{Field: path, Reason: ReasonTooLong, Message: fmt.Sprintf("at most %d elements", t.Len())})
		}
		for i, e := range arr {
			w.check(idx(path, i), e, t.Elem(), errs)
		}
	case reflect.Map:
		obj, ok := v.(map[string]any)
		if !ok {
			*errs = append(*errs, typeError(path, "object", v))
			return
		}
		if t.Key().Kind() != reflect.String {
			*errs = append(*errs, FieldError{Field: path, Reason: ReasonTypeInvalid, Message: "unsupported map key type " + t.Key().String()})
			return
		}
		for _, k := range sortedKeys(obj) {
			w.check(mapPath(path, k), obj[k], t.Elem(), errs)
		}
	case reflect.Struct:
		obj, ok := v.(map[string]any)
		if !ok {
			*errs = append(*errs, typeError(path, "object", v))
			return
		}
		fields := w.fieldsOf(t)
		for _, k := range sortedKeys(obj) {
			f, ok := fields[k]
			if !ok {
				msg := "unknown field"
				for name := range fields {
					if strings.EqualFold(name, k) {
						msg = fmt.Sprintf("unknown field (did you mean %q?)", name)
						break
					}
				}
				*errs = append(*errs, FieldError{Field: joinPath(path, k), Reason: ReasonUnknown, Message: msg})
				continue
			}
			w.check(joinPath(path, k), obj[k], f.Type, errs)
		}
	default:
		*errs = append(*errs, FieldError{Field: path, Reason: ReasonTypeInvalid, Message: "field of unsupported type " + t.String()})
	}
}

func numberError(path string, n json.Number, want string, err error) FieldError {
	if errors.Is(err, strconv.ErrRange) {
		return FieldError{Field: path, Reason: ReasonTypeInvalid, Message: fmt.Sprintf("integer %s out of range", n)}
	}
	return FieldError{Field: path, Reason: ReasonTypeInvalid, Message: fmt.Sprintf("expected %s, got number %s", want, n)}
}

// JSONField is a struct field as encoding/json sees it.
type JSONField struct {
	// Name is the JSON name.
	Name string
	// Type is the Go type of the field.
	Type reflect.Type
	// OmitEmpty is set when the tag has omitempty (or omitzero).
	OmitEmpty bool
	// Field is the struct field (for its other tags).
	Field reflect.StructField
	// Owner is the struct type that declares the field (an embedded
	// struct's type for a promoted field).
	Owner reflect.Type
}

// jsonFields returns the fields of a struct type by JSON name, promoting
// the fields of untagged embedded structs as encoding/json does (a field
// of the outer struct wins over a promoted one of the same name).
func jsonFields(t reflect.Type) map[string]JSONField {
	out := map[string]JSONField{}
	for _, f := range JSONFields(t) {
		out[f.Name] = f
	}
	return out
}

// JSONFields lists the fields of a struct type in declaration order as
// encoding/json encodes them: untagged embedded structs are flattened, and a
// field of the outer struct wins over a promoted one of the same name.
func JSONFields(t reflect.Type) []JSONField {
	type entry struct {
		field    JSONField
		embedded bool
		promoted []JSONField
	}
	var entries []entry
	direct := map[string]bool{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			et := f.Type
			if et.Kind() == reflect.Pointer {
				et = et.Elem()
			}
			if et.Kind() == reflect.Struct {
				entries = append(entries, entry{embedded: true, promoted: JSONFields(et)})
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		omit := false
		for o := range strings.SplitSeq(opts, ",") {
			if o == "omitempty" || o == "omitzero" {
				omit = true
			}
		}
		entries = append(entries, entry{field: JSONField{Name: name, Type: f.Type, OmitEmpty: omit, Field: f, Owner: t}})
		direct[name] = true
	}
	var out []JSONField
	seen := map[string]bool{}
	for _, e := range entries {
		if !e.embedded {
			out = append(out, e.field)
			continue
		}
		for _, pf := range e.promoted {
			if !direct[pf.Name] && !seen[pf.Name] {
				seen[pf.Name] = true
				out = append(out, pf)
			}
		}
	}
	return out
}
