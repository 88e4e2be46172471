package sites

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/internal/apiserver"
	"github.com/meridian-platform/meridian/internal/audit"
	"github.com/meridian-platform/meridian/internal/auth"
	"github.com/meridian-platform/meridian/internal/pki"
	"github.com/meridian-platform/meridian/internal/store"
)

// Defaults.
const (
	// DefaultCertTTL is the lifetime of a site's client certificate.
	DefaultCertTTL = 24 * time.Hour
	// DefaultReenrolGrace is how long after its expiry a certificate may
	// still be exchanged for a new one (a node that was offline).
	DefaultReenrolGrace = 30 * 24 * time.Hour
	// DefaultMaxRevoked bounds the revoked certificate serials kept.
	DefaultMaxRevoked = 100000
	maxBody           = 64 << 10
	maxTxnAttempts    = 50
)

// AuditLog appends audit records inside the caller's transaction
// (*audit.Log).
type AuditLog interface {
	Digest(ctx context.Context, tenant string, data []byte) (string, error)
	Prepare(ctx context.Context, tenant string, rec audit.Record) ([]store.Op, []store.Compare, error)
}

// DenialRecorder aggregates refused registrations (*audit.Denials).
type DenialRecorder interface {
	Add(d audit.Denial)
}

// Options configures a Server.
type Options struct {
	Store store.Store
	CA    *pki.CA
	Audit AuditLog
	// Denials, when set, records refused registrations.
	Denials DenialRecorder
	// CertTTL is the lifetime of issued client certificates (default 24h).
	CertTTL time.Duration
	// ReenrolGrace is how long an expired certificate may still renew
	// (default 30 days).
	ReenrolGrace time.Duration
	// MaxRevoked bounds the revoked serials kept (default 100,000); see
	// PruneRevoked.
	MaxRevoked int
	Now        func() time.Time
	Logger     *slog.Logger
}

// Server registers sites and renews their certificates.
type Server struct {
	opts Options
	log  *slog.Logger

	// tenantMu serialises registrations per tenant inside this console:
	// they all touch the tenant's audit head (and often one token), so
	// taking turns is faster than colliding. The store compares keep them
	// correct across consoles.
	tenantMu sync.Map // tenant -> *sync.Mutex

	revMu   sync.RWMutex
	revoked map[string]revokedEntry         // serial hex
	seen    map[string]map[string]time.Time // tenant/site -> serials seen -> NotAfter
	cutoffs map[string]time.Time            // tenant/site -> when its decommission was seen
}

// New returns a Server and loads the revoked serials.
func New(ctx context.Context, opts Options) (*Server, error) {
	if opts.Store == nil || opts.CA == nil || opts.Audit == nil {
		return nil, errors.New("sites: Store, CA and Audit are required")
	}
	if opts.CertTTL <= 0 {
		opts.CertTTL = DefaultCertTTL
	}
	if opts.ReenrolGrace <= 0 {
		opts.ReenrolGrace = DefaultReenrolGrace
	}
	if opts.MaxRevoked <= 0 {
		opts.MaxRevoked = DefaultMaxRevoked
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	s := &Server{opts: opts, log: opts.Logger.With("component", "sites"), revoked: map[string]revokedEntry{}, seen: map[string]map[string]time.Time{},
		cutoffs: map[string]time.Time{}}
	if err := s.reload(ctx, 0); err != nil {
		return nil, err
	}
	if _, err := s.PruneRevoked(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Handler serves RegisterPath. (Renewal is a method of the sync service,
// on the mTLS side of the listener: see distrib.RenewMethod.)
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+RegisterPath, s.serveRegister)
	return mux
}

func readJSON(r *http.Request, into any) *Error {
	b, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return errf(http.StatusBadRequest, "BadRequest", "reading request body: "+err.Error())
	}
	if len(b) > maxBody {
		return errf(http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", "request body larger than 64 KiB")
	}
	dec := json.NewDecoder(bytesReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(into); err != nil {
		return errf(http.StatusBadRequest, "BadRequest", "decoding request: "+err.Error())
	}
	return nil
}

func clientAddr(r *http.Request) string {
	if h, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return h
	}
	return r.RemoteAddr
}

func (s *Server) serveRegister(w http.ResponseWriter, r *http.Request) {
	var req RegisterRequest
	if e := readJSON(r, &req); e != nil {
		writeError(w, e)
		return
	}
	id, err := s.Register(r.Context(), req, clientAddr(r))
	if err != nil {
		writeError(w, asError(err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	json.NewEncoder(w).Encode(id)
}

func asError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return errf(http.StatusInternalServerError, "InternalError", err.Error())
}

func (s *Server) lockTenant(tenant string) func() {
	m, _ := s.tenantMu.LoadOrStore(tenant, &sync.Mutex{})
	mu := m.(*sync.Mutex)
	mu.Lock()
	return mu.Unlock
}

// SiteKey is the store key of a site object.
func SiteKey(tenant, name string) string { return apiserver.ObjectKey(tenant, "sites", "", name) }

// siteHistoryKey follows the apiserver's documented layout
// (/h/<tenant>/<plural>/<ns or _>/<name>/<generation %020d>).
func siteHistoryKey(tenant, name string, gen int64) string {
	return fmt.Sprintf("/h/%s/sites/_/%s/%020d", tenant, name, gen)
}

const siteTokenIndexPrefix = "/ts/"

type tokenIndex struct {
	Tenant string `json:"tenant"`
	Name   string `json:"name"`
}

// errBadToken is the one answer for every unusable token shape or hash, so
// that nothing is learnt about which tokens exist.
var errBadToken = errf(http.StatusUnauthorized, "Unauthorized", "invalid site token: it does not exist or was deleted")

// Register checks the token, creates the Site (labels from the token,
// pending unless the token auto-approves) together with the token's use
// count and an audit record in one transaction, and issues the node's
// client certificate.
func (s *Server) Register(ctx context.Context, req RegisterRequest, from string) (*Identity, error) {
	id, tenant, principal, err := s.register(ctx, req, from)
	if err != nil && s.opts.Denials != nil {
		e := asError(err)
		if tenant == "" {
			tenant = auth.SystemTenant
		}
		if principal == "" {
			principal = "anonymous"
		}
		s.opts.Denials.Add(audit.Denial{Tenant: tenant, Principal: principal, Verb: "register", Kind: "Site",
			Name: req.Name, ClientAddr: from, Code: e.Code, Reason: e.Message, Time: s.opts.Now().UTC()})
	}
	return id, err
}

func (s *Server) register(ctx context.Context, req RegisterRequest, from string) (_ *Identity, tenant, principal string, _ error) {
	if !v1.IsDNS1123Label(req.Name) {
		return nil, "", "", errf(http.StatusUnprocessableEntity, "Invalid", fmt.Sprintf("name: %q must be a DNS-1123 label (1-63 lower-case letters, digits and '-')", req.Name))
	}
	if _, _, err := auth.ParseToken(req.Token); err != nil {
		return nil, "", "", errBadToken
	}
	if req.CSR == "" {
		return nil, "", "", errf(http.StatusUnprocessableEntity, "Invalid", "csr: a PEM certificate request is required")
	}
	hash := auth.HashToken(req.Token)
	idxKV, err := s.opts.Store.Get(ctx, siteTokenIndexPrefix+hash)
	if errors.Is(err, store.ErrNotFound) {
		return nil, "", "", errBadToken
	}
	if err != nil {
		return nil, "", "", fmt.Errorf("looking up site token: %w", err)
	}
	var idx tokenIndex
	if err := json.Unmarshal(idxKV.Value, &idx); err != nil {
		return nil, "", "", fmt.Errorf("decoding site token index: %w", err)
	}
	tenant = idx.Tenant
	principal = tenant + "/SiteToken/" + idx.Name
	// Sign first (the cheap failure); the certificate is handed out only
	// when the transaction commits.
	spiffe := pki.SiteSPIFFEID(tenant, req.Name)
	ic, err := s.opts.CA.IssueClientCertFromCSR([]byte(req.CSR), spiffe, s.opts.CertTTL)
	if err != nil {
		return nil, tenant, principal, errf(http.StatusUnprocessableEntity, "Invalid", "csr: "+err.Error())
	}

	unlock := s.lockTenant(tenant)
	defer unlock()
	tokKey := apiserver.ObjectKey(tenant, "sitetokens", "", idx.Name)
	siteKey := SiteKey(tenant, req.Name)
	for attempt := 0; attempt < maxTxnAttempts; attempt++ {
		now := s.opts.Now().UTC()
		tokKV, err := s.opts.Store.Get(ctx, tokKey)
		if errors.Is(err, store.ErrNotFound) {
			return nil, tenant, principal, errBadToken
		}
		if err != nil {
			return nil, tenant, principal, fmt.Errorf("reading site token: %w", err)
		}
		var tok v1.SiteToken
		if err := json.Unmarshal(tokKV.Value, &tok); err != nil {
			return nil, tenant, principal, fmt.Errorf("decoding site token %q: %w", idx.Name, err)
		}
		if subtle.ConstantTimeCompare([]byte(tok.Status.TokenHash), []byte(hash)) != 1 {
			return nil, tenant, principal, errBadToken
		}
		switch {
		case tok.Spec.Revoked:
			return nil, tenant, principal, errf(http.StatusForbidden, "Forbidden", fmt.Sprintf("site token %q is revoked", idx.Name))
		case tok.Status.ExpiresAt != nil && !now.Before(*tok.Status.ExpiresAt):
			return nil, tenant, principal, errf(http.StatusForbidden, "Forbidden", fmt.Sprintf("site token %q expired at %s", idx.Name, tok.Status.ExpiresAt.Format(time.RFC3339)))
		case tok.Status.Uses >= tok.Spec.MaxUses:
			return nil, tenant, principal, errf(http.StatusForbidden, "Forbidden", fmt.Sprintf("site token %q is used up (%d of %d registrations)", idx.Name, tok.Status.Uses, tok.Spec.MaxUses))
		}
		if _, err := s.opts.Store.Get(ctx, siteKey); err == nil {
			return nil, tenant, principal, errSiteTaken(req.Name)
		} else if !errors.Is(err, store.ErrNotFound) {
			return nil, tenant, principal, fmt.Errorf("reading site %q: %w", req.Name, err)
		}
		tok.Status.Uses++
		tokVal, err := json.Marshal(&tok)
		if err != nil {
			return nil, tenant, principal, err
		}
		site := newSite(tenant, req, &tok, now)
		siteVal, err := json.Marshal(site)
		if err != nil {
			return nil, tenant, principal, err
		}
		after, err := s.opts.Audit.Digest(ctx, tenant, siteVal)
		if err != nil {
			return nil, tenant, principal, fmt.Errorf("digesting site %q: %w", req.Name, err)
		}
		ops, cmps, err := s.opts.Audit.Prepare(ctx, tenant, audit.Record{Time: now, Principal: principal, Verb: "register",
			Kind: "Site", Name: req.Name, ClientAddr: from, Outcome: audit.OutcomeAllowed, Code: http.StatusCreated,
			Reason: "registered with site token " + idx.Name + " (state " + site.Status.State + ")", AfterDigest: after})
		if err != nil {
			return nil, tenant, principal, fmt.Errorf("preparing audit record: %w", err)
		}
		txn := store.Txn{
			Compares: append([]store.Compare{
				{Key: siteTokenIndexPrefix + hash, ModRevision: idxKV.ModRevision},
				{Key: tokKey, ModRevision: tokKV.ModRevision},
				{Key: siteKey, ModRevision: 0},
			}, cmps...),
			Ops: append([]store.Op{
				store.Put(tokKey, tokVal),
				store.Put(siteKey, siteVal),
				store.Put(siteHistoryKey(tenant, req.Name, 1), siteVal),
			}, ops...),
		}
		_, err = s.opts.Store.Txn(ctx, txn)
		var ce *store.ConflictError
		switch {
		case err == nil:
			s.log.Info("site registered", "tenant", tenant, "site", req.Name, "token", idx.Name, "state", site.Status.State)
			return &Identity{Tenant: tenant, Site: req.Name, State: site.Status.State, Certificate: string(ic.CertPEM),
				CA: string(s.opts.CA.CACertPEM()), NotAfter: ic.Leaf.NotAfter}, tenant, principal, nil
		case errors.As(err, &ce) && ce.Key == siteKey:
			return nil, tenant, principal, errSiteTaken(req.Name)
		case errors.As(err, &ce) && ce.Key == siteTokenIndexPrefix+hash:
			return nil, tenant, principal, errBadToken
		case errors.As(err, &ce):
			// The token or the audit head moved (another console): retry.
			continue
		default:
			return nil, tenant, principal, fmt.Errorf("registering site %q: %w", req.Name, err)
		}
	}
	return nil, tenant, principal, errf(http.StatusTooManyRequests, "TooManyRequests", "too many concurrent registrations: retry")
}

func errSiteTaken(name string) *Error {
	return errf(http.StatusConflict, "AlreadyExists", fmt.Sprintf("site %q already exists: a registered site cannot be taken over (pick another name, or delete the site first)", name))
}

func newSite(tenant string, req RegisterRequest, tok *v1.SiteToken, now time.Time) *v1.Site {
	site := &v1.Site{}
	site.APIVersion = v1.APIVersion
	site.Kind = "Site"
	created := now.Truncate(time.Second)
	site.Metadata = v1.ObjectMeta{Name: req.Name, Tenant: tenant, UID: newUID(), Generation: 1, CreationTimestamp: &created}
	if len(tok.Spec.Labels) > 0 {
		site.Metadata.Labels = make(map[string]string, len(tok.Spec.Labels))
		for k, v := range tok.Spec.Labels {
			site.Metadata.Labels[k] = v
		}
	}
	site.Spec.Approved = tok.Spec.AutoApprove
	site.Status.ObservedGeneration = 1
	site.Status.State = site.Spec.StateOf()
	site.Status.NodeVersion = req.NodeVersion
	site.Status.CapabilityVersion = req.CapabilityVersion
	site.Status.SiteToken = tok.Metadata.Name
	return site
}

func newUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// Renew issues a new certificate for the site named by chain[0], which must
// chain to the console CA and be valid now (clock skew allowed) or have
// expired less than ReenrolGrace ago (a node back from a long time
// offline re-enrols this way without a new token). The site must still
// exist, not be decommissioned, be younger than the certificate, and the
// certificate must not be revoked.
func (s *Server) Renew(ctx context.Context, chain []*x509.Certificate, req RenewRequest, from string) (*Identity, error) {
	site, expired, err := s.check(ctx, chain, true)
	if err != nil {
		return nil, err
	}
	tenant, name := site.Metadata.Tenant, site.Metadata.Name
	ic, err := s.opts.CA.IssueClientCertFromCSR([]byte(req.CSR), pki.SiteSPIFFEID(tenant, name), s.opts.CertTTL)
	if err != nil {
		return nil, errf(http.StatusUnprocessableEntity, "Invalid", "csr: "+err.Error())
	}
	if expired {
		s.log.Info("site re-enrolled with an expired certificate", "tenant", tenant, "site", name, "from", from,
			"expiredAt", chain[0].NotAfter)
	}
	return &Identity{Tenant: tenant, Site: name, State: site.Spec.StateOf(), Certificate: string(ic.CertPEM),
		CA: string(s.opts.CA.CACertPEM()), NotAfter: ic.Leaf.NotAfter}, nil
}
