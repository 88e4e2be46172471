package apiserver

import (
	"context"
	"errors"
	"fmt"

	"github.com/meridian-platform/meridian/internal/auth"
	"github.com/meridian-platform/meridian/internal/store"
)

// rbacVersionKey is touched (in the same transaction) by every write of a
// tenant's Roles, RoleBindings and Users: its ModRevision is the version of
// the tenant's RBAC data, which the evaluator cache checks on every
// authorization. One Get per check, instead of listing and compiling the
// tenant's roles and bindings, and consoles sharing the store see each
// other's revokes on their next check.
func rbacVersionKey(tenant string) string { return prefixGuard + tenant + "/_rbac" }

// rbacKinds are the kinds whose writes change what the evaluator answers.
var rbacKinds = map[string]bool{"Role": true, "RoleBinding": true, "User": true}

// touchRBACVersion adds the version touch to a plan that writes an object
// of an RBAC kind.
func touchRBACVersion(p *writePlan) {
	if !rbacKinds[p.info.Kind] || p.auditOnly {
		return
	}
	key := objKey(p.tenant, p.ref)
	for _, op := range p.txn.Ops {
		if op.Key == key {
			p.put(rbacVersionKey(p.tenant), []byte(p.info.Kind))
			return
		}
	}
}

// evaluator returns the tenant's RBAC evaluator, rebuilt only when the
// tenant's RBAC version moved since it was built.
func (s *Server) evaluator(ctx context.Context, tenant string) (*auth.Evaluator, error) {
	var version int64
	kv, err := s.st.Get(ctx, rbacVersionKey(tenant))
	switch {
	case err == nil:
		version = kv.ModRevision
	case !errors.Is(err, store.ErrNotFound):
		return nil, errInternal(fmt.Errorf("reading the RBAC version of tenant %q: %w", tenant, err))
	}
	return s.rbac.Get(tenant, version, func() (*auth.Evaluator, error) { return s.loadEvaluator(ctx, tenant) })
}
