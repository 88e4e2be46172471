package apiserver

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/meridian-platform/meridian/internal/store"
)

// AuditEvent describes one write, login or token creation.
type AuditEvent struct {
	Time time.Time
	// Principal is "<tenant>/<User|APIToken>/<name>".
	Principal  string
	Verb       string
	Kind       string
	Namespace  string
	Name       string
	ClientAddr string
	// Before and After are the stored JSON of the object (secrets sealed),
	// nil when absent; the auditor keeps only keyed digests of them.
	Before, After []byte
	Note          string
}

// Denial is one refused request (authentication or authorization).
type Denial struct {
	Time       time.Time
	Principal  string
	Verb       string
	Kind       string
	Namespace  string
	ClientAddr string
	Reason     string
}

// AuditFilter selects audit records.
type AuditFilter struct {
	Principal, Verb, Kind, Namespace, Name string
	Since, Until                           time.Time
	Limit                                  int
}

// Auditor is the per-tenant hash-chained audit log.
type Auditor interface {
	// Prepare returns the writes and compares that append ev to the
	// tenant's chain inside the caller's transaction.
	Prepare(ctx context.Context, tenant string, ev AuditEvent) ([]store.Op, []store.Compare, error)
	// Deny records a refused request, aggregated per principal and minute.
	Deny(ctx context.Context, tenant string, d Denial) error
	// List returns records of the tenant matching f (JSON-encodable).
	List(ctx context.Context, tenant string, f AuditFilter) ([]any, error)
	// Verify checks the tenant's chain (JSON-encodable result).
	Verify(ctx context.Context, tenant string) (any, error)
}

// planAudit adds the audit record of p to its transaction.
func (s *Server) planAudit(ctx context.Context, p *writePlan) error {
	ev := AuditEvent{
		Time:      s.now().UTC(),
		Verb:      p.verb,
		Kind:      p.info.Kind,
		Namespace: p.ref.Namespace,
		Name:      p.ref.Name,
		Note:      p.note,
	}
	if p.rc != nil {
		ev.Principal = p.rc.Principal.String()
		ev.ClientAddr = p.rc.RemoteAddr
	}
	if !p.auditOnly {
		if p.old != nil {
			ev.Before = p.oldKV.Value
		}
		if p.obj != nil {
			b, err := json.Marshal(p.obj)
			if err != nil {
				return errInternal(err)
			}
			ev.After = b
		}
	}
	ops, cmps, err := s.opts.Audit.Prepare(ctx, p.tenant, ev)
	if err != nil {
		return errInternal(fmt.Errorf("preparing audit record: %w", err))
	}
	p.txn.Ops = append(p.txn.Ops, ops...)
	for _, c := range cmps {
		p.cmp(c.Key, c.ModRevision)
	}
	return nil
}

// noteDenial records a refused request; failures are logged, never
// returned (a denial must not turn into a 500).
func (s *Server) noteDenial(ctx context.Context, r *http.Request, rc *reqCtx, verb, kind, ns string, cause error) {
	d := Denial{Time: s.now().UTC(), Verb: verb, Kind: kind, Namespace: ns, ClientAddr: remoteAddr(r), Reason: cause.Error()}
	tenant := SystemTenant
	if rc != nil {
		tenant = rc.Tenant
		d.Principal = rc.Principal.String()
	} else {
		d.Principal = "anonymous"
	}
	if verb == "" {
		d.Verb = r.Method
	}
	if err := s.opts.Audit.Deny(context.WithoutCancel(ctx), tenant, d); err != nil {
		s.log.Warn("apiserver: recording denial", "tenant", tenant, "err", err)
	}
}

// handleAuditList answers GET /api/v1/auditrecords.
func (s *Server) handleAuditList(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	if r.Method != http.MethodGet {
		return errMethod(r.Method, r.URL.Path)
	}
	if err := s.authorize(r.Context(), r, rc, "list", "AuditRecord", r.URL.Query().Get("namespace")); err != nil {
		return err
	}
	q := r.URL.Query()
	f := AuditFilter{Principal: q.Get("principal"), Verb: q.Get("verb"), Kind: q.Get("kind"), Namespace: q.Get("namespace"), Name: q.Get("name")}
	var err error
	if f.Limit, err = parseLimit(q.Get("limit")); err != nil {
		return err
	}
	for _, tp := range []struct {
		name string
		dst  *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if v := q.Get(tp.name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return errBadRequest("invalid %s %q: use RFC 3339 (2006-01-02T15:04:05Z)", tp.name, v)
			}
			*tp.dst = t
		}
	}
	items, err := s.opts.Audit.List(r.Context(), rc.Tenant, f)
	if err != nil {
		return errInternal(fmt.Errorf("listing audit records: %w", err))
	}
	if items == nil {
		items = []any{}
	}
	rev, _ := s.st.Revision(r.Context())
	writeJSON(w, http.StatusOK, List{APIVersion: "meridian/v1", Kind: "AuditRecordList", Items: items,
		Metadata: ListMeta{ResourceVersion: strconv.FormatInt(rev, 10)}})
	return nil
}

// handleAuditVerify answers POST /api/v1/audit/verify.
func (s *Server) handleAuditVerify(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	if r.Method != http.MethodPost {
		return errMethod(r.Method, r.URL.Path)
	}
	if err := s.authorize(r.Context(), r, rc, "list", "AuditRecord", ""); err != nil {
		return err
	}
	res, err := s.opts.Audit.Verify(r.Context(), rc.Tenant)
	if err != nil {
		return errInternal(fmt.Errorf("verifying audit chain: %w", err))
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}
