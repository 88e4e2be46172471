package apiserver

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/api/v1/openapi"
	"github.com/meridian-platform/meridian/internal/auth"
	"github.com/meridian-platform/meridian/internal/store"
)

// SystemTenant is the tenant whose admins manage tenants.
const SystemTenant = "system"

// Options configures a Server. Store, Secrets and Audit are required.
// RBAC is internal/auth's evaluator over built-in roles and the tenant's
// Roles and RoleBindings.
type Options struct {
	// Store holds every object, its history and the audit chain.
	Store store.Store
	// Kinds is the kind table; nil means v1.Kinds().
	Kinds []v1.KindInfo
	// Secrets encrypts secret fields before they are stored.
	Secrets SecretEncrypter
	// Passwords hashes User passwords (slow hash) and checks them at
	// login; nil means internal/auth's argon2id.
	Passwords PasswordHasher
	// Audit prepares the audit record written in the same transaction as
	// every change, lists records and verifies chains (*audit.Log).
	Audit AuditLog
	// Denials aggregates denied requests (*audit.Denials); nil records
	// none. Its owner runs Denials.Run to write them.
	Denials DenialRecorder
	// Keys rotates the data key on POST /api/v1/system/rotatekey
	// (*pki.Keyring); nil answers 404 there.
	Keys KeyRotator
	// OpenAPI returns the OpenAPI document (called once, then cached); nil
	// means api/v1/openapi.Generate.
	OpenAPI func() ([]byte, error)
	// Logger receives internal errors; nil means slog.Default().
	Logger *slog.Logger

	// MaxBodyBytes limits request bodies (default 1 MiB).
	MaxBodyBytes int64
	// HistoryLimit is how many generations are kept per object (default 20).
	HistoryLimit int
	// SessionTTL is how long a login session lasts (default 12h).
	SessionTTL time.Duration
	// LoginFailureDelay is the minimum time a failed login takes (default 300ms).
	LoginFailureDelay time.Duration
	// BookmarkInterval is how often a watch sends a BOOKMARK (default 30s).
	BookmarkInterval time.Duration
	// DefaultRateLimit and DefaultRateBurst apply to tenants whose Tenant
	// object sets no limit (default 100 req/s, burst 200). A negative
	// DefaultRateLimit disables rate limiting.
	DefaultRateLimit float64
	DefaultRateBurst int
	// Now returns the current time (tests); nil means time.Now.
	Now func() time.Time
}

// Server serves /api/v1 and /healthz.
type Server struct {
	opts    Options
	st      store.Store
	log     *slog.Logger
	now     func() time.Time
	byPlur  map[string]v1.KindInfo
	byKind  map[string]v1.KindInfo
	kinds   []v1.KindInfo
	limits  *tenantLimiters
	locks   writeLocks
	group   groupCommit
	rbac    auth.EvaluatorCache // per tenant, checked against rbacVersionKey
	events  SecurityEventLister
	subs    subresources
	fixed   map[string]fixedRoute
	openapi struct {
		once sync.Once
		doc  []byte
		err  error
	}
}

// New checks opts and returns a Server.
func New(opts Options) (*Server, error) {
	if opts.Store == nil {
		return nil, errors.New("apiserver: Options.Store is required")
	}
	if opts.Secrets == nil {
		return nil, errors.New("apiserver: Options.Secrets is required")
	}
	if opts.Passwords == nil {
		opts.Passwords = authPasswords{}
	}
	if opts.Audit == nil {
		return nil, errors.New("apiserver: Options.Audit is required")
	}
	if opts.OpenAPI == nil {
		opts.OpenAPI = openapi.Generate
	}
	if opts.Kinds == nil {
		opts.Kinds = v1.Kinds()
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 1 << 20
	}
	if opts.HistoryLimit <= 0 {
		opts.HistoryLimit = 20
	}
	if opts.SessionTTL <= 0 {
		opts.SessionTTL = 12 * time.Hour
	}
	if opts.LoginFailureDelay <= 0 {
		opts.LoginFailureDelay = 300 * time.Millisecond
	}
	if opts.BookmarkInterval <= 0 {
		opts.BookmarkInterval = 30 * time.Second
	}
	if opts.DefaultRateLimit == 0 {
		opts.DefaultRateLimit = 100
	}
	if opts.DefaultRateBurst <= 0 {
		opts.DefaultRateBurst = 200
	}
	s := &Server{
		opts:   opts,
		st:     opts.Store,
		log:    opts.Logger,
		now:    opts.Now,
		byPlur: map[string]v1.KindInfo{},
		byKind: map[string]v1.KindInfo{},
		kinds:  opts.Kinds,
		fixed:  fixedRoutes(),
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.now == nil {
		s.now = time.Now
	}
	for _, k := range opts.Kinds {
		if k.Plural == "" || k.Kind == "" || k.New == nil {
			return nil, fmt.Errorf("apiserver: kind table entry %q is incomplete", k.Kind)
		}
		s.byPlur[k.Plural] = k
		s.byKind[k.Kind] = k
	}
	for _, need := range []string{"Namespace", "Tenant", "User", "APIToken", "Role", "RoleBinding"} {
		if _, ok := s.byKind[need]; !ok {
			return nil, fmt.Errorf("apiserver: kind table lacks %s", need)
		}
	}
	s.limits = newTenantLimiters(s)
	return s, nil
}

// Handler returns the server as an http.Handler.
func (s *Server) Handler() http.Handler { return s }

// ServeHTTP routes a request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.Error("apiserver: panic serving request", "path", r.URL.Path, "panic", v)
			writeError(w, errInternal(fmt.Errorf("panic: %v", v)))
		}
	}()
	path := r.URL.Path
	if path == healthzPath {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			writeError(w, errMethod(r.Method, path))
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
		return
	}
	rest, ok := strings.CutPrefix(path, "/api/v1/")
	if !ok && path != "/api/v1" {
		writeError(w, newErr(http.StatusNotFound, v1.StatusReasonNotFound, "the server could not find the requested resource %q", path))
		return
	}
	rest = strings.TrimSuffix(rest, "/")
	if rest == loginPath {
		s.handleLogin(w, r)
		return
	}
	rc, err := s.authenticate(r)
	if err != nil {
		s.noteDenial(r.Context(), r, nil, "authenticate", "", "", err)
		writeError(w, err)
		return
	}
	if err := s.limits.allow(r.Context(), rc.Tenant); err != nil {
		writeError(w, err)
		return
	}
	if err := s.route(w, r, rc, rest); err != nil {
		if ae := toAPIError(err); ae.code >= 500 {
			s.log.Error("apiserver: request failed", "method", r.Method, "path", r.URL.Path, "tenant", rc.Tenant, "err", ae.message)
		}
		writeError(w, err)
	}
}

// route dispatches an authenticated request.
func (s *Server) route(w http.ResponseWriter, r *http.Request, rc *reqCtx, rest string) error {
	if ok, err := s.routeFixed(w, r, rc, rest); ok {
		return err
	}
	if ns, ok := securityEventsPath(rest); ok {
		return s.handleSecurityEvents(w, r, rc, ns)
	}
	tgt, err := s.parseTarget(rest)
	if err != nil {
		return err
	}
	return s.serveObjects(w, r, rc, tgt)
}

// target is what an object URL names.
type target struct {
	info          v1.KindInfo
	namespace     string // from the URL
	allNamespaces bool   // GET /api/v1/<namespaced plural>
	name          string
	sub           string // "", "history", "rollback"
	// nsFilter limits a list or watch across namespaces to these
	// namespaces (nil: no limit).
	nsFilter map[string]bool
}

func (s *Server) parseTarget(rest string) (target, error) {
	notFound := newErr(http.StatusNotFound, v1.StatusReasonNotFound, "the server could not find the requested resource %q", "/api/v1/"+rest)
	segs := strings.Split(rest, "/")
	for _, sg := range segs {
		if sg == "" {
			return target{}, notFound
		}
	}
	var t target
	if len(segs) >= 3 && segs[0] == "namespaces" {
		if info, ok := s.byPlur[segs[2]]; ok && info.Scope == v1.ScopeNamespaced {
			t.info = info
			t.namespace = segs[1]
			segs = segs[3:]
			if err := checkURLName("namespace", t.namespace); err != nil {
				return target{}, err
			}
			return s.parseNameSub(t, segs, notFound)
		}
	}
	info, ok := s.byPlur[segs[0]]
	if !ok {
		return target{}, notFound
	}
	t.info = info
	if info.Scope == v1.ScopeNamespaced {
		if len(segs) != 1 {
			return target{}, notFound
		}
		t.allNamespaces = true
		return t, nil
	}
	return s.parseNameSub(t, segs[1:], notFound)
}

func (s *Server) parseNameSub(t target, segs []string, notFound error) (target, error) {
	switch len(segs) {
	case 0:
		return t, nil
	case 1, 2:
		t.name = segs[0]
		if err := checkURLName("name", t.name); err != nil {
			return target{}, err
		}
		if len(segs) == 2 {
			if segs[1] != "history" && segs[1] != "rollback" && s.subs.lookup(t.info.Kind, segs[1]) == nil {
				return target{}, notFound
			}
			t.sub = segs[1]
		}
		return t, nil
	}
	return target{}, notFound
}

// checkURLName rejects names that cannot be DNS-1123 labels, so that they
// can never break the key layout.
func checkURLName(what, n string) error {
	if !isDNSLabel(n) {
		return errBadRequest("invalid %s %q in URL: must be a DNS-1123 label (lower-case letters, digits and '-', at most 63 characters)", what, n)
	}
	return nil
}

// isDNSLabel reports whether n is a DNS-1123 label.
func isDNSLabel(n string) bool { return v1.IsDNS1123Label(n) }

// reqCtx is what a request carries after authentication.
type reqCtx struct {
	Principal Principal
	// Tenant is the tenant the request acts in (the principal's own, or
	// X-Meridian-Tenant for a system admin).
	Tenant     string
	RemoteAddr string
}
