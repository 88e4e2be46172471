package sites

import (
	"context"
	"crypto/rand"
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
		return errf(http.StatusBadRequest, v1.StatusReasonBadRequest, "reading request body: "+err.Error())
	}
	if len(b) > maxBody {
		return errf(http.StatusRequestEntityTooLarge, v1.StatusReasonRequestEntityTooLarge, "request body larger than 64 KiB")
	}
	dec := json.NewDecoder(bytesReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(into); err != nil {
		return errf(http.StatusBadRequest, v1.StatusReasonBadRequest, "decoding request: "+err.Error())
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
	return errf(http.StatusInternalServerError, v1.StatusReasonInternalError, err.Error())
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
var errBadToken = errf(http.StatusUnauthorized, v1.StatusReasonUnauthorized, "invalid site token: it does not exist or was deleted")

// Register checks the token, counts its use and creates the Site (labels
// from the token, pending unless the token auto-approves) with an audit
// record, each object write at its own revision (see register.go), and
// issues the node's client certificate.
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
		return nil, "", "", errf(http.StatusUnprocessableEntity, v1.StatusReasonInvalid, fmt.Sprintf("name: %q must be a DNS-1123 label (1-63 lower-case letters, digits and '-')", req.Name))
	}
	if _, _, err := auth.ParseToken(req.Token); err != nil {
		return nil, "", "", errBadToken
	}
	if req.CSR == "" {
		return nil, "", "", errf(http.StatusUnprocessableEntity, v1.StatusReasonInvalid, "csr: a PEM certificate request is required")
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
		return nil, tenant, principal, errf(http.StatusUnprocessableEntity, v1.StatusReasonInvalid, "csr: "+err.Error())
	}

	unlock := s.lockTenant(tenant)
	defer unlock()
	r := &registration{tenant: tenant, principal: principal, token: idx.Name, hash: hash, name: req.Name, from: from,
		idxKey: siteTokenIndexPrefix + hash, idxRev: idxKV.ModRevision,
		tokKey: apiserver.ObjectKey(tenant, "sitetokens", "", idx.Name), siteKey: SiteKey(tenant, req.Name),
		claimKey: siteClaimKey(tenant, req.Name)}
	_, batched := store.AsBatcher(s.opts.Store)
	for attempt := 0; attempt < maxTxnAttempts; attempt++ {
		var site *v1.Site
		var err error
		if batched {
			site, err = s.registerBatched(ctx, r, req)
		} else {
			site, err = s.registerClaimed(ctx, r, req)
		}
		switch {
		case err == nil:
			s.log.Info("site registered", "tenant", tenant, "site", req.Name, "token", idx.Name, "state", site.Status.State)
			return &Identity{Tenant: tenant, Site: req.Name, State: site.Status.State, Certificate: string(ic.CertPEM),
				CA: string(s.opts.CA.CACertPEM()), NotAfter: ic.Leaf.NotAfter}, tenant, principal, nil
		case errors.Is(err, errRetryRegistration):
			continue
		default:
			return nil, tenant, principal, err
		}
	}
	return nil, tenant, principal, errf(http.StatusTooManyRequests, v1.StatusReasonTooManyRequests, "too many concurrent registrations: retry")
}

func errSiteTaken(name string) *Error {
	return errf(http.StatusConflict, v1.StatusReasonAlreadyExists, fmt.Sprintf("site %q already exists: a registered site cannot be taken over (pick another name, or delete the site first)", name))
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
		return nil, errf(http.StatusUnprocessableEntity, v1.StatusReasonInvalid, "csr: "+err.Error())
	}
	if expired {
		s.log.Info("site re-enrolled with an expired certificate", "tenant", tenant, "site", name, "from", from,
			"expiredAt", chain[0].NotAfter)
	}
	return &Identity{Tenant: tenant, Site: name, State: site.Spec.StateOf(), Certificate: string(ic.CertPEM),
		CA: string(s.opts.CA.CACertPEM()), NotAfter: ic.Leaf.NotAfter}, nil
}
