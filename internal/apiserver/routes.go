package apiserver

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"

	v1 "github.com/meridian-platform/meridian/api/v1"
)

// Route is one method and URL path the server answers. Path is written as
// in the OpenAPI document: variable segments are {namespace} and {name}.
type Route struct {
	Method string
	Path   string
}

// fixedRoute is an authenticated route with a fixed path under /api/v1/.
type fixedRoute struct {
	methods []string
	serve   func(s *Server, w http.ResponseWriter, r *http.Request, rc *reqCtx) error
}

// fixedRoutes is the table route dispatches fixed paths with (path after
// /api/v1/ -> route).
func fixedRoutes() map[string]fixedRoute {
	get, post := []string{http.MethodGet}, []string{http.MethodPost}
	return map[string]fixedRoute{
		"whoami":           {get, (*Server).handleWhoami},
		"accessreviews":    {post, (*Server).handleAccessReview},
		"auditrecords":     {get, (*Server).handleAuditList},
		"audit/verify":     {post, (*Server).handleAuditVerify},
		"system/rotatekey": {post, (*Server).handleRotateKey},
		"openapi.json": {get, func(s *Server, w http.ResponseWriter, r *http.Request, _ *reqCtx) error {
			return s.handleOpenAPI(w, r)
		}},
		"securityevents": {get, func(s *Server, w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
			return s.handleSecurityEvents(w, r, rc, "")
		}},
	}
}

// Paths served before authentication.
const (
	healthzPath = "/healthz"
	loginPath   = "login" // under /api/v1/
)

// Routes lists every method and path the server answers: the fixed
// routes, login and /healthz, each kind's collection, object, history and
// rollback paths, and the subresources mounted so far with
// HandleSubresource. The list is sorted by path, then method.
func (s *Server) Routes() []Route {
	var out []Route
	add := func(path string, methods ...string) {
		for _, m := range methods {
			out = append(out, Route{Method: m, Path: path})
		}
	}
	add(healthzPath, http.MethodGet, http.MethodHead)
	add("/api/v1/"+loginPath, http.MethodPost)
	for path, fr := range s.fixed {
		add("/api/v1/"+path, fr.methods...)
	}
	add("/api/v1/namespaces/{namespace}/securityevents", http.MethodGet)
	subs := map[string][]string{}
	s.subs.m.Range(func(k, _ any) bool {
		kind, sub, _ := strings.Cut(k.(string), "/")
		subs[kind] = append(subs[kind], sub)
		return true
	})
	for _, ki := range s.kinds {
		coll := "/api/v1/" + ki.Plural
		if ki.Scope == v1.ScopeNamespaced {
			add(coll, http.MethodGet)
			coll = "/api/v1/namespaces/{namespace}/" + ki.Plural
		}
		add(coll, http.MethodGet, http.MethodPost)
		item := coll + "/{name}"
		add(item, http.MethodGet, http.MethodPut, http.MethodPatch, http.MethodDelete)
		add(item+"/history", http.MethodGet)
		add(item+"/rollback", http.MethodPost)
		for _, sub := range subs[ki.Kind] {
			add(item+"/"+sub, http.MethodGet)
		}
	}
	sortRoutes(out)
	return out
}

func sortRoutes(rs []Route) {
	sort.Slice(rs, func(i, j int) bool {
		if rs[i].Path != rs[j].Path {
			return rs[i].Path < rs[j].Path
		}
		return rs[i].Method < rs[j].Method
	})
}

// routeFixed serves rest when it is a fixed route.
func (s *Server) routeFixed(w http.ResponseWriter, r *http.Request, rc *reqCtx, rest string) (bool, error) {
	fr, ok := s.fixed[rest]
	if !ok {
		return false, nil
	}
	if !slices.Contains(fr.methods, r.Method) {
		return true, errMethod(r.Method, r.URL.Path)
	}
	return true, fr.serve(s, w, r, rc)
}

// CompareRoutes reads an OpenAPI document (JSON) and reports the routes it
// does not describe (missing) and the operations it describes that are not
// among routes (extra).
func CompareRoutes(doc []byte, routes []Route) (missing, extra []Route, err error) {
	var d struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(doc, &d); err != nil {
		return nil, nil, fmt.Errorf("reading OpenAPI document: %w", err)
	}
	served := map[Route]bool{}
	for _, r := range routes {
		served[r] = true
		if _, ok := d.Paths[r.Path][strings.ToLower(r.Method)]; !ok {
			missing = append(missing, r)
		}
	}
	for path, item := range d.Paths {
		for key := range item {
			m := strings.ToUpper(key)
			if !slices.Contains(operationMethods(), m) {
				continue // parameters, summary, ...
			}
			if r := (Route{Method: m, Path: path}); !served[r] {
				extra = append(extra, r)
			}
		}
	}
	sortRoutes(extra)
	return missing, extra, nil
}

// operationMethods are the methods an OpenAPI path item may describe.
func operationMethods() []string {
	return []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
		http.MethodPatch, http.MethodDelete, http.MethodOptions, http.MethodTrace}
}
