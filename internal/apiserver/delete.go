package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/internal/store"
)

// maxOpsPerTxn keeps cascading deletes within what every backend accepts
// in one transaction (etcd's default is 128 operations).
const maxOpsPerTxn = 100

// delete removes one object, refusing when others refer to it and, for a
// namespace, when it is not empty (unless cascade).
func (s *Server) delete(ctx context.Context, rc *reqCtx, t target, ref objRef, cascade, dryRun bool) (any, error) {
	info := t.info
	tenant := s.storageTenant(rc, info)
	isNamespace := info.Kind == "Namespace"
	return s.retryWrite(ctx, tenant, info.Kind, ref, func() (any, error) {
		cur, kv, err := s.loadObject(ctx, tenant, info, ref)
		if err != nil {
			return nil, err
		}
		p := &writePlan{rc: rc, verb: "delete", info: info, tenant: tenant, ref: ref, old: cur, oldKV: kv, objCmp: kv.ModRevision}
		// The guard is read before the checks: a dependency added after
		// this point changes it and makes the transaction retry.
		if err := s.pinGuard(ctx, p, ref); err != nil {
			return nil, err
		}
		if err := s.checkReferrers(ctx, p, ref, nil); err != nil {
			return nil, err
		}
		if isNamespace {
			contents, err := s.namespaceContents(ctx, tenant, ref.Name)
			if err != nil {
				return nil, err
			}
			if len(contents) > 0 && !cascade {
				names := make([]string, 0, 5)
				for i, c := range contents {
					if i == 5 {
						names = append(names, fmt.Sprintf("and %d more", len(contents)-5))
						break
					}
					names = append(names, fmt.Sprintf("%s %q", s.byPlur[c.ref.Plural].Kind, c.ref.Name))
				}
				return nil, errConflict(info.Kind, ref.Name, "Namespace %q is not empty (it holds %s): delete its objects first or use cascade=true", ref.Name, strings.Join(names, ", "))
			}
			if len(contents) > 0 {
				if err := s.cascadeDelete(ctx, p, contents, dryRun); err != nil {
					return nil, err
				}
			}
		}
		if err := s.planDelete(ctx, p, ref, cur); err != nil {
			return nil, err
		}
		if err := s.admitKind(ctx, p, dryRun); err != nil {
			return nil, err
		}
		p.cmp(kv.Key, kv.ModRevision)
		return s.commit(ctx, p, dryRun)
	})
}

func (s *Server) pinGuard(ctx context.Context, p *writePlan, ref objRef) error {
	g := guardKey(p.tenant, ref)
	gkv, err := s.st.Get(ctx, g)
	switch {
	case errors.Is(err, store.ErrNotFound):
		p.cmp(g, 0)
	case err != nil:
		return errInternal(err)
	default:
		p.cmp(g, gkv.ModRevision)
	}
	return nil
}

// checkReferrers refuses when objects outside the set being deleted refer
// to ref.
func (s *Server) checkReferrers(ctx context.Context, p *writePlan, ref objRef, deleting map[objRef]bool) error {
	res, err := s.st.List(ctx, refTargetPrefix(p.tenant, ref), store.ListOptions{Limit: 50})
	if err != nil {
		return errInternal(err)
	}
	var names []string
	for _, kv := range res.Items {
		from, ok := parseSuffix(strings.TrimPrefix(kv.Key, refTargetPrefix(p.tenant, ref)))
		if !ok || deleting[from] || from == ref {
			continue
		}
		var rv refValue
		_ = json.Unmarshal(kv.Value, &rv)
		n := fmt.Sprintf("%s %q", rv.Kind, from.Name)
		if from.Namespace != "" {
			n += fmt.Sprintf(" in namespace %q", from.Namespace)
		}
		if rv.Field != "" {
			n += " (" + rv.Field + ")"
		}
		names = append(names, n)
	}
	if len(names) == 0 {
		return nil
	}
	sort.Strings(names)
	more := ""
	if res.More {
		more = " and more"
	}
	kind := s.byPlur[ref.Plural].Kind
	return errConflict(kind, ref.Name, "cannot delete %s %q: it is referenced by %s%s", kind, ref.Name, strings.Join(names, ", "), more)
}

// planDelete adds the removal of obj, its history, its outgoing references
// and its guard to the transaction.
func (s *Server) planDelete(ctx context.Context, p *writePlan, ref objRef, obj v1.Object) error {
	p.del(objKey(p.tenant, ref))
	p.del(guardKey(p.tenant, ref))
	hist, err := s.st.List(ctx, historyPrefix(p.tenant, ref), store.ListOptions{})
	if err != nil {
		return errInternal(err)
	}
	for _, kv := range hist.Items {
		p.del(kv.Key)
	}
	refs, err := s.refsOf(obj)
	if err != nil {
		return err
	}
	for _, r := range refs {
		p.del(refKey(p.tenant, r.target, ref))
	}
	return nil
}

type nsItem struct {
	ref  objRef
	kv   store.KV
	info v1.KindInfo
}

// namespaceContents lists every object in a namespace.
func (s *Server) namespaceContents(ctx context.Context, tenant, ns string) ([]nsItem, error) {
	var out []nsItem
	for _, info := range s.kinds {
		if info.Scope != v1.ScopeNamespaced {
			continue
		}
		prefix := kindPrefix(tenant, info.Plural, ns, false)
		after := ""
		rev := int64(0)
		for {
			res, err := s.st.List(ctx, prefix, store.ListOptions{Revision: rev, After: after, Limit: 500})
			if err != nil {
				return nil, errInternal(err)
			}
			rev = res.Revision
			for _, kv := range res.Items {
				out = append(out, nsItem{ref: objRef{Plural: info.Plural, Namespace: ns, Name: strings.TrimPrefix(kv.Key, prefix)}, kv: kv, info: info})
				after = kv.Key
			}
			if !res.More {
				break
			}
		}
	}
	return out, nil
}

// cascadeDelete removes the contents of a namespace in batches. It refuses
// when an object outside the namespace refers to one inside.
func (s *Server) cascadeDelete(ctx context.Context, p *writePlan, items []nsItem, dryRun bool) error {
	deleting := make(map[objRef]bool, len(items))
	for _, it := range items {
		deleting[it.ref] = true
	}
	for _, it := range items {
		if err := s.checkReferrers(ctx, p, it.ref, deleting); err != nil {
			return err
		}
	}
	if dryRun {
		return nil
	}
	// One plan per object, committed together: each deletion has its own
	// revision (watchers see one DELETED event per resourceVersion) and
	// audit record, and every transaction stays small.
	plans := make([]*writePlan, 0, len(items))
	for _, it := range items {
		obj, err := s.decodeStored(it.info, it.kv)
		if err != nil {
			return err
		}
		b := &writePlan{rc: p.rc, verb: "delete", info: it.info, tenant: p.tenant, ref: it.ref, old: obj, oldKV: it.kv, objCmp: it.kv.ModRevision}
		b.cmp(it.kv.Key, it.kv.ModRevision)
		if err := s.planDelete(ctx, b, it.ref, obj); err != nil {
			return err
		}
		b.note = fmt.Sprintf("cascade: deleted with namespace %q", p.ref.Name)
		plans = append(plans, b)
	}
	return s.submitAll(ctx, plans)
}
