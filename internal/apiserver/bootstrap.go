package apiserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/internal/store"
)

// BootstrapOptions says what the first start creates.
type BootstrapOptions struct {
	// DefaultTenant is the first tenant (default "default"); it gets a
	// namespace "default".
	DefaultTenant string
	// AdminName names the admin User and APIToken of the system tenant
	// (default "admin").
	AdminName string
	// AdminPassword, when set, lets the admin log in with a password.
	AdminPassword string
}

// BootstrapResult is what Bootstrap made on first start.
type BootstrapResult struct {
	// Created is false when the console was already bootstrapped; the
	// other fields are then empty.
	Created bool
	// AdminToken is the plaintext bearer token of the system admin (shown
	// only now). A system admin acts in another tenant with the header
	// X-Meridian-Tenant.
	AdminToken    string
	AdminTenant   string
	DefaultTenant string
}

// Bootstrap creates, on first start only, the system tenant, a default
// tenant with namespace "default", and an admin User, APIToken and
// RoleBinding (role admin) in the system tenant. Every object is written
// through the normal create path (validated, audited, with history).
func (s *Server) Bootstrap(ctx context.Context, o BootstrapOptions) (BootstrapResult, error) {
	if o.DefaultTenant == "" {
		o.DefaultTenant = "default"
	}
	if o.AdminName == "" {
		o.AdminName = "admin"
	}
	tinfo := s.byKind["Tenant"]
	_, err := s.st.Get(ctx, objKey(SystemTenant, objRef{Plural: tinfo.Plural, Name: SystemTenant}))
	if err == nil {
		return BootstrapResult{}, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return BootstrapResult{}, fmt.Errorf("bootstrap: reading system tenant: %w", err)
	}
	rc := &reqCtx{Tenant: SystemTenant, RemoteAddr: "bootstrap",
		Principal: Principal{Tenant: SystemTenant, Kind: v1.SubjectUser, Name: "bootstrap", SystemAdmin: true}}
	inTenant := func(t string) *reqCtx { c := *rc; c.Tenant = t; return &c }
	mk := func(kind, ns string, fill func(v1.Object)) v1.Object {
		obj := s.byKind[kind].New()
		tm := obj.GetTypeMeta()
		tm.APIVersion, tm.Kind = v1.APIVersion, kind
		obj.GetMetadata().Namespace = ns
		fill(obj)
		return obj
	}
	named := func(n string) func(v1.Object) { return func(o v1.Object) { o.GetMetadata().Name = n } }
	steps := []struct {
		rc   *reqCtx
		kind string
		obj  v1.Object
	}{
		{rc, "Tenant", mk("Tenant", "", named(o.DefaultTenant))},
		{inTenant(o.DefaultTenant), "Namespace", mk("Namespace", "", named("default"))},
		{rc, "User", mk("User", "", func(obj v1.Object) {
			obj.GetMetadata().Name = o.AdminName
			if u, ok := obj.(*v1.User); ok && o.AdminPassword != "" {
				u.Spec.Password = v1.Secret(o.AdminPassword)
			}
		})},
		{rc, "APIToken", mk("APIToken", "", func(obj v1.Object) {
			obj.GetMetadata().Name = o.AdminName
			if t, ok := obj.(*v1.APIToken); ok {
				t.Spec.Description = "bootstrap admin token"
			}
		})},
		{rc, "RoleBinding", mk("RoleBinding", "", func(obj v1.Object) {
			obj.GetMetadata().Name = o.AdminName
			if b, ok := obj.(*v1.RoleBinding); ok {
				b.Spec.Role = "admin"
				b.Spec.Subjects = []v1.Subject{{Kind: v1.SubjectUser, Name: o.AdminName}, {Kind: v1.SubjectAPIToken, Name: o.AdminName}}
			}
		})},
		// Last: its presence marks a finished bootstrap.
		{rc, "Tenant", mk("Tenant", "", named(SystemTenant))},
	}
	res := BootstrapResult{Created: true, AdminTenant: SystemTenant, DefaultTenant: o.DefaultTenant}
	for _, st := range steps {
		info := s.byKind[st.kind]
		out, err := s.create(ctx, st.rc, target{info: info}, st.obj, false)
		if err != nil {
			if ae := toAPIError(err); ae.code == http.StatusConflict && ae.reason == v1.StatusReasonAlreadyExists {
				continue
			}
			return BootstrapResult{}, fmt.Errorf("bootstrap: creating %s %q: %w", st.kind, st.obj.GetMetadata().Name, err)
		}
		if at, ok := out.(*v1.APIToken); ok {
			res.AdminToken = at.Status.Token
		}
	}
	if res.AdminToken == "" {
		return BootstrapResult{}, errors.New("bootstrap: admin token already existed; delete it or the data directory to bootstrap again")
	}
	return res, nil
}
