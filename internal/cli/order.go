package cli

import (
	"container/heap"
	"fmt"
	"strings"

	v1 "github.com/meridian-platform/meridian/api/v1"
)

// objKey identifies an object within a tenant.
type objKey struct {
	Kind, Namespace, Name string
}

func (k objKey) String() string {
	if k.Namespace != "" {
		return k.Kind + " " + k.Namespace + "/" + k.Name
	}
	return k.Kind + " " + k.Name
}

func keyOf(obj v1.Object) objKey {
	md := obj.GetMetadata()
	return objKey{Kind: obj.GetTypeMeta().Kind, Namespace: md.Namespace, Name: md.Name}
}

// kindRank orders kinds that have no reference between them by their
// place in api/v1's registry, which lists kinds that may be referred to
// before the kinds that refer to them (tenants, namespaces, ..., load
// balancers); kinds this build does not know come last.
func kindRank(kind string) int {
	for i, k := range v1.Kinds() {
		if k.Kind == kind {
			return i
		}
	}
	return 1 << 20
}

// orderForApply sorts objects so that every object comes after the objects
// of the set it depends on: its namespace, and what its References() name.
// Among objects whose dependencies are met, the registry's kind order
// decides (tenants and namespaces first), then the input order. Objects on a reference cycle are
// appended in input order and reported in cycle.
func orderForApply(objs []v1.Object) (ordered []v1.Object, cycle []objKey) {
	index := make(map[objKey]int, len(objs))
	for i, o := range objs {
		index[keyOf(o)] = i
	}
	deps := make([][]int, len(objs))       // deps[i]: objects i depends on
	dependents := make([][]int, len(objs)) // reverse edges
	pending := make([]int, len(objs))
	addEdge := func(from, to int) { // to depends on from
		if from == to {
			return
		}
		for _, d := range deps[to] {
			if d == from {
				return
			}
		}
		deps[to] = append(deps[to], from)
		dependents[from] = append(dependents[from], to)
		pending[to]++
	}
	for i, o := range objs {
		md := o.GetMetadata()
		if md.Namespace != "" {
			if j, ok := index[objKey{Kind: "Namespace", Name: md.Namespace}]; ok {
				addEdge(j, i)
			}
		}
		r, ok := o.(v1.Referrer)
		if !ok {
			continue
		}
		for _, ref := range r.References() {
			ns := ref.Namespace
			if ki, ok := v1.LookupKind(ref.Kind); ok && ki.Scope != v1.ScopeNamespaced {
				ns = ""
			}
			if j, ok := index[objKey{Kind: ref.Kind, Namespace: ns, Name: ref.Name}]; ok {
				addEdge(j, i)
			}
		}
	}
	ranks := make([]int, len(objs))
	for i, o := range objs {
		ranks[i] = kindRank(o.GetTypeMeta().Kind)
	}
	ready := &readyHeap{ranks: ranks}
	for i := range objs {
		if pending[i] == 0 {
			heap.Push(ready, i)
		}
	}
	done := make([]bool, len(objs))
	for ready.Len() > 0 {
		i := heap.Pop(ready).(int)
		done[i] = true
		ordered = append(ordered, objs[i])
		for _, d := range dependents[i] {
			pending[d]--
			if pending[d] == 0 {
				heap.Push(ready, d)
			}
		}
	}
	for i, o := range objs {
		if !done[i] {
			ordered = append(ordered, o)
			cycle = append(cycle, keyOf(o))
		}
	}
	return ordered, cycle
}

// readyHeap pops the object with the lowest (kind rank, input index).
type readyHeap struct {
	ranks []int
	idx   []int
}

func (h *readyHeap) Len() int { return len(h.idx) }
func (h *readyHeap) Less(a, b int) bool {
	ra, rb := h.ranks[h.idx[a]], h.ranks[h.idx[b]]
	if ra != rb {
		return ra < rb
	}
	return h.idx[a] < h.idx[b]
}
func (h *readyHeap) Swap(a, b int) { h.idx[a], h.idx[b] = h.idx[b], h.idx[a] }
func (h *readyHeap) Push(x any)    { h.idx = append(h.idx, x.(int)) }
func (h *readyHeap) Pop() any {
	n := len(h.idx)
	x := h.idx[n-1]
	h.idx = h.idx[:n-1]
	return x
}

func describeCycle(keys []objKey) string {
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k.String()
	}
	return fmt.Sprintf("reference cycle among: %s", strings.Join(parts, ", "))
}
