package agent

import (
	"context"
	"sort"
	"strings"
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
	// Compile are options of every compile (see node.Options.Compile).
	Compile []config.CompileOption

	mu     sync.Mutex
	owners map[string][]distrib.ObjectRef // listener key -> load balancers
	// pending: the last Apply left listeners that did not start.
	pending bool
}

var _ Retrier = (*DataplaneApplier)(nil)

// Pending reports whether the last Apply left listeners that did not start
// (a port taken by another process, say): applying the same objects again
// may start them.
func (d *DataplaneApplier) Pending() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.pending
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
	tab := config.Compile(ok, d.Compile...)
	d.setOwners(tab)
	for _, e := range tab.Errors {
		out = append(out, distrib.ObjectError{ObjectRef: distrib.ObjectRef{Kind: e.Kind, Namespace: e.Namespace, Name: e.Name}, Error: e.Err.Error()})
	}
	if err := d.DP.Apply(ctx, tab); err != nil {
		out = append(out, d.attribute(tab, err)...)
	}
	return out
}

func (d *DataplaneApplier) setOwners(tab *config.Table) {
	owners := map[string][]distrib.ObjectRef{}
	for k, l := range tab.HTTP {
		seen := map[string]bool{}
		for _, vh := range l.VHosts() {
			if !seen[vh.ID] {
				seen[vh.ID] = true
				owners[k] = append(owners[k], distrib.ObjectRef{Kind: "HTTPLoadBalancer", Namespace: vh.Namespace, Name: vh.Name})
			}
		}
	}
	for k, l := range tab.TCP {
		ns, name, _ := strings.Cut(l.ID, "/")
		owners[k] = append(owners[k], distrib.ObjectRef{Kind: "TCPLoadBalancer", Namespace: ns, Name: name})
	}
	d.owners = owners
}

// ListenerOwners returns the load balancers using each listener of the
// configuration last applied.
func (d *DataplaneApplier) ListenerOwners() map[string][]distrib.ObjectRef {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.owners
}

// attribute turns the data plane's apply error into object errors: a
// listener that is not running (it could not bind, say) is blamed on every
// load balancer that declared it, with the data plane's own message for
// that listener; what no object owns (the pool registry refusing an
// update, ...) stays a node-level error (kind "Node").
func (d *DataplaneApplier) attribute(tab *config.Table, err error) []distrib.ObjectError {
	var parts []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		parts = j.Unwrap()
	} else {
		parts = []error{err}
	}
	used := make([]bool, len(parts))
	msgFor := func(key string) string {
		for i, p := range parts {
			// dataplane.Server reports "starting listener KEY: ...".
			if strings.Contains(p.Error(), "listener "+key+":") || strings.Contains(p.Error(), "listener "+key+" ") {
				used[i] = true
				return p.Error()
			}
		}
		return "listener " + key + " is not running"
	}
	var out []distrib.ObjectError
	keys := make([]string, 0, len(tab.HTTP)+len(tab.TCP))
	for k := range tab.HTTP {
		keys = append(keys, k)
	}
	for k := range tab.TCP {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if d.DP.Addr(k) != nil {
			continue
		}
		d.pending = true
		msg := msgFor(k)
		if l := tab.HTTP[k]; l != nil {
			seen := map[string]bool{}
			vhs := l.VHosts()
			sort.Slice(vhs, func(i, j int) bool { return vhs[i].ID < vhs[j].ID })
			for _, vh := range vhs {
				if seen[vh.ID] {
					continue
				}
				seen[vh.ID] = true
				out = append(out, distrib.ObjectError{ObjectRef: distrib.ObjectRef{Kind: "HTTPLoadBalancer", Namespace: vh.Namespace, Name: vh.Name}, Error: msg})
			}
		}
		if l := tab.TCP[k]; l != nil {
			ns, name, _ := strings.Cut(l.ID, "/")
			out = append(out, distrib.ObjectError{ObjectRef: distrib.ObjectRef{Kind: "TCPLoadBalancer", Namespace: ns, Name: name}, Error: msg})
		}
	}
	var rest []string
	for i, p := range parts {
		if !used[i] {
			rest = append(rest, p.Error())
		}
	}
	if len(rest) > 0 {
		out = append(out, distrib.ObjectError{ObjectRef: distrib.ObjectRef{Kind: "Node"}, Error: strings.Join(rest, "; ")})
	}
	return out
}

func objErr(o v1.Object, msg string) distrib.ObjectError {
	m := o.GetMetadata()
	return distrib.ObjectError{ObjectRef: distrib.ObjectRef{Kind: o.GetTypeMeta().Kind, Namespace: m.Namespace, Name: m.Name}, Error: msg}
}
