package apiserver

import (
	"context"
	"encoding/json"
	"time"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/internal/auth"
	"github.com/meridian-platform/meridian/internal/store"
)

// admitKind runs the admission rules of particular kinds on a planned
// write (p.obj set) or delete (p.obj nil).
func (s *Server) admitKind(ctx context.Context, p *writePlan, dryRun bool) error {
	switch p.info.Kind {
	case "APIToken":
		return s.admitAPIToken(p, dryRun)
	case "SiteToken":
		return s.admitSiteToken(p, dryRun)
	case "Tenant":
		if p.obj == nil {
			return s.admitTenantDelete(ctx, p)
		}
	case "User":
		if p.obj == nil && p.rc != nil && p.rc.Principal.Kind == v1.SubjectUser &&
			p.rc.Principal.Name == p.ref.Name && p.rc.Principal.Tenant == p.tenant {
			return errConflict("User", p.ref.Name, "a user cannot delete itself")
		}
	}
	return nil
}

// admitAPIToken mints the token on create (shown once, stored as a hash
// plus an index entry), keeps the expiry in status, and removes the index
// entry on delete.
func (s *Server) admitAPIToken(p *writePlan, dryRun bool) error {
	if p.obj == nil {
		old := p.old.(*v1.APIToken)
		if old.Status.TokenHash != "" {
			p.del(prefixToken + string(old.Status.TokenHash))
		}
		return nil
	}
	at := p.obj.(*v1.APIToken)
	created := s.createdAt(at.Metadata)
	switch {
	case at.Spec.ExpiresAt != nil:
		e := at.Spec.ExpiresAt.UTC()
		at.Status.ExpiresAt = &e
	case at.Spec.Expires != nil:
		e := created.Add(at.Spec.Expires.Duration).UTC().Truncate(time.Second)
		at.Status.ExpiresAt = &e
	}
	if p.old != nil || dryRun {
		return nil
	}
	p.mintToken(prefixToken, at, &at.Status.TokenHash, &at.Status.Token)
	return nil
}

// createdAt is when an object was created (now for a create).
func (s *Server) createdAt(md v1.ObjectMeta) time.Time {
	if ct := md.CreationTimestamp; ct != nil {
		return *ct
	}
	return s.now().UTC()
}

// mintToken makes the secret of a new token object: its hash goes to
// *hash and to the index key prefix+hash (-> tenant and name, created
// only if absent), the plaintext to *plain in the answer alone.
func (p *writePlan) mintToken(prefix string, obj v1.Object, hash *v1.Secret, plain *string) {
	tok, _, h := auth.NewToken()
	*hash = v1.Secret(h)
	idx, _ := json.Marshal(tokenIndex{Tenant: p.tenant, Name: obj.GetMetadata().Name})
	p.cmp(prefix+h, 0)
	p.put(prefix+h, idx)
	p.respond = func() any {
		*plain = tok
		return obj
	}
}

// admitTenantDelete refuses to delete the system tenant or a tenant that
// still holds objects.
func (s *Server) admitTenantDelete(ctx context.Context, p *writePlan) error {
	name := p.ref.Name
	if name == SystemTenant {
		return errConflict("Tenant", name, "the system tenant cannot be deleted")
	}
	res, err := s.st.List(ctx, prefixObject+name+"/", store.ListOptions{Limit: 1})
	if err != nil {
		return errInternal(err)
	}
	if len(res.Items) > 0 {
		return errConflict("Tenant", name, "Tenant %q still holds objects: delete its namespaces, users, roles and tokens first", name)
	}
	return nil
}

// admitSiteToken mints a site registration token on create: shown once,
// stored as a hash with an index entry /ts/<hash> -> tenant and name (for
// registration), removed on delete.
func (s *Server) admitSiteToken(p *writePlan, dryRun bool) error {
	if p.obj == nil {
		if old := p.old.(*v1.SiteToken); old.Status.TokenHash != "" {
			p.del(prefixSiteToken + string(old.Status.TokenHash))
		}
		return nil
	}
	st := p.obj.(*v1.SiteToken)
	e := s.createdAt(st.Metadata).Add(st.Spec.Expires.Duration).UTC().Truncate(time.Second)
	st.Status.ExpiresAt = &e
	if p.old != nil || dryRun {
		return nil
	}
	p.mintToken(prefixSiteToken, st, &st.Status.TokenHash, &st.Status.Token)
	return nil
}
