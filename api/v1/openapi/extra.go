package openapi

import (
	"reflect"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/internal/audit"
)

// subresource is a read-only GET .../<plural>/<name>/<sub> the console
// mounts over what nodes report.
type subresource struct {
	kind, sub string
	answer    reflect.Type
	summary   string
}

// subresources lists the console's read-only subresources (mounted by
// internal/console with apiserver.Server.HandleSubresource; a test there
// checks that every mounted one is described).
func subresources() []subresource {
	metrics := "The object's latest counters on each site that reported them, and their sum (the caller's tenant's sites and the sites it leases)."
	return []subresource{
		{"Site", "telemetry", reflect.TypeFor[v1.SiteTelemetry](), "What the site's node last reported: node counters, the caller's objects' counters, recent events."},
		{"HTTPLoadBalancer", "metrics", reflect.TypeFor[v1.ObjectMetrics](), metrics},
		{"TCPLoadBalancer", "metrics", reflect.TypeFor[v1.ObjectMetrics](), metrics},
	}
}

// addSubresources describes the subresources of the kinds in the table.
func addSubresources(s *schemas, paths map[string]any) {
	for _, sr := range subresources() {
		ki, ok := v1.LookupKind(sr.kind)
		if !ok {
			continue
		}
		kp := pathsOf(ki)
		name := s.nameOf(sr.answer)
		s.schemaOf(sr.answer)
		props := s.defs[name].(map[string]any)["properties"].(map[string]any)
		props["apiVersion"] = map[string]any{"type": "string", "const": v1.APIVersion}
		props["kind"] = map[string]any{"type": "string", "const": name}
		paths[kp.item+"/"+sr.sub] = map[string]any{
			"parameters": kp.itemParams,
			"get": op(ki.Kind, sr.sub+kp.prefix+ki.Kind, sr.summary+" Needs get on the "+ki.Kind+".", nil, nil,
				map[string]any{"200": objectResponse(name, "The "+sr.sub+" of the "+ki.Kind+".")}),
		}
	}
}

// addSecurityEvents describes GET /api/v1/[namespaces/{namespace}/]securityevents.
func addSecurityEvents(s *schemas, paths map[string]any) {
	s.schemaOf(reflect.TypeFor[v1.SecurityEvent]())
	s.defs["SecurityEventList"] = withDescription(listSchema("SecurityEventList", ref("SecurityEvent")),
		"Security events, newest first.")
	q := func(name, desc string, schema map[string]any) map[string]any {
		return map[string]any{"name": name, "in": "query", "required": false, "description": desc, "schema": schema}
	}
	str := map[string]any{"type": "string"}
	params := []any{
		q("loadBalancer", "Only events of this load balancer: NAME (in namespace default) or NAMESPACE/NAME.", str),
		q("site", "Only events reported by this site.", map[string]any{"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "maxLength": 63}),
		q("rule", "Only events where this rule (id or name) matched.", map[string]any{"type": "string", "maxLength": 128}),
		q("type", "Only events of this type.", map[string]any{"type": "string", "enum": stringsToAny(securityEventTypes())}),
		q("since", "Lower bound: RFC 3339, or a duration before now (1h, 15m).", str),
		q("until", "Upper bound: RFC 3339, or a duration before now (1h, 15m).", str),
		paramRef("limit"),
	}
	list := func(id, summary string) map[string]any {
		return op("SecurityEvent", id, summary, params, nil,
			map[string]any{"200": objectResponse("SecurityEventList", "Matching events, newest first.")})
	}
	paths["/api/v1/securityevents"] = map[string]any{
		"parameters": []any{paramRef("tenant")},
		"get":        list("listSecurityEvents", "List the tenant's security events in every namespace the caller may list them in."),
	}
	paths["/api/v1/namespaces/{namespace}/securityevents"] = map[string]any{
		"parameters": []any{paramRef("tenant"), paramRef("namespace")},
		"get":        list("listNamespacedSecurityEvents", "List the security events of a namespace (needs list on SecurityEvent there)."),
	}
}

// securityEventTypes are the values of the security events' type (and of
// the type filter).
func securityEventTypes() []string {
	return []string{"waf", "policy", "ratelimit", "authn", "network"}
}

// addAuditSchemas describes the audit answers from internal/audit's types.
func addAuditSchemas(s *schemas) {
	s.rename(reflect.TypeFor[audit.Record](), "AuditRecord")
	s.rename(reflect.TypeFor[audit.Report](), "AuditVerifyResult")
	s.rename(reflect.TypeFor[audit.Bad](), "AuditBadRecord")
	s.rename(reflect.TypeFor[audit.Checkpoint](), "AuditCheckpoint")
	s.schemaOf(reflect.TypeFor[audit.Report]())
	s.schemaOf(reflect.TypeFor[audit.Record]())
	rec := s.defs["AuditRecord"].(map[string]any)
	rec["description"] = "One record of the tenant's audit hash chain: who did what to which object, and how it ended."
	props := rec["properties"].(map[string]any)
	props["outcome"] = withEnum(props["outcome"].(map[string]any), auditOutcomes())
	s.defs["AuditRecordList"] = listSchema("AuditRecordList", ref("AuditRecord"))
	s.defs["AuditVerifyResult"].(map[string]any)["description"] = "The result of checking the audit chain; ok is false with the first bad record when it is broken."
}

// auditOutcomes are the values of an audit record's outcome.
func auditOutcomes() []string {
	return []string{string(audit.OutcomeAllowed), string(audit.OutcomeDenied), string(audit.OutcomeError)}
}
