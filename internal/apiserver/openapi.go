package apiserver

import (
	"fmt"
	"net/http"

	v1 "github.com/meridian-platform/meridian/api/v1"
)

// handleOpenAPI serves the OpenAPI document, generated once.
func (s *Server) handleOpenAPI(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet {
		return errMethod(r.Method, r.URL.Path)
	}
	if s.opts.OpenAPI == nil {
		return newErr(http.StatusNotFound, v1.StatusReasonNotFound, "this server does not serve an OpenAPI document")
	}
	s.openapi.once.Do(func() { s.openapi.doc, s.openapi.err = s.opts.OpenAPI() })
	if s.openapi.err != nil {
		return errInternal(fmt.Errorf("generating OpenAPI document: %w", s.openapi.err))
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(s.openapi.doc)
	return nil
}
