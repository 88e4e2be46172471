package config

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/internal/authn"
)

// Security is the effective security of the requests of a route: what the
// security stages (authn, policy, ratelimit, waf) apply to them. It merges
// the namespace's SecurityBindings with the load balancer's settings,
// replaced field by field by the route's own:
//
//   - AppFirewalls: the bindings' firewalls, then the route's appFirewall
//     or else the load balancer's (all run, in order; a request must pass
//     every one);
//   - ServicePolicies: the bindings' policies, then the route's list or
//     else the load balancer's (a route's list replaces the load
//     balancer's, as Envoy's per-route configuration does);
//   - RateLimiters: the bindings' limiters, then the route's rateLimiter or
//     else the load balancer's (every one must have a token);
//   - Authn: the route's authentication, or else the load balancer's; a
//     route with authentication {disabled: true} has none.
//
// Names are of the load balancer's namespace and appear once each.
type Security struct {
	// Index is the position in VHost.Security.
	Index           int
	AppFirewalls    []string
	ServicePolicies []string
	RateLimiters    []string
	// Authn is nil when requests need not authenticate.
	Authn *authn.Config
}

// CompileOption changes how Compile checks objects.
type CompileOption func(*compileOptions)

type compileOptions struct {
	geoKnown       bool
	geoCountry     bool
	geoASN         bool
	geoDescription string
}

// WithGeoIP says which GeoIP databases the node has, so that a
// ServicePolicy matching countries or ASNs without the database it needs is
// reported (and skipped) at compile time. Without this option the check is
// left to the policy stage, which fails closed.
func WithGeoIP(country, asn bool) CompileOption {
	return func(o *compileOptions) { o.geoKnown, o.geoCountry, o.geoASN = true, country, asn }
}

// securityKinds are the kinds HTTPLoadBalancers and SecurityBindings name.
var securityKinds = []string{"AppFirewall", "ServicePolicy", "RateLimiter"}

// checkSecurityObjects validates the AppFirewalls, ServicePolicies and
// RateLimiters passed through to the stages, so that references to a
// broken one are reported with the load balancer.
func (c *compiler) checkSecurityObjects() {
	keys := make([]string, 0, len(c.t.others))
	for k := range c.t.others {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		o := c.t.others[k]
		kind := o.GetTypeMeta().Kind
		if !slices.Contains(securityKinds, kind) {
			continue
		}
		err := validate(o)
		if p, ok := o.(*v1.ServicePolicy); ok && err == nil {
			err = c.checkGeo(p)
		}
		c.fail(o, kind, err)
	}
}

// checkGeo reports a ServicePolicy that matches countries or ASNs on a node
// without the database.
func (c *compiler) checkGeo(p *v1.ServicePolicy) error {
	if !c.opts.geoKnown {
		return nil
	}
	var errs v1.FieldErrors
	for i, r := range p.Spec.Rules {
		f := fmt.Sprintf("spec.rules[%d].match", i)
		m := &r.Match
		if m.UsesCountry() && !c.opts.geoCountry {
			field := f + ".countries"
			if len(m.Countries) == 0 {
				field = f + ".notCountries"
			}
			errs = append(errs, v1.FieldError{Field: field, Reason: v1.ReasonInvalid,
				Message: "no GeoIP country database is configured on this node (meridian node --geoip-db FILE.mmdb)"})
		}
		if m.UsesASN() && !c.opts.geoASN {
			field := f + ".asns"
			if len(m.ASNs) == 0 {
				field = f + ".notASNs"
			}
			errs = append(errs, v1.FieldError{Field: field, Reason: v1.ReasonInvalid,
				Message: "no GeoIP ASN database is configured on this node (meridian node --geoip-asn-db FILE.mmdb)"})
		}
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

// secRef checks a reference to a security object.
func (c *compiler) secRef(field, kind, ns, name string) error {
	return c.refErr(field, kind, ns, name, c.t.others[kind+" "+key(ns, name)] != nil)
}

// securityBinding checks a SecurityBinding and records it for its
// namespace.
func (c *compiler) securityBinding(b *v1.SecurityBinding) error {
	if err := validate(b); err != nil {
		return err
	}
	ns := b.Metadata.Namespace
	var errs v1.FieldErrors
	for _, r := range b.References() {
		if err := c.secRef(r.Field, r.Kind, ns, r.Name); err != nil {
			errs = append(errs, err.(v1.FieldErrors)...)
		}
	}
	if len(errs) > 0 {
		return errs
	}
	c.bindings[ns] = append(c.bindings[ns], b)
	return nil
}

// bindingErr returns why the load balancers of ns cannot be served: a
// SecurityBinding of the namespace is broken, and serving without it would
// drop protection SecOps made mandatory.
func (c *compiler) bindingErr(ns string) error {
	var errs v1.FieldErrors
	for _, name := range c.badBindings[ns] {
		errs = append(errs, v1.FieldError{Field: "metadata.namespace", Reason: v1.ReasonInvalid,
			Message: fmt.Sprintf("SecurityBinding %q of namespace %q is invalid (%v); the namespace's load balancers are not served without it",
				name, ns, c.badObjects["SecurityBinding "+key(ns, name)])})
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

// lbSecurity computes the security of a load balancer (index 0, used by
// the default route and requests no route matched) and of each route,
// sharing equal ones, and checks every reference. clientCerts reports
// whether some route authenticates with client certificates.
func (c *compiler) lbSecurity(x *v1.HTTPLoadBalancer, vh *VHost) (clientCerts bool, err error) {
	ns, s := x.Metadata.Namespace, &x.Spec
	var errs v1.FieldErrors
	add := func(e error) {
		if fe, ok := e.(v1.FieldErrors); ok {
			errs = append(errs, fe...)
		}
	}
	add(c.bindingErr(ns))
	var baseFW, basePol, baseRL []string
	for _, b := range c.bindings[ns] {
		baseFW = appendNew(baseFW, b.Spec.AppFirewall)
		basePol = appendNew(basePol, b.Spec.ServicePolicies...)
		baseRL = appendNew(baseRL, b.Spec.RateLimiter)
	}
	// References of the load balancer's own settings.
	if s.AppFirewall != "" {
		add(c.secRef("spec.appFirewall", "AppFirewall", ns, s.AppFirewall))
	}
	for i, p := range s.ServicePolicies {
		add(c.secRef(fmt.Sprintf("spec.servicePolicies[%d]", i), "ServicePolicy", ns, p))
	}
	if s.RateLimiter != "" {
		add(c.secRef("spec.rateLimiter", "RateLimiter", ns, s.RateLimiter))
	}
	lbAuth, e := c.authnConfig("spec.authentication", ns, s.Authentication)
	add(e)
	byKey := map[string]*Security{}
	intern := func(sec *Security) *Security {
		b, _ := json.Marshal(sec)
		if old := byKey[string(b)]; old != nil {
			return old
		}
		sec.Index = len(vh.Security)
		byKey[string(b)] = sec
		vh.Security = append(vh.Security, sec)
		if sec.Authn != nil && sec.Authn.MTLS != nil {
			clientCerts = true
		}
		return sec
	}
	profile := func(fw string, pols []string, rl string, a *authn.Config) *Security {
		sec := &Security{AppFirewalls: appendNew(slices.Clone(baseFW), fw),
			ServicePolicies: appendNew(slices.Clone(basePol), pols...),
			RateLimiters:    appendNew(slices.Clone(baseRL), rl), Authn: a}
		return intern(sec)
	}
	lbSec := profile(s.AppFirewall, s.ServicePolicies, s.RateLimiter, lbAuth)
	if vh.Default != nil {
		vh.Default.Security = lbSec
	}
	for i, r := range s.Routes {
		f := fmt.Sprintf("spec.routes[%d]", i)
		fw, pols, rl, a := s.AppFirewall, s.ServicePolicies, s.RateLimiter, lbAuth
		if r.AppFirewall != "" {
			fw = r.AppFirewall
			add(c.secRef(f+".appFirewall", "AppFirewall", ns, r.AppFirewall))
		}
		if len(r.ServicePolicies) > 0 {
			pols = r.ServicePolicies
			for j, p := range r.ServicePolicies {
				add(c.secRef(fmt.Sprintf("%s.servicePolicies[%d]", f, j), "ServicePolicy", ns, p))
			}
		}
		if r.RateLimiter != "" {
			rl = r.RateLimiter
			add(c.secRef(f+".rateLimiter", "RateLimiter", ns, r.RateLimiter))
		}
		if r.Authentication != nil {
			ra, e := c.authnConfig(f+".authentication", ns, r.Authentication)
			add(e)
			a = ra
		}
		sec := profile(fw, pols, rl, a)
		if i < len(vh.Routes) && vh.Routes[i] != nil {
			vh.Routes[i].Security = sec
		}
	}
	vh.Authn = lbAuth
	if len(errs) > 0 {
		return false, errs
	}
	return clientCerts, nil
}

// authnConfig converts and checks an authentication block (the secrets
// must be in the clear, the CA must exist).
func (c *compiler) authnConfig(f, ns string, a *v1.HTTPAuthentication) (*authn.Config, error) {
	if a == nil || a.Disabled {
		return nil, nil
	}
	var errs v1.FieldErrors
	if k := a.APIKey; k != nil {
		for i, key := range k.Keys {
			if key.Key == v1.SecretRedacted {
				errs = append(errs, v1.Invalid(fmt.Sprintf("%s.apiKey.keys[%d].key", f, i), v1.SecretRedacted, "the node needs the key itself"))
			}
		}
	}
	caPEM := ""
	if m := a.MTLS; m != nil {
		pem, ok := c.caPEM[key(ns, m.CARef)]
		if err := c.refErr(f+".mtls.caRef", "Certificate", ns, m.CARef, ok); err != nil {
			errs = append(errs, err.(v1.FieldErrors)...)
		}
		caPEM = pem
	}
	if len(errs) > 0 {
		return nil, errs
	}
	cfg := authn.FromSpec(a, caPEM)
	// Compile once here (keys are loaded lazily, so nothing is fetched) so
	// that what the schema cannot check (an unusable CA bundle) is
	// reported with the load balancer.
	if _, err := authn.New(*cfg, authn.Options{}); err != nil {
		return nil, v1.FieldErrors{{Field: f, Reason: v1.ReasonInvalid, Message: err.Error()}}
	}
	return cfg, nil
}

func appendNew(list []string, names ...string) []string {
	for _, n := range names {
		if n != "" && !slices.Contains(list, n) {
			list = append(list, n)
		}
	}
	return list
}
