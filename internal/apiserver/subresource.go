package apiserver

import (
	"context"
	"net/http"
	"net/url"
	"sync"

	v1 "github.com/meridian-platform/meridian/api/v1"
)

// SubresourceRequest is a GET of a read-only subresource of one object
// (GET .../<plural>/<name>/<sub>).
type SubresourceRequest struct {
	// Tenant is the tenant the request acts in.
	Tenant string
	// Object is the object, as a get would answer it (secrets redacted).
	Object v1.Object
	Query  url.Values
}

// SubresourceFunc answers a subresource GET with a JSON-encodable value.
type SubresourceFunc func(ctx context.Context, req SubresourceRequest) (any, error)

// subresources are the read-only subresources other console parts serve
// (kind + "/" + sub -> func).
type subresources struct{ m sync.Map }

func (s *subresources) lookup(kind, sub string) SubresourceFunc {
	if f, ok := s.m.Load(kind + "/" + sub); ok {
		return f.(SubresourceFunc)
	}
	return nil
}

// HandleSubresource serves GET .../<plural>/<name>/<sub> for objects of
// kind with fn (e.g. Site "telemetry", HTTPLoadBalancer "metrics"): the
// caller must be allowed "get" on the kind (in the object's namespace) and
// the object must exist; fn's error is answered like any API error.
func (s *Server) HandleSubresource(kind, sub string, fn SubresourceFunc) {
	s.subs.m.Store(kind+"/"+sub, fn)
}

func (s *Server) serveSubresource(ctx context.Context, w http.ResponseWriter, r *http.Request, tenant string, t target, ref objRef) error {
	fn := s.subs.lookup(t.info.Kind, t.sub)
	obj, _, err := s.getObject(ctx, tenant, t.info, ref)
	if err != nil {
		return err
	}
	out, err := fn(ctx, SubresourceRequest{Tenant: tenant, Object: obj, Query: r.URL.Query()})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
