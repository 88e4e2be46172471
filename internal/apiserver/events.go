package apiserver

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/internal/auth"
	"github.com/meridian-platform/meridian/internal/secevents"
)

// SecurityEventLister lists a tenant's security events, newest first (the
// console's event store).
type SecurityEventLister interface {
	List(ctx context.Context, tenant string, f secevents.Filter) ([]secevents.Record, error)
}

// SetSecurityEvents serves GET /api/v1/securityevents and
// /api/v1/namespaces/{ns}/securityevents from l. Call it before serving.
func (s *Server) SetSecurityEvents(l SecurityEventLister) { s.events = l }

// eventTypes are the values of the type filter.
var eventTypes = []string{secevents.KindWAF, secevents.KindPolicy, secevents.KindRateLimit, secevents.KindAuthn, secevents.KindNetwork}

// securityEventsPath reports whether rest names the security events of a
// namespace ("namespaces/NS/securityevents"; those of every namespace are a
// fixed route).
func securityEventsPath(rest string) (ns string, ok bool) {
	segs := strings.Split(rest, "/")
	if len(segs) == 3 && segs[0] == "namespaces" && segs[2] == "securityevents" {
		return segs[1], true
	}
	return "", false
}

// handleSecurityEvents answers a list of security events: in one namespace
// (RBAC list SecurityEvent there) or across the namespaces the caller may
// read them in.
func (s *Server) handleSecurityEvents(w http.ResponseWriter, r *http.Request, rc *reqCtx, ns string) error {
	if r.Method != http.MethodGet {
		return errMethod(r.Method, r.URL.Path)
	}
	if s.events == nil {
		return newErr(http.StatusNotFound, v1.StatusReasonNotFound, "this server keeps no security events")
	}
	var f secevents.Filter
	if ns != "" {
		if err := checkURLName("namespace", ns); err != nil {
			return err
		}
		if err := s.authorize(r.Context(), r, rc, v1.VerbList, auth.KindSecurityEvent, ns); err != nil {
			return err
		}
		f.Namespaces = map[string]bool{ns: true}
	} else {
		nss, err := s.authorizeAcross(r.Context(), r, rc, v1.VerbList, auth.KindSecurityEvent)
		if err != nil {
			return err
		}
		f.Namespaces = nss
	}
	if err := parseEventFilter(r, s.now(), &f); err != nil {
		return err
	}
	recs, err := s.events.List(r.Context(), rc.Tenant, f)
	if err != nil {
		return errInternal(err)
	}
	out := List{APIVersion: v1.APIVersion, Kind: "SecurityEventList", Items: make([]any, 0, len(recs))}
	for _, rec := range recs {
		out.Items = append(out.Items, rec)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// parseEventFilter reads the query parameters loadBalancer, site, rule,
// type, since, until (RFC 3339 or a duration before now, e.g. 1h) and
// limit.
func parseEventFilter(r *http.Request, now time.Time, f *secevents.Filter) error {
	q := r.URL.Query()
	f.LoadBalancer, f.Site, f.Rule, f.Type = q.Get("loadBalancer"), q.Get("site"), q.Get("rule"), q.Get("type")
	if f.LoadBalancer != "" {
		ns, name, namespaced := strings.Cut(f.LoadBalancer, "/")
		if !namespaced {
			ns, name = "default", ns
		}
		if !isDNSLabel(ns) || !isDNSLabel(name) {
			return errBadRequest("invalid loadBalancer %q: use NAME or NAMESPACE/NAME", f.LoadBalancer)
		}
	}
	if f.Site != "" && !isDNSLabel(f.Site) {
		return errBadRequest("invalid site %q: must be a DNS-1123 label", f.Site)
	}
	if len(f.Rule) > 128 {
		return errBadRequest("invalid rule: at most 128 characters")
	}
	if f.Type != "" && !slices.Contains(eventTypes, f.Type) {
		return errBadRequest("invalid type %q: use one of %s", f.Type, strings.Join(eventTypes, ", "))
	}
	for _, tp := range []struct {
		name string
		dst  *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		v := q.Get(tp.name)
		if v == "" {
			continue
		}
		t, err := parseTimeOrAgo(v, now)
		if err != nil {
			return errBadRequest("invalid %s %q: %v", tp.name, v, err)
		}
		*tp.dst = t
	}
	var err error
	if f.Limit, err = parseLimit(q.Get("limit")); err != nil {
		return err
	}
	return nil
}

// parseTimeOrAgo reads an RFC 3339 time or a positive duration meaning that
// long before now ("1h", "15m").
func parseTimeOrAgo(v string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return time.Time{}, errors.New("use RFC 3339 (2006-01-02T15:04:05Z) or a duration such as 1h or 15m")
	}
	return now.Add(-d), nil
}
