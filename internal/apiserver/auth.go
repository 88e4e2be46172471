package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/internal/auth"
	"github.com/meridian-platform/meridian/internal/store"
)

// PasswordHasher stores passwords as slow one-way hashes. The default is
// internal/auth's argon2id (auth.HashPassword, auth.CheckPassword).
type PasswordHasher interface {
	// HashPassword returns an encoded slow hash of password.
	HashPassword(password string) (string, error)
	// CheckPassword returns nil when password matches hash. With hash ""
	// (unknown user) it spends the time of a real check and fails.
	CheckPassword(hash, password string) error
}

// authPasswords is the default PasswordHasher.
type authPasswords struct{}

func (authPasswords) HashPassword(p string) (string, error) { return auth.HashPassword(p) }
func (authPasswords) CheckPassword(h, p string) error       { return auth.CheckPassword(h, p) }

// Principal is who a request acts for.
type Principal struct {
	// Tenant is the principal's own tenant.
	Tenant string `json:"tenant"`
	// Kind is User or APIToken.
	Kind string `json:"kind"`
	Name string `json:"name"`
	// SystemAdmin is set for admins of the system tenant.
	SystemAdmin bool `json:"-"`
}

func (p Principal) String() string { return p.Tenant + "/" + p.Kind + "/" + p.Name }

// tokenIndex is stored under /t/<hash>.
type tokenIndex struct {
	Tenant string `json:"tenant"`
	Name   string `json:"name"`
}

func (s *Server) pluralOf(kind string) string { return s.byKind[kind].Plural }

// authenticate turns the bearer token into a principal and resolves the
// tenant the request acts in.
func (s *Server) authenticate(r *http.Request) (*reqCtx, error) {
	ctx := r.Context()
	h := r.Header.Get("Authorization")
	if h == "" {
		return nil, errUnauthorized("missing bearer token: send the header \"Authorization: Bearer <token>\" (an API token or a session token from POST /api/v1/login)")
	}
	scheme, tok, ok := strings.Cut(h, " ")
	tok = strings.TrimSpace(tok)
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return nil, errUnauthorized("malformed Authorization header: use \"Bearer <token>\"")
	}
	p, err := s.principalForToken(ctx, tok)
	if err != nil {
		return nil, err
	}
	rc := &reqCtx{Principal: p, Tenant: p.Tenant, RemoteAddr: remoteAddr(r)}
	if p.Tenant == SystemTenant {
		ok, err := s.allowed(ctx, rc, SystemTenant, "create", "Tenant", "")
		if err != nil {
			return nil, err
		}
		rc.Principal.SystemAdmin = ok
	}
	if t := r.Header.Get("X-Meridian-Tenant"); t != "" && t != p.Tenant {
		if !rc.Principal.SystemAdmin {
			return nil, errForbidden("only admins of the system tenant may act in another tenant (X-Meridian-Tenant)")
		}
		if !isDNSLabel(t) {
			return nil, errBadRequest("invalid X-Meridian-Tenant %q", t)
		}
		_, err := s.st.Get(ctx, objKey(SystemTenant, objRef{Plural: s.pluralOf("Tenant"), Name: t}))
		if errors.Is(err, store.ErrNotFound) {
			return nil, errNotFound("Tenant", t)
		}
		if err != nil {
			return nil, errInternal(err)
		}
		rc.Tenant = t
	}
	return rc, nil
}

var errBadToken = errUnauthorized("unknown or invalid bearer token")

func (s *Server) principalForToken(ctx context.Context, tok string) (Principal, error) {
	prefix, id, err := auth.ParseToken(tok)
	if err != nil {
		return Principal{}, errBadToken
	}
	switch prefix {
	case auth.SessionPrefix:
		kv, err := s.st.Get(ctx, prefixSession+id)
		if errors.Is(err, store.ErrNotFound) {
			return Principal{}, errBadToken
		}
		if err != nil {
			return Principal{}, errInternal(err)
		}
		var se auth.Session
		if err := json.Unmarshal(kv.Value, &se); err != nil {
			return Principal{}, errInternal(err)
		}
		if err := se.Check(tok, s.now()); err != nil {
			if !errors.Is(err, auth.ErrExpiredToken) {
				return Principal{}, errBadToken
			}
			// Expired sessions are removed lazily.
			_, _ = s.st.Txn(ctx, store.Txn{Compares: []store.Compare{{Key: kv.Key, ModRevision: kv.ModRevision}}, Ops: []store.Op{store.Delete(kv.Key)}})
			return Principal{}, errUnauthorized("session token has expired: log in again")
		}
		u, _, err := s.loadObject(ctx, se.Tenant, s.byKind["User"], objRef{Plural: s.pluralOf("User"), Name: se.User})
		if err != nil {
			return Principal{}, errUnauthorized("session token is no longer valid: its user was removed")
		}
		if uu, ok := u.(*v1.User); ok && uu.Spec.Disabled {
			return Principal{}, errUnauthorized("session token is no longer valid: its user is disabled")
		}
		return Principal{Tenant: se.Tenant, Kind: v1.SubjectUser, Name: se.User}, nil
	case auth.APITokenPrefix:
		kv, err := s.st.Get(ctx, prefixToken+auth.HashToken(tok))
		if errors.Is(err, store.ErrNotFound) {
			return Principal{}, errBadToken
		}
		if err != nil {
			return Principal{}, errInternal(err)
		}
		var ti tokenIndex
		if err := json.Unmarshal(kv.Value, &ti); err != nil {
			return Principal{}, errInternal(err)
		}
		obj, _, err := s.loadObject(ctx, ti.Tenant, s.byKind["APIToken"], objRef{Plural: s.pluralOf("APIToken"), Name: ti.Name})
		if err != nil {
			return Principal{}, errBadToken
		}
		at, ok := obj.(*v1.APIToken)
		if !ok || !auth.VerifyToken(tok, string(at.Status.TokenHash)) {
			return Principal{}, errBadToken
		}
		if at.Status.ExpiresAt != nil && !s.now().Before(*at.Status.ExpiresAt) {
			return Principal{}, errUnauthorized(fmt.Sprintf("API token %q has expired: create a new one", ti.Name))
		}
		s.touchToken(ctx, ti, at)
		return Principal{Tenant: ti.Tenant, Kind: v1.SubjectAPIToken, Name: ti.Name}, nil
	}
	return Principal{}, errBadToken
}

func remoteAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// loadEvaluator builds the RBAC evaluator of a tenant from its Roles and
// RoleBindings (built-in roles are always present); evaluator caches it.
func (s *Server) loadEvaluator(ctx context.Context, tenant string) (*auth.Evaluator, error) {
	var roles []auth.Role
	var bindings []auth.Binding
	for _, kind := range []string{"Role", "RoleBinding"} {
		info := s.byKind[kind]
		prefix := kindPrefix(tenant, info.Plural, "", false)
		after, rev := "", int64(0)
		for {
			res, err := s.st.List(ctx, prefix, store.ListOptions{Revision: rev, After: after, Limit: 1000})
			if err != nil {
				return nil, errInternal(fmt.Errorf("loading %s of tenant: %w", info.Plural, err))
			}
			rev = res.Revision
			for _, kv := range res.Items {
				after = kv.Key
				switch kind {
				case "Role":
					var r v1.Role
					if json.Unmarshal(kv.Value, &r) == nil {
						roles = append(roles, authRole(&r))
					}
				default:
					var b v1.RoleBinding
					if json.Unmarshal(kv.Value, &b) == nil {
						bindings = append(bindings, authBinding(&b))
					}
				}
			}
			if !res.More {
				break
			}
		}
	}
	return auth.NewEvaluator(tenant, roles, bindings), nil
}

// authRole converts a stored Role for the evaluator ("*" namespaces mean
// every namespace).
func authRole(r *v1.Role) auth.Role {
	out := auth.Role{Name: r.Metadata.Name, Description: r.Spec.Description}
	for _, rule := range r.Spec.Rules {
		ns := rule.Namespaces
		if contains(ns, "*") {
			ns = nil
		}
		out.Rules = append(out.Rules, auth.Rule{Verbs: rule.Verbs, Kinds: rule.Kinds, Namespaces: ns})
	}
	return out
}

func authBinding(b *v1.RoleBinding) auth.Binding {
	out := auth.Binding{Name: b.Metadata.Name, Role: b.Spec.Role, Namespaces: b.Spec.Namespaces}
	for _, sub := range b.Spec.Subjects {
		out.Subjects = append(out.Subjects, auth.Subject{Kind: sub.Kind, Name: sub.Name})
	}
	return out
}

func (p Principal) auth() auth.Principal {
	return auth.Principal{Tenant: p.Tenant, Name: p.Name, Kind: auth.PrincipalKind(p.Kind)}
}

// decide evaluates RBAC for the request's principal in tenant. A system
// admin acting in another tenant may do everything there.
func (s *Server) decide(ctx context.Context, rc *reqCtx, tenant, verb, kind, ns string) (auth.Decision, *auth.Evaluator, error) {
	if rc.Principal.SystemAdmin && tenant != rc.Principal.Tenant {
		return auth.Decision{Allowed: true, Reason: "admin of the system tenant acting in the tenant"}, nil, nil
	}
	if tenant != rc.Principal.Tenant {
		return auth.Decision{Reason: "not a principal of this tenant"}, nil, nil
	}
	ev, err := s.evaluator(ctx, tenant)
	if err != nil {
		return auth.Decision{}, nil, err
	}
	return ev.Authorize(rc.Principal.auth(), verb, kind, ns), ev, nil
}

func (s *Server) allowed(ctx context.Context, rc *reqCtx, tenant, verb, kind, ns string) (bool, error) {
	d, _, err := s.decide(ctx, rc, tenant, verb, kind, ns)
	return d.Allowed, err
}

// authorize answers 403 (and records the denial) unless RBAC allows the
// request.
func (s *Server) authorize(ctx context.Context, r *http.Request, rc *reqCtx, verb, kind, ns string) error {
	ok, err := s.allowed(ctx, rc, rc.Tenant, verb, kind, ns)
	if err != nil {
		return err
	}
	if ok {
		return nil
	}
	return s.deny(ctx, r, rc, verb, kind, ns)
}

func (s *Server) deny(ctx context.Context, r *http.Request, rc *reqCtx, verb, kind, ns string) error {
	where := "in the tenant"
	if ns != "" {
		where = fmt.Sprintf("in namespace %q", ns)
	}
	e := errForbidden("%s %q may not %s %s %s", rc.Principal.Kind, rc.Principal.Name, verb, kind, where)
	s.noteDenial(ctx, r, rc, verb, kind, ns, e)
	return e
}

// authorizeAcross authorizes a list or watch across namespaces: allowed
// tenant-wide (nil filter), or limited to the namespaces the principal may
// read there (a filter), or 403.
func (s *Server) authorizeAcross(ctx context.Context, r *http.Request, rc *reqCtx, verb, kind string) (map[string]bool, error) {
	d, ev, err := s.decide(ctx, rc, rc.Tenant, verb, kind, "")
	if err != nil || d.Allowed {
		return nil, err
	}
	if ev != nil {
		if all, nss := ev.AllowedNamespaces(rc.Principal.auth(), verb, kind); all {
			return nil, nil
		} else if len(nss) > 0 {
			f := make(map[string]bool, len(nss))
			for _, n := range nss {
				f[n] = true
			}
			return f, nil
		}
	}
	return nil, s.deny(ctx, r, rc, verb, kind, "")
}

// rolesOf lists the roles bound to the principal (for whoami).
func (s *Server) rolesOf(ctx context.Context, rc *reqCtx) ([]string, error) {
	if rc.Principal.SystemAdmin && rc.Tenant != rc.Principal.Tenant {
		return []string{"admin"}, nil
	}
	ev, err := s.evaluator(ctx, rc.Tenant)
	if err != nil {
		return nil, err
	}
	roles := ev.RolesOf(rc.Principal.auth())
	if roles == nil {
		roles = []string{}
	}
	return roles, nil
}

// WhoAmI is the answer of GET /api/v1/whoami.
type WhoAmI struct {
	Tenant string   `json:"tenant"`
	Name   string   `json:"name"`
	Kind   string   `json:"kind"`
	Roles  []string `json:"roles"`
}

func (s *Server) handleWhoami(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	if r.Method != http.MethodGet {
		return errMethod(r.Method, r.URL.Path)
	}
	roles, err := s.rolesOf(r.Context(), rc)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, WhoAmI{Tenant: rc.Tenant, Name: rc.Principal.Name, Kind: rc.Principal.Kind, Roles: roles})
	return nil
}

// AccessReview is the body and answer of POST /api/v1/accessreviews.
type AccessReview struct {
	Verb      string `json:"verb"`
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Allowed   bool   `json:"allowed"`
	Reason    string `json:"reason,omitempty"`
}

func (s *Server) handleAccessReview(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	if r.Method != http.MethodPost {
		return errMethod(r.Method, r.URL.Path)
	}
	body, err := s.readBody(r, false)
	if err != nil {
		return err
	}
	var req AccessReview
	dec := json.NewDecoder(bytesReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return errBadRequest("decoding access review: %v", err)
	}
	var causes v1.FieldErrors
	if !contains(v1.Verbs(), req.Verb) {
		causes = append(causes, v1.NotSupported("verb", req.Verb, v1.Verbs()))
	}
	kind := req.Kind
	if kind != "*" && !contains(v1.NonObjectKinds(), kind) {
		if ki, ok := v1.LookupKind(kind); ok {
			kind = ki.Kind
		} else {
			causes = append(causes, v1.FieldError{Field: "kind", Reason: v1.ReasonNotSupported, Message: fmt.Sprintf("unknown kind %q", req.Kind)})
		}
	}
	if req.Namespace != "" && !isDNSLabel(req.Namespace) {
		causes = append(causes, v1.Invalid("namespace", req.Namespace, "must be a DNS-1123 label"))
	}
	if len(causes) > 0 {
		return errInvalid("AccessReview", "", causes)
	}
	ns := req.Namespace
	if ki, ok := s.byKind[kind]; ok && ki.Scope != v1.ScopeNamespaced {
		ns = ""
	}
	res := AccessReview{Verb: req.Verb, Kind: kind, Namespace: ns}
	if ki, ok := s.byKind[kind]; ok && ki.Scope == v1.ScopeSystem && rc.Tenant != SystemTenant {
		res.Reason = kind + " objects are managed by the system tenant only"
	} else {
		d, _, err := s.decide(r.Context(), rc, rc.Tenant, req.Verb, kind, ns)
		if err != nil {
			return err
		}
		res.Allowed, res.Reason = d.Allowed, d.Reason
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// lastUsedEvery bounds how often an API token's status.lastUsed is written.
const lastUsedEvery = time.Minute

// touchToken records when an API token was last used, at most once per
// lastUsedEvery (best effort: a failure only delays the next record).
func (s *Server) touchToken(ctx context.Context, ti tokenIndex, at *v1.APIToken) {
	now := s.now().UTC()
	if lu := at.Status.LastUsed; lu != nil && now.Sub(*lu) < lastUsedEvery {
		return
	}
	err := s.UpdateStatus(ctx, ti.Tenant, "APIToken", "", ti.Name, func(o v1.Object) error {
		t := now.Truncate(time.Second)
		o.(*v1.APIToken).Status.LastUsed = &t
		return nil
	})
	if err != nil {
		s.log.Debug("apiserver: recording token use", "token", ti.Name, "err", err)
	}
}
