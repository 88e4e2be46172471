package apiserver

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/internal/audit"
	"github.com/meridian-platform/meridian/internal/store"
)

// AuditLog is the per-tenant hash-chained audit log (*audit.Log).
type AuditLog interface {
	// Digest is the keyed digest of an object's stored bytes.
	Digest(ctx context.Context, tenant string, data []byte) (string, error)
	// PrepareBatch returns the writes and compares that append recs, in
	// order, to the tenant's chain inside the caller's transaction.
	PrepareBatch(ctx context.Context, tenant string, recs []audit.Record) ([]store.Op, []store.Compare, []audit.Record, error)
	// IsHeadConflict reports whether a transaction failed on the tenant's
	// chain head (another writer appended first: prepare again).
	IsHeadConflict(err error, tenant string) bool
	List(ctx context.Context, tenant string, f audit.Filter) (audit.ListResult, error)
	Verify(ctx context.Context, tenant string, anchors ...audit.Checkpoint) (audit.Report, error)
}

// DenialRecorder aggregates denied requests per principal and minute
// (*audit.Denials; whoever owns it runs its Flush loop).
type DenialRecorder interface {
	Add(d audit.Denial)
}

// auditRecord builds the audit record of p (the committer chains it and
// stamps its time). The digests are of the bytes actually stored, so that
// the after-digest of one record equals the before-digest of the next
// record of the same object.
func (s *Server) auditRecord(ctx context.Context, p *writePlan) (audit.Record, error) {
	rec := audit.Record{
		Verb:      p.verb,
		Kind:      p.info.Kind,
		Namespace: p.ref.Namespace,
		Name:      p.ref.Name,
		Outcome:   audit.OutcomeAllowed,
		Reason:    p.note,
	}
	switch {
	case p.verb == "create":
		rec.Code = http.StatusCreated
	default:
		rec.Code = http.StatusOK
	}
	if p.rc != nil {
		rec.Principal = p.rc.Principal.String()
		rec.ClientAddr = p.rc.RemoteAddr
	}
	if !p.auditOnly {
		var err error
		if p.old != nil && p.oldKV.Value != nil {
			if rec.BeforeDigest, err = s.opts.Audit.Digest(ctx, p.tenant, p.oldKV.Value); err != nil {
				return audit.Record{}, errInternal(fmt.Errorf("digesting %s %q: %w", p.info.Kind, p.ref.Name, err))
			}
		}
		if p.obj != nil {
			if p.stored == nil {
				return audit.Record{}, errInternal(fmt.Errorf("auditing %s %q: the stored form of the object is unknown", p.info.Kind, p.ref.Name))
			}
			if rec.AfterDigest, err = s.opts.Audit.Digest(ctx, p.tenant, p.stored); err != nil {
				return audit.Record{}, errInternal(fmt.Errorf("digesting %s %q: %w", p.info.Kind, p.ref.Name, err))
			}
		}
	}
	return rec, nil
}

// noteDenial records a refused request with the denial aggregator.
// Requests whose tenant is not known (bad tokens) go to the system tenant,
// so that no tenant name is confirmed.
func (s *Server) noteDenial(_ context.Context, r *http.Request, rc *reqCtx, verb, kind, ns string, cause error) {
	if s.opts.Denials == nil {
		return
	}
	ae := toAPIError(cause)
	d := audit.Denial{Tenant: SystemTenant, Principal: "anonymous", Verb: verb, Kind: kind, Namespace: ns,
		ClientAddr: remoteAddr(r), Code: ae.code, Reason: ae.message, Time: s.now().UTC()}
	if rc != nil {
		d.Tenant = rc.Tenant
		d.Principal = rc.Principal.String()
	}
	if d.Verb == "" {
		d.Verb = r.Method
	}
	s.opts.Denials.Add(d)
}

// handleAuditList answers GET /api/v1/auditrecords.
func (s *Server) handleAuditList(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	if r.Method != http.MethodGet {
		return errMethod(r.Method, r.URL.Path)
	}
	q := r.URL.Query()
	if err := s.authorize(r.Context(), r, rc, "list", "AuditRecord", q.Get("namespace")); err != nil {
		return err
	}
	f := audit.Filter{Principal: q.Get("principal"), Verb: q.Get("verb"), Kind: q.Get("kind"), Namespace: q.Get("namespace"),
		Name: q.Get("name"), Outcome: audit.Outcome(q.Get("outcome"))}
	var err error
	if f.Limit, err = parseLimit(q.Get("limit")); err != nil {
		return err
	}
	if c := q.Get("continue"); c != "" {
		if f.After, err = strconv.ParseUint(c, 10, 64); err != nil {
			return errBadRequest("invalid continue token")
		}
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
	res, err := s.opts.Audit.List(r.Context(), rc.Tenant, f)
	if err != nil {
		return errInternal(fmt.Errorf("listing audit records: %w", err))
	}
	out := List{APIVersion: v1.APIVersion, Kind: "AuditRecordList", Items: make([]any, 0, len(res.Items))}
	for _, rec := range res.Items {
		out.Items = append(out.Items, rec)
	}
	if res.More {
		out.Metadata.Continue = strconv.FormatUint(res.Next, 10)
	}
	rev, err := s.st.Revision(r.Context())
	if err != nil {
		return errInternal(err)
	}
	out.Metadata.ResourceVersion = strconv.FormatInt(rev, 10)
	writeJSON(w, http.StatusOK, out)
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
	rep, err := s.opts.Audit.Verify(r.Context(), rc.Tenant)
	if err != nil {
		return errInternal(fmt.Errorf("verifying audit chain: %w", err))
	}
	writeJSON(w, http.StatusOK, rep)
	return nil
}
