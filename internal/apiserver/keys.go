package apiserver

import (
	"fmt"
	"strings"
)

// Store key layout. Every key starts with a type letter and the tenant, so
// that a tenant's data is one prefix and no lookup crosses tenants.
//
//	/o/<tenant>/<plural>/<ns or _>/<name>                      object JSON
//	/h/<tenant>/<plural>/<ns or _>/<name>/<generation %020d>   previous generations
//	/r/<tenant>/<target plural>/<ns>/<name>/<referrer plural>/<ns>/<name>  reverse references
//	/g/<tenant>/<plural>/<ns>/<name>                            guard: touched when a dependency is added
//	/t/<token hash>                                            API token index -> tenant/name
//	/s/<token hash>                                            login sessions
//	/ts/<token hash>                                           SiteToken index -> tenant/name
const (
	prefixSiteToken = "/ts/"
	prefixObject    = "/o/"
	prefixHistory   = "/h/"
	prefixRef       = "/r/"
	prefixGuard     = "/g/"
	prefixToken     = "/t/"
	prefixSession   = "/s/"
	noNamespace     = "_"
)

// objRef names one object inside a tenant.
type objRef struct {
	Plural    string
	Namespace string // "" for tenant-scoped and system kinds
	Name      string
}

func nsSeg(ns string) string {
	if ns == "" {
		return noNamespace
	}
	return ns
}

// suffix is "<plural>/<ns or _>/<name>".
func (r objRef) suffix() string { return r.Plural + "/" + nsSeg(r.Namespace) + "/" + r.Name }

func objKey(tenant string, r objRef) string { return prefixObject + tenant + "/" + r.suffix() }

func historyPrefix(tenant string, r objRef) string {
	return prefixHistory + tenant + "/" + r.suffix() + "/"
}

func historyKey(tenant string, r objRef, gen int64) string {
	return historyPrefix(tenant, r) + fmt.Sprintf("%020d", gen)
}

// refTargetPrefix lists every reference to target.
func refTargetPrefix(tenant string, target objRef) string {
	return prefixRef + tenant + "/" + target.suffix() + "/"
}

func refKey(tenant string, target, referrer objRef) string {
	return refTargetPrefix(tenant, target) + referrer.suffix()
}

func guardKey(tenant string, r objRef) string { return prefixGuard + tenant + "/" + r.suffix() }

// kindPrefix lists a kind in one namespace (ns != "") or in all namespaces.
func kindPrefix(tenant, plural, ns string, allNamespaces bool) string {
	p := prefixObject + tenant + "/" + plural + "/"
	if allNamespaces {
		return p
	}
	return p + nsSeg(ns) + "/"
}

// parseSuffix parses "<plural>/<ns>/<name>".
func parseSuffix(s string) (objRef, bool) {
	parts := strings.Split(s, "/")
	if len(parts) != 3 {
		return objRef{}, false
	}
	ns := parts[1]
	if ns == noNamespace {
		ns = ""
	}
	return objRef{Plural: parts[0], Namespace: ns, Name: parts[2]}, true
}

// parseObjKey parses an object key into tenant and ref.
func parseObjKey(key string) (string, objRef, bool) {
	rest, ok := strings.CutPrefix(key, prefixObject)
	if !ok {
		return "", objRef{}, false
	}
	tenant, suffix, ok := strings.Cut(rest, "/")
	if !ok {
		return "", objRef{}, false
	}
	r, ok := parseSuffix(suffix)
	return tenant, r, ok
}
