package distrib

import (
	"reflect"

	v1 "github.com/meridian-platform/meridian/api/v1"
)

// reflectStatus finds the v1.Status of a kind: its Status field, or the
// Status embedded in it.
func reflectStatus(obj v1.Object) *v1.Status {
	v := reflect.ValueOf(obj)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return nil
	}
	f := v.Elem().FieldByName("Status")
	if !f.IsValid() || !f.CanAddr() {
		return nil
	}
	if s, ok := f.Addr().Interface().(*v1.Status); ok {
		return s
	}
	if f.Kind() == reflect.Struct {
		if e := f.FieldByName("Status"); e.IsValid() && e.CanAddr() {
			if s, ok := e.Addr().Interface().(*v1.Status); ok {
				return s
			}
		}
	}
	return nil
}
