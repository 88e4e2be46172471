package openapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strconv"
	"strings"

	v1 "github.com/meridian-platform/meridian/api/v1"
)

// Generate returns the OpenAPI 3.1 document (JSON) of the REST API served
// under /api/v1: every kind's schema, generated from the Go types, and its
// paths for its scope, plus login, whoami, access reviews, audit, history
// and rollback. The output is deterministic.
func Generate() ([]byte, error) {
	docs, err := parseDocs(v1.Sources())
	if err != nil {
		return nil, fmt.Errorf("reading api/v1 doc comments: %w", err)
	}
	s := newSchemas(docs)
	paths := map[string]any{}
	for _, ki := range v1.Kinds() {
		if err := addKind(s, paths, ki); err != nil {
			return nil, fmt.Errorf("describing kind %s: %w", ki.Kind, err)
		}
	}
	markConsoleFields(s)
	addFixedSchemas(s)
	addAuditSchemas(s)
	addFixedPaths(paths)
	addSubresources(s, paths)
	addSecurityEvents(s, paths)
	doc := map[string]any{
		"openapi": "3.1.0",
		"info": map[string]any{
			"title":       "Meridian API",
			"version":     v1.APIVersion,
			"description": "The REST API of the Meridian console. Kubernetes conventions: list/get/create/update/merge-patch/delete per kind, label selectors, resourceVersion optimistic concurrency, dry runs and watches.",
		},
		"jsonSchemaDialect": "https://spec.openapis.org/oas/3.1/dialect/base",
		"security":          []any{map[string]any{"bearerAuth": []any{}}},
		"paths":             paths,
		"components": map[string]any{
			"schemas":    s.defs,
			"parameters": parameters(),
			"responses":  errorResponses(),
			"securitySchemes": map[string]any{
				"bearerAuth": map[string]any{"type": "http", "scheme": "bearer",
					"description": "An API token or a session token from POST /api/v1/login."},
			},
		},
	}
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding OpenAPI document: %w", err)
	}
	return append(out, '\n'), nil
}

func addKind(s *schemas, paths map[string]any, ki v1.KindInfo) error {
	t := reflect.TypeOf(ki.New())
	if t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("New returns %s, not a pointer to a struct", t)
	}
	r := s.schemaOf(t.Elem())
	if r["$ref"] != "#/components/schemas/"+ki.Kind {
		return fmt.Errorf("type %s does not have the kind's name", t.Elem())
	}
	def := s.defs[ki.Kind].(map[string]any)
	props := def["properties"].(map[string]any)
	props["apiVersion"] = map[string]any{"type": "string", "const": v1.APIVersion}
	props["kind"] = map[string]any{"type": "string", "const": ki.Kind}
	if st, ok := props["status"].(map[string]any); ok {
		props["status"] = map[string]any{"allOf": []any{st}, "readOnly": true,
			"description": "Written by the console only; ignored on input."}
	}
	desc := fmt.Sprintf("Scope: %s. Short names: %s.", scopeName(ki.Scope), shortNames(ki))
	if doc, ok := def["description"].(string); ok {
		desc = doc + " " + desc
	}
	def["description"] = desc
	def["x-meridian-scope"] = scopeName(ki.Scope)
	listName := ki.Kind + "List"
	s.defs[listName] = listSchema(listName, ref(ki.Kind))

	if ki.Scope == v1.ScopeNamespaced {
		paths["/api/v1/"+ki.Plural] = map[string]any{
			"parameters": []any{paramRef("tenant")},
			"get":        listOp(ki, "list"+ki.Kind+"ForAllNamespaces", "List or watch "+ki.Plural+" in every namespace."),
		}
	}
	kp := pathsOf(ki)
	collection, scopeParams, item, itemParams, prefix := kp.collection, kp.scopeParams, kp.item, kp.itemParams, kp.prefix
	coll := map[string]any{
		"get": listOp(ki, "list"+prefix+ki.Kind, "List or watch "+ki.Plural+"."),
		"post": op(ki.Kind, "create"+prefix+ki.Kind, "Create a "+ki.Kind+".", []any{paramRef("dryRun")},
			body(ki.Kind, "application/json", "application/yaml"), map[string]any{
				"201": objectResponse(ki.Kind, "Created (or validated, with dryRun)."),
				"409": errRef("Conflict"), "422": errRef("Invalid"),
			}),
	}
	coll["parameters"] = scopeParams
	paths[collection] = coll
	deleteParams := []any{paramRef("dryRun")}
	if ki.Kind == "Namespace" {
		deleteParams = append(deleteParams, paramRef("cascade"))
	}
	paths[item] = map[string]any{
		"parameters": itemParams,
		"get": op(ki.Kind, "read"+prefix+ki.Kind, "Read a "+ki.Kind+".", nil, nil,
			map[string]any{"200": objectResponse(ki.Kind, "The object.")}),
		"put": op(ki.Kind, "replace"+prefix+ki.Kind, "Replace a "+ki.Kind+" (or create it). metadata.resourceVersion, when given, must match.",
			[]any{paramRef("dryRun")}, body(ki.Kind, "application/json", "application/yaml"), map[string]any{
				"200": objectResponse(ki.Kind, "Updated (or validated, with dryRun)."),
				"409": errRef("Conflict"), "422": errRef("Invalid"),
			}),
		"patch": op(ki.Kind, "patch"+prefix+ki.Kind, "Change a "+ki.Kind+" with a JSON merge patch (RFC 7386).",
			[]any{paramRef("dryRun")}, map[string]any{
				"required": true,
				"content": map[string]any{"application/merge-patch+json": map[string]any{
					"schema": map[string]any{"type": "object", "description": "A JSON merge patch of " + ki.Kind + "."}}},
			}, map[string]any{
				"200": objectResponse(ki.Kind, "Patched."), "409": errRef("Conflict"), "422": errRef("Invalid"),
			}),
		"delete": op(ki.Kind, "delete"+prefix+ki.Kind, "Delete a "+ki.Kind+". Refused while other objects refer to it.",
			deleteParams, nil, map[string]any{
				"200": objectResponse(ki.Kind, "Deleted (or would be, with dryRun)."), "409": errRef("Conflict"),
			}),
	}
	paths[item+"/history"] = map[string]any{
		"parameters": itemParams,
		"get": op(ki.Kind, "history"+prefix+ki.Kind, "List the kept previous generations of a "+ki.Kind+".", nil, nil,
			map[string]any{"200": objectResponse(listName, "Previous generations, newest first.")}),
	}
	paths[item+"/rollback"] = map[string]any{
		"parameters": itemParams,
		"post": op(ki.Kind, "rollback"+prefix+ki.Kind, "Apply the spec of a kept generation as a new generation.",
			[]any{paramRef("dryRun")}, body("RollbackRequest", "application/json"), map[string]any{
				"200": objectResponse(ki.Kind, "The updated object."), "409": errRef("Conflict"), "422": errRef("Invalid"),
			}),
	}
	return nil
}

// listSchema is the schema of a list answer named kind whose items have
// the schema items.
func listSchema(kind string, items map[string]any) map[string]any {
	return map[string]any{
		"type": "object",
		"properties": map[string]any{
			"apiVersion": map[string]any{"type": "string", "const": v1.APIVersion},
			"kind":       map[string]any{"type": "string", "const": kind},
			"metadata":   ref("ListMeta"),
			"items":      map[string]any{"type": "array", "items": items},
		},
		"required": []string{"apiVersion", "kind", "metadata", "items"},
	}
}

// kindPaths are the URL templates of a kind and their parameters.
type kindPaths struct {
	collection  string // /api/v1/[namespaces/{namespace}/]plural
	scopeParams []any
	item        string // collection + "/{name}"
	itemParams  []any
	prefix      string // "Namespaced" in operation ids of namespaced kinds
}

func pathsOf(ki v1.KindInfo) kindPaths {
	p := kindPaths{collection: "/api/v1/" + ki.Plural, scopeParams: []any{paramRef("tenant")}}
	if ki.Scope == v1.ScopeNamespaced {
		p.collection = "/api/v1/namespaces/{namespace}/" + ki.Plural
		p.scopeParams = append(p.scopeParams, paramRef("namespace"))
		p.prefix = "Namespaced"
	}
	p.item = p.collection + "/{name}"
	p.itemParams = append(append([]any{}, p.scopeParams...), paramRef("name"))
	return p
}

func scopeName(s v1.Scope) string {
	switch s {
	case v1.ScopeNamespaced:
		return "namespaced"
	case v1.ScopeTenant:
		return "tenant"
	case v1.ScopeSystem:
		return "system"
	}
	return "unknown"
}

func shortNames(ki v1.KindInfo) string {
	if len(ki.ShortNames) == 0 {
		return "none"
	}
	return strings.Join(ki.ShortNames, ", ")
}

func paramRef(name string) map[string]any {
	return map[string]any{"$ref": "#/components/parameters/" + name}
}

func errRef(name string) map[string]any {
	return map[string]any{"$ref": "#/components/responses/" + name}
}

func body(schema string, types ...string) map[string]any {
	content := map[string]any{}
	for _, t := range types {
		content[t] = map[string]any{"schema": ref(schema)}
	}
	return map[string]any{"required": true, "content": content}
}

func objectResponse(schema, desc string) map[string]any {
	return map[string]any{"description": desc,
		"content": map[string]any{"application/json": map[string]any{"schema": ref(schema)}}}
}

// op builds an operation; every operation may also answer the common
// errors.
func op(tag, id, summary string, params []any, reqBody map[string]any, responses map[string]any) map[string]any {
	for _, code := range []string{"400", "401", "403", "404", "413", "415", "429", "500"} {
		if _, ok := responses[code]; !ok {
			responses[code] = errRef(errorNames()[code])
		}
	}
	o := map[string]any{"tags": []any{tag}, "operationId": id, "summary": summary, "responses": responses}
	if len(params) > 0 {
		o["parameters"] = params
	}
	if reqBody != nil {
		o["requestBody"] = reqBody
	}
	return o
}

func listOp(ki v1.KindInfo, id, summary string) map[string]any {
	return op(ki.Kind, id, summary+" With watch=true the answer is a stream of newline-delimited JSON watch events.",
		[]any{paramRef("labelSelector"), paramRef("limit"), paramRef("continue"), paramRef("watch"), paramRef("resourceVersion")},
		nil, map[string]any{
			"200": map[string]any{"description": "A page of the list, read at one revision; or a watch stream.",
				"content": map[string]any{
					"application/json":     map[string]any{"schema": ref(ki.Kind + "List")},
					"application/x-ndjson": map[string]any{"schema": ref("WatchEvent")},
				}},
			"410": errRef("Gone"),
		})
}

func parameters() map[string]any {
	q := func(name, desc string, schema map[string]any) map[string]any {
		return map[string]any{"name": name, "in": "query", "required": false, "description": desc, "schema": schema}
	}
	str := map[string]any{"type": "string"}
	boolean := map[string]any{"type": "boolean"}
	return map[string]any{
		"namespace": map[string]any{"name": "namespace", "in": "path", "required": true, "description": "The namespace.",
			"schema": map[string]any{"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "maxLength": 63}},
		"name": map[string]any{"name": "name", "in": "path", "required": true, "description": "The object's name.",
			"schema": map[string]any{"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "maxLength": 63}},
		"limit":           q("limit", "Maximum number of items in one page.", map[string]any{"type": "integer", "minimum": 1}),
		"continue":        q("continue", "The continue token of the previous page.", str),
		"labelSelector":   q("labelSelector", "A label selector: key=value, key!=value, key in (a,b), key notin (a,b), key, !key; comma-separated.", str),
		"watch":           q("watch", "Stream changes as newline-delimited JSON events.", boolean),
		"resourceVersion": q("resourceVersion", "For watch: stream changes after this revision (exclusive).", str),
		"dryRun":          q("dryRun", "Validate and answer without storing (All or true).", map[string]any{"type": "string", "enum": []any{"All", "true"}}),
		"cascade":         q("cascade", "Delete a namespace with everything in it.", boolean),
		"tenant": map[string]any{"name": "X-Meridian-Tenant", "in": "header", "required": false,
			"description": "Act inside this tenant (admins of the system tenant only).", "schema": str},
	}
}

// errorNames maps status codes to the reason of the Status body.
func errorNames() map[string]string {
	names := map[string]string{}
	for _, code := range v1.StatusErrorCodes() {
		names[strconv.Itoa(code)] = v1.StatusReasonForCode(code)
	}
	return names
}

func errorResponses() map[string]any {
	out := map[string]any{}
	for code, reason := range errorNames() {
		r := map[string]any{"description": reason + " (" + code + ").",
			"content": map[string]any{"application/json": map[string]any{"schema": ref("APIStatus")}}}
		if code == "429" {
			r["headers"] = map[string]any{"Retry-After": map[string]any{
				"description": "Seconds to wait before retrying.", "schema": map[string]any{"type": "integer"}}}
		}
		out[reason] = r
	}
	return out
}

// markConsoleFields marks the metadata fields set by the console read-only.
func markConsoleFields(s *schemas) {
	meta, ok := s.defs["ObjectMeta"].(map[string]any)
	if !ok {
		return
	}
	props := meta["properties"].(map[string]any)
	for _, f := range []string{"tenant", "uid", "generation", "creationTimestamp"} {
		if p, ok := props[f].(map[string]any); ok {
			p["readOnly"] = true
		}
	}
}

func addFixedSchemas(s *schemas) {
	str := map[string]any{"type": "string"}
	obj := func(props map[string]any, required ...string) map[string]any {
		o := map[string]any{"type": "object", "properties": props}
		if len(required) > 0 {
			o["required"] = required
		}
		return o
	}
	reasons := []any{}
	for _, code := range v1.StatusErrorCodes() {
		reasons = append(reasons, v1.StatusReasonForCode(code))
		if code == http.StatusConflict {
			// A create of a name that exists answers 409 AlreadyExists.
			reasons = append(reasons, v1.StatusReasonAlreadyExists)
		}
	}
	s.defs["ListMeta"] = obj(map[string]any{"resourceVersion": str, "continue": str}, "resourceVersion")
	s.defs["FieldCause"] = obj(map[string]any{"field": str, "reason": str, "message": str}, "field", "reason", "message")
	s.defs["APIStatus"] = obj(map[string]any{
		"apiVersion": map[string]any{"type": "string", "const": v1.APIVersion},
		"kind":       map[string]any{"type": "string", "const": "Status"},
		"status":     map[string]any{"type": "string", "const": "Failure"},
		"code":       map[string]any{"type": "integer"},
		"reason":     map[string]any{"type": "string", "enum": reasons},
		"message":    str,
		"details": obj(map[string]any{"kind": str, "name": str,
			"causes": map[string]any{"type": "array", "items": ref("FieldCause")}}),
	}, "apiVersion", "kind", "status", "code", "reason", "message")
	s.defs["WatchEvent"] = obj(map[string]any{
		"type":   map[string]any{"type": "string", "enum": []any{"ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"}},
		"object": map[string]any{"type": "object", "description": "The object (or an APIStatus for ERROR)."},
	}, "type", "object")
	s.defs["RollbackRequest"] = obj(map[string]any{"generation": map[string]any{"type": "integer", "minimum": 1}}, "generation")
	s.defs["LoginRequest"] = obj(map[string]any{"tenant": str, "username": str,
		"password": map[string]any{"type": "string", "writeOnly": true}}, "tenant", "username", "password")
	s.defs["LoginResponse"] = obj(map[string]any{"token": str,
		"expiresAt": map[string]any{"type": "string", "format": "date-time"}}, "token", "expiresAt")
	s.defs["WhoAmI"] = obj(map[string]any{"tenant": str, "name": str,
		"kind":  map[string]any{"type": "string", "enum": []any{"User", "APIToken"}},
		"roles": map[string]any{"type": "array", "items": str}}, "tenant", "name", "kind", "roles")
	s.defs["AccessReview"] = obj(map[string]any{
		"verb":      map[string]any{"type": "string", "enum": stringsToAny(v1.Verbs())},
		"kind":      str,
		"namespace": str,
		"allowed":   map[string]any{"type": "boolean", "readOnly": true},
		"reason":    map[string]any{"type": "string", "readOnly": true},
	}, "verb", "kind")
	s.defs["RotateKeyResponse"] = obj(map[string]any{"primaryKeyID": map[string]any{"type": "string",
		"description": "The id of the new primary data key."}}, "primaryKeyID")
}

func stringsToAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

func addFixedPaths(paths map[string]any) {
	noAuth := []any{}
	paths["/api/v1/login"] = map[string]any{"post": withSecurity(op("auth", "login", "Log in with a password; answers a session token.",
		nil, body("LoginRequest", "application/json"),
		map[string]any{"200": objectResponse("LoginResponse", "A session token.")}), noAuth)}
	paths["/api/v1/whoami"] = map[string]any{"get": op("auth", "whoami", "Who the caller is.", nil, nil,
		map[string]any{"200": objectResponse("WhoAmI", "The caller.")})}
	paths["/api/v1/accessreviews"] = map[string]any{"post": op("auth", "createAccessReview", "Ask whether the caller may do a verb on a kind in a namespace.",
		nil, body("AccessReview", "application/json"),
		map[string]any{"200": objectResponse("AccessReview", "The answer, with allowed and reason.")})}
	q := func(name, desc string) map[string]any {
		return map[string]any{"name": name, "in": "query", "required": false, "description": desc, "schema": map[string]any{"type": "string"}}
	}
	outcome := q("outcome", "How the request ended.")
	outcome["schema"] = map[string]any{"type": "string", "enum": stringsToAny(auditOutcomes())}
	paths["/api/v1/auditrecords"] = map[string]any{"get": op("audit", "listAuditRecords", "List audit records of the caller's tenant.",
		[]any{q("principal", "Who acted."), q("verb", "The verb."), q("kind", "The kind."), q("namespace", "The namespace."),
			q("name", "The object name."), outcome, q("since", "RFC 3339 lower bound."), q("until", "RFC 3339 upper bound."),
			paramRef("limit"), q("continue", "The continue token of the previous page.")},
		nil, map[string]any{"200": objectResponse("AuditRecordList", "Matching records.")})}
	paths["/api/v1/audit/verify"] = map[string]any{"post": op("audit", "verifyAudit", "Check the tenant's audit hash chain and checkpoints.",
		nil, nil, map[string]any{"200": objectResponse("AuditVerifyResult", "The result; ok is false with the first bad record when the chain is broken.")})}
	paths["/api/v1/system/rotatekey"] = map[string]any{"post": op("system", "rotateDataKey",
		"Start a new primary data key for secrets at rest (admins of the system tenant, acting in it); older keys keep decrypting what they sealed.",
		nil, nil, map[string]any{"200": objectResponse("RotateKeyResponse", "The new primary key's id.")})}
	paths["/api/v1/openapi.json"] = map[string]any{"get": op("meta", "openapi", "This document.", nil, nil,
		map[string]any{"200": map[string]any{"description": "The OpenAPI 3.1 document.",
			"content": map[string]any{"application/json": map[string]any{"schema": map[string]any{"type": "object"}}}}})}
	healthz := func(id string) map[string]any {
		return withSecurity(op("meta", id, "Liveness.", nil, nil,
			map[string]any{"200": map[string]any{"description": "The console is up."}}), noAuth)
	}
	paths["/healthz"] = map[string]any{"get": healthz("healthz"), "head": healthz("headHealthz")}
}

func withSecurity(o map[string]any, sec []any) map[string]any {
	o["security"] = sec
	return o
}
