package apiserver

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/internal/store"
)

// PasswordHasher stores passwords as slow one-way hashes.
type PasswordHasher interface {
	// HashPassword returns an encoded slow hash of password.
	HashPassword(password string) (string, error)
	// VerifyPassword reports whether password matches hash.
	VerifyPassword(hash, password string) bool
}

// TokenMinter makes bearer tokens and the hashes they are stored under.
type TokenMinter interface {
	// NewToken returns a new random token (high entropy).
	NewToken() (string, error)
	// HashToken returns the stored hash of a token (fast, keyed or not:
	// tokens have enough entropy).
	HashToken(token string) string
}

// Authorizer decides whether a subject may use verb on kind in namespace,
// given the built-in roles and the tenant's Roles and RoleBindings.
// namespace is "" for tenant-scoped kinds and tenant-wide requests.
type Authorizer interface {
	Authorize(subjectKind, subjectName, verb, kind, namespace string, roles []v1.Role, bindings []v1.RoleBinding) (allowed bool, reason string)
}

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

// Token prefixes tell sessions from API tokens without a second lookup.
const (
	sessionTokenPrefix = "mrs_"
	apiTokenPrefix     = "mrt_"
	// SiteTokenPrefix starts every SiteToken (registration) token.
	SiteTokenPrefix = "mst_"
)

// tokenIndex is stored under /t/<hash>.
type tokenIndex struct {
	Tenant string `json:"tenant"`
	Name   string `json:"name"`
}

// session is stored under /s/<hash>.
type session struct {
	Tenant    string    `json:"tenant"`
	User      string    `json:"user"`
	ExpiresAt time.Time `json:"expiresAt"`
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
		ok, err := s.allowed(ctx, rc, SystemTenant, "*", "*", "")
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
	hash := s.opts.Tokens.HashToken(tok)
	switch {
	case strings.HasPrefix(tok, sessionTokenPrefix):
		kv, err := s.st.Get(ctx, prefixSession+hash)
		if errors.Is(err, store.ErrNotFound) {
			return Principal{}, errBadToken
		}
		if err != nil {
			return Principal{}, errInternal(err)
		}
		var se session
		if err := json.Unmarshal(kv.Value, &se); err != nil {
			return Principal{}, errInternal(err)
		}
		if !s.now().Before(se.ExpiresAt) {
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
	case strings.HasPrefix(tok, apiTokenPrefix):
		kv, err := s.st.Get(ctx, prefixToken+hash)
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
		if !ok || subtle.ConstantTimeCompare([]byte(at.Status.TokenHash), []byte(hash)) != 1 {
			return Principal{}, errBadToken
		}
		if at.Status.ExpiresAt != nil && !s.now().Before(*at.Status.ExpiresAt) {
			return Principal{}, errUnauthorized(fmt.Sprintf("API token %q has expired: create a new one", ti.Name))
		}
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

// rbacState loads the Roles and RoleBindings of a tenant.
func (s *Server) rbacState(ctx context.Context, tenant string) ([]v1.Role, []v1.RoleBinding, error) {
	var roles []v1.Role
	var bindings []v1.RoleBinding
	for _, kind := range []string{"Role", "RoleBinding"} {
		info := s.byKind[kind]
		prefix := kindPrefix(tenant, info.Plural, "", false)
		after, rev := "", int64(0)
		for {
			res, err := s.st.List(ctx, prefix, store.ListOptions{Revision: rev, After: after, Limit: 1000})
			if err != nil {
				return nil, nil, errInternal(fmt.Errorf("loading %s of tenant: %w", info.Plural, err))
			}
			rev = res.Revision
			for _, kv := range res.Items {
				after = kv.Key
				switch kind {
				case "Role":
					var r v1.Role
					if json.Unmarshal(kv.Value, &r) == nil {
						roles = append(roles, r)
					}
				default:
					var b v1.RoleBinding
					if json.Unmarshal(kv.Value, &b) == nil {
						bindings = append(bindings, b)
					}
				}
			}
			if !res.More {
				break
			}
		}
	}
	return roles, bindings, nil
}

// allowed evaluates RBAC for the request's principal in tenant.
func (s *Server) allowed(ctx context.Context, rc *reqCtx, tenant, verb, kind, ns string) (bool, error) {
	if rc.Principal.SystemAdmin && tenant != rc.Principal.Tenant {
		return true, nil
	}
	if tenant != rc.Principal.Tenant {
		return false, nil
	}
	roles, bindings, err := s.rbacState(ctx, tenant)
	if err != nil {
		return false, err
	}
	ok, _ := s.opts.Authorizer.Authorize(rc.Principal.Kind, rc.Principal.Name, verb, kind, ns, roles, bindings)
	return ok, nil
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
	where := "in the tenant"
	if ns != "" {
		where = fmt.Sprintf("in namespace %q", ns)
	}
	e := errForbidden("%s %q may not %s %s %s", rc.Principal.Kind, rc.Principal.Name, verb, kind, where)
	s.noteDenial(ctx, r, rc, verb, kind, ns, e)
	return e
}

// rolesOf lists the roles bound to the principal (for whoami).
func (s *Server) rolesOf(ctx context.Context, rc *reqCtx) ([]string, error) {
	if rc.Principal.SystemAdmin && rc.Tenant != rc.Principal.Tenant {
		return []string{"admin"}, nil
	}
	_, bindings, err := s.rbacState(ctx, rc.Tenant)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	out := []string{}
	for _, b := range bindings {
		for _, sub := range b.Spec.Subjects {
			if sub.Kind == rc.Principal.Kind && sub.Name == rc.Principal.Name && !seen[b.Spec.Role] {
				seen[b.Spec.Role] = true
				out = append(out, b.Spec.Role)
			}
		}
	}
	return out, nil
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
	} else if rc.Principal.SystemAdmin && rc.Tenant != rc.Principal.Tenant {
		res.Allowed, res.Reason = true, "system admin acting in the tenant"
	} else {
		roles, bindings, err := s.rbacState(r.Context(), rc.Tenant)
		if err != nil {
			return err
		}
		res.Allowed, res.Reason = s.opts.Authorizer.Authorize(rc.Principal.Kind, rc.Principal.Name, req.Verb, kind, ns, roles, bindings)
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
