package v1

import (
	"fmt"
	"reflect"
)

// ValidateObject checks an object as the console does before storing it:
// apiVersion and kind, metadata for the kind's scope, then the kind's own
// Validate. It does not look at other objects (references are checked by
// the console against the store).
func ValidateObject(obj Object) FieldErrors {
	ki, ok := KindOf(obj)
	if !ok {
		return FieldErrors{{Field: "kind", Reason: ReasonNotSupported, Message: fmt.Sprintf("unsupported object type %T", obj)}}
	}
	var errs FieldErrors
	tm := obj.GetTypeMeta()
	if tm.APIVersion != APIVersion {
		if tm.APIVersion == "" {
			errs = append(errs, Required("apiVersion", "must be "+APIVersion))
		} else {
			errs = append(errs, NotSupported("apiVersion", tm.APIVersion, []string{APIVersion}))
		}
	}
	if tm.Kind != ki.Kind {
		errs = append(errs, Invalid("kind", tm.Kind, "must be "+ki.Kind))
	}
	errs = append(errs, ValidateObjectMeta(obj.GetMetadata(), ki.Scope)...)
	if v, ok := obj.(Validator); ok {
		errs = append(errs, v.Validate()...)
	}
	return errs
}

// DefaultObject fills in apiVersion and kind when empty, then the kind's
// defaults.
func DefaultObject(obj Object) {
	if ki, ok := KindOf(obj); ok {
		tm := obj.GetTypeMeta()
		if tm.APIVersion == "" {
			tm.APIVersion = APIVersion
		}
		if tm.Kind == "" {
			tm.Kind = ki.Kind
		}
	}
	if d, ok := obj.(Defaulter); ok {
		d.Default()
	}
}

// ResetStatus zeroes the object's Status field: status is written by the
// console only and never accepted from a client.
func ResetStatus(obj Object) {
	v := reflect.ValueOf(obj)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		return
	}
	v = v.Elem()
	if v.Kind() != reflect.Struct {
		return
	}
	if f := v.FieldByName("Status"); f.IsValid() && f.CanSet() {
		f.SetZero()
	}
}

// DeepCopy returns a copy of obj that shares no memory with it.
func DeepCopy(obj Object) Object {
	if obj == nil {
		return nil
	}
	v := reflect.ValueOf(obj)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		return obj
	}
	out := reflect.New(v.Elem().Type())
	copyValue(out.Elem(), v.Elem())
	return out.Interface().(Object)
}

// copyValue copies src into dst (settable, same type), duplicating
// pointers, slices and maps.
func copyValue(dst, src reflect.Value) {
	switch src.Kind() {
	case reflect.Pointer:
		if src.IsNil() {
			dst.SetZero()
			return
		}
		p := reflect.New(src.Elem().Type())
		copyValue(p.Elem(), src.Elem())
		dst.Set(p)
	case reflect.Slice:
		if src.IsNil() {
			dst.SetZero()
			return
		}
		s := reflect.MakeSlice(src.Type(), src.Len(), src.Len())
		for i := 0; i < src.Len(); i++ {
			copyValue(s.Index(i), src.Index(i))
		}
		dst.Set(s)
	case reflect.Map:
		if src.IsNil() {
			dst.SetZero()
			return
		}
		m := reflect.MakeMapWithSize(src.Type(), src.Len())
		it := src.MapRange()
		for it.Next() {
			nv := reflect.New(src.Type().Elem()).Elem()
			copyValue(nv, it.Value())
			m.SetMapIndex(it.Key(), nv)
		}
		dst.Set(m)
	case reflect.Struct:
		// Copy the whole value first (unexported fields such as those of
		// time.Time are immutable values), then deepen exported fields.
		dst.Set(src)
		for i := 0; i < src.NumField(); i++ {
			if df := dst.Field(i); df.CanSet() {
				copyValue(df, src.Field(i))
			}
		}
	case reflect.Interface:
		if src.IsNil() {
			dst.SetZero()
			return
		}
		e := reflect.New(src.Elem().Type()).Elem()
		copyValue(e, src.Elem())
		dst.Set(e)
	default:
		dst.Set(src)
	}
}
