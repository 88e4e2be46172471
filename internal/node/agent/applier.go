package agent

import (
	"context"
	"sync"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/internal/dataplane"
	"github.com/meridian-platform/meridian/internal/dataplane/config"
	"github.com/meridian-platform/meridian/internal/distrib"
)

// Applier puts a complete set of objects in force and reports the objects
// it skipped (with everything that depends on them), keeping the rest.
type Applier interface {
	Apply(ctx context.Context, objs []v1.Object) []distrib.ObjectError
}

// DataplaneApplier compiles objects with the data plane's compiler and
// swaps them into a running data-plane server.
type DataplaneApplier struct {
	DP *dataplane.Server

	mu sync.Mutex
}

var _ Applier = (*DataplaneApplier)(nil)

// Apply validates, compiles and applies objs.
func (d *DataplaneApplier) Apply(ctx context.Context, objs []v1.Object) []distrib.ObjectError {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []distrib.ObjectError
	var ok []v1.Object
	for _, o := range objs {
		if errs := v1.ValidateObject(o); len(errs) > 0 {
			out = append(out, objErr(o, errs.Error()))
			continue
		}
		ok = append(ok, o)
	}
	tab := config.Compile(ok)
	for _, e := range tab.Errors {
		out = append(out, distrib.ObjectError{ObjectRef: distrib.ObjectRef{Kind: e.Kind, Namespace: e.Namespace, Name: e.Name}, Error: e.Err.Error()})
	}
	if err := d.DP.Apply(ctx, tab); err != nil {
		out = append(out, distrib.ObjectError{ObjectRef: distrib.ObjectRef{Kind: "Node"}, Error: err.Error()})
	}
	return out
}

func objErr(o v1.Object, msg string) distrib.ObjectError {
	m := o.GetMetadata()
	return distrib.ObjectError{ObjectRef: distrib.ObjectRef{Kind: o.GetTypeMeta().Kind, Namespace: m.Namespace, Name: m.Name}, Error: msg}
}
