package apiserver

import (
	"encoding/json"
	"net/http"
	"time"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/internal/auth"
)

// LoginRequest is the body of POST /api/v1/login.
type LoginRequest struct {
	Tenant   string `json:"tenant"`
	Username string `json:"username"`
	Password string `json:"password"`
}

// LoginResponse is its answer.
type LoginResponse struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expiresAt"`
}

var errLoginFailed = errUnauthorized("invalid tenant, username or password")

// handleLogin checks a password and opens a session. Every failure takes
// at least LoginFailureDelay and gives the same answer, whether the tenant
// or user is unknown, disabled, or the password wrong.
func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		writeError(w, errMethod(r.Method, r.URL.Path))
		return
	}
	start := time.Now()
	resp, err := s.login(r)
	if err != nil {
		if ae := toAPIError(err); ae.code == http.StatusUnauthorized {
			if d := s.opts.LoginFailureDelay - time.Since(start); d > 0 {
				select {
				case <-time.After(d):
				case <-r.Context().Done():
				}
			}
		}
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) login(r *http.Request) (*LoginResponse, error) {
	ctx := r.Context()
	body, err := s.readBody(r, false)
	if err != nil {
		return nil, err
	}
	var req LoginRequest
	dec := json.NewDecoder(bytesReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return nil, errBadRequest("decoding login request: %v", err)
	}
	if req.Tenant == "" || req.Username == "" || req.Password == "" {
		return nil, errBadRequest("tenant, username and password are required")
	}
	fail := func(reason string) error {
		// A denial belongs to the tenant's chain only when the tenant
		// exists: made-up tenant names must not create chains.
		tenant := SystemTenant
		if isDNSLabel(req.Tenant) {
			if _, err := s.st.Get(ctx, objKey(SystemTenant, objRef{Plural: s.pluralOf("Tenant"), Name: req.Tenant})); err == nil {
				tenant = req.Tenant
			}
		}
		name, ptenant := req.Username, req.Tenant
		if !isDNSLabel(name) {
			name = "(invalid)"
		}
		if !isDNSLabel(ptenant) {
			ptenant = "(invalid)"
		}
		s.noteDenial(ctx, r, &reqCtx{Tenant: tenant, RemoteAddr: remoteAddr(r),
			Principal: Principal{Tenant: ptenant, Kind: v1.SubjectUser, Name: name}}, "login", "User", "", errUnauthorized(reason))
		return errLoginFailed
	}
	if !isDNSLabel(req.Tenant) || !isDNSLabel(req.Username) {
		_ = s.opts.Passwords.CheckPassword("", req.Password)
		return nil, fail("invalid tenant or username")
	}
	info := s.byKind["User"]
	ref := objRef{Plural: info.Plural, Name: req.Username}
	out, err := s.retryWrite(ctx, req.Tenant, info.Kind, ref, func() (any, error) {
		obj, kv, err := s.loadObject(ctx, req.Tenant, info, ref)
		if err != nil {
			if toAPIError(err).code != http.StatusNotFound {
				return nil, err
			}
			_ = s.opts.Passwords.CheckPassword("", req.Password)
			return nil, fail("unknown user")
		}
		u := obj.(*v1.User)
		// A user without a password is checked against the dummy hash.
		if err := s.opts.Passwords.CheckPassword(string(u.Spec.Password), req.Password); err != nil || u.Spec.Password == "" {
			return nil, fail("wrong password")
		}
		if u.Spec.Disabled {
			return nil, fail("user is disabled")
		}
		tok, se := auth.NewSession(req.Tenant, req.Username, s.opts.SessionTTL, s.now())
		val, err := json.Marshal(se)
		if err != nil {
			return nil, errInternal(err)
		}
		rc := &reqCtx{Tenant: req.Tenant, RemoteAddr: remoteAddr(r), Principal: Principal{Tenant: req.Tenant, Kind: v1.SubjectUser, Name: req.Username}}
		p := &writePlan{rc: rc, verb: "login", info: info, tenant: req.Tenant, ref: ref}
		p.cmp(kv.Key, kv.ModRevision)
		p.cmp(prefixSession+se.ID, 0)
		p.put(prefixSession+se.ID, val)
		p.auditOnly = true
		if _, err := s.submit(ctx, p); err != nil {
			return nil, err
		}
		return &LoginResponse{Token: tok, ExpiresAt: se.ExpiresAt}, nil
	})
	if err != nil {
		return nil, err
	}
	return out.(*LoginResponse), nil
}
