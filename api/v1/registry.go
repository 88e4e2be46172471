package v1

import (
	"reflect"
	"strings"
)

// Kinds returns a fresh table of every kind, ordered so that kinds that may
// be referred to come before the kinds that refer to them (apply order).
func Kinds() []KindInfo {
	return []KindInfo{
		{Kind: "Tenant", Plural: "tenants", Singular: "tenant", ShortNames: []string{"tn"}, Scope: ScopeSystem,
			New: func() Object { return &Tenant{} }},
		{Kind: "Namespace", Plural: "namespaces", Singular: "namespace", ShortNames: []string{"ns"}, Scope: ScopeTenant,
			New: func() Object { return &Namespace{} }},
		{Kind: "User", Plural: "users", Singular: "user", ShortNames: []string{"usr"}, Scope: ScopeTenant,
			New: func() Object { return &User{} }},
		{Kind: "Role", Plural: "roles", Singular: "role", ShortNames: []string{"ro"}, Scope: ScopeTenant,
			New: func() Object { return &Role{} }},
		{Kind: "APIToken", Plural: "apitokens", Singular: "apitoken", ShortNames: []string{"tok"}, Scope: ScopeTenant,
			New: func() Object { return &APIToken{} }},
		{Kind: "RoleBinding", Plural: "rolebindings", Singular: "rolebinding", ShortNames: []string{"rb"}, Scope: ScopeTenant,
			New: func() Object { return &RoleBinding{} }},
		{Kind: "SiteToken", Plural: "sitetokens", Singular: "sitetoken", ShortNames: []string{"st"}, Scope: ScopeTenant,
			New: func() Object { return &SiteToken{} }},
		{Kind: "Site", Plural: "sites", Singular: "site", Scope: ScopeTenant,
			New: func() Object { return &Site{} }},
		{Kind: "VirtualSite", Plural: "virtualsites", Singular: "virtualsite", ShortNames: []string{"vs"}, Scope: ScopeTenant,
			New: func() Object { return &VirtualSite{} }},
		{Kind: "SiteShare", Plural: "siteshares", Singular: "siteshare", Scope: ScopeTenant,
			New: func() Object { return &SiteShare{} }},
		{Kind: "Certificate", Plural: "certificates", Singular: "certificate", ShortNames: []string{"cert"}, Scope: ScopeNamespaced,
			New: func() Object { return &Certificate{} }},
		{Kind: "HealthCheck", Plural: "healthchecks", Singular: "healthcheck", ShortNames: []string{"hc"}, Scope: ScopeNamespaced,
			New: func() Object { return &HealthCheck{} }},
		{Kind: "OriginPool", Plural: "originpools", Singular: "originpool", ShortNames: []string{"op"}, Scope: ScopeNamespaced,
			New: func() Object { return &OriginPool{} }},
		{Kind: "AppFirewall", Plural: "appfirewalls", Singular: "appfirewall", ShortNames: []string{"afw"}, Scope: ScopeNamespaced,
			New: func() Object { return &AppFirewall{} }},
		{Kind: "ServicePolicy", Plural: "servicepolicies", Singular: "servicepolicy", ShortNames: []string{"sp"}, Scope: ScopeNamespaced,
			New: func() Object { return &ServicePolicy{} }},
		{Kind: "RateLimiter", Plural: "ratelimiters", Singular: "ratelimiter", ShortNames: []string{"rl"}, Scope: ScopeNamespaced,
			New: func() Object { return &RateLimiter{} }},
		{Kind: "SecurityBinding", Plural: "securitybindings", Singular: "securitybinding", ShortNames: []string{"secb"}, Scope: ScopeNamespaced,
			New: func() Object { return &SecurityBinding{} }},
		{Kind: "NetworkPolicy", Plural: "networkpolicies", Singular: "networkpolicy", ShortNames: []string{"netpol"}, Scope: ScopeNamespaced,
			New: func() Object { return &NetworkPolicy{} }},
		{Kind: "HTTPLoadBalancer", Plural: "httploadbalancers", Singular: "httploadbalancer", ShortNames: []string{"hlb"}, Scope: ScopeNamespaced,
			New: func() Object { return &HTTPLoadBalancer{} }},
		{Kind: "TCPLoadBalancer", Plural: "tcploadbalancers", Singular: "tcploadbalancer", ShortNames: []string{"tlb"}, Scope: ScopeNamespaced,
			New: func() Object { return &TCPLoadBalancer{} }},
	}
}

// LookupKind finds a kind by its name, plural, singular or short name,
// case-insensitively ("OriginPool", "originpools", "op").
func LookupKind(name string) (KindInfo, bool) {
	for _, k := range Kinds() {
		if strings.EqualFold(name, k.Kind) || strings.EqualFold(name, k.Plural) || strings.EqualFold(name, k.Singular) {
			return k, true
		}
		for _, s := range k.ShortNames {
			if strings.EqualFold(name, s) {
				return k, true
			}
		}
	}
	return KindInfo{}, false
}

// KindOf returns the kind of an object by its Go type (not by the kind
// field it carries).
func KindOf(obj Object) (KindInfo, bool) {
	if obj == nil {
		return KindInfo{}, false
	}
	t := reflect.TypeOf(obj)
	for _, k := range Kinds() {
		if reflect.TypeOf(k.New()) == t {
			return k, true
		}
	}
	return KindInfo{}, false
}

// New returns a new object of the named kind (any name LookupKind accepts)
// with apiVersion and kind set.
func New(kind string) (Object, bool) {
	k, ok := LookupKind(kind)
	if !ok {
		return nil, false
	}
	obj := k.New()
	*obj.GetTypeMeta() = TypeMeta{APIVersion: APIVersion, Kind: k.Kind}
	return obj, true
}
