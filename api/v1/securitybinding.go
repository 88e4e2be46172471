package v1

import "fmt"

// SecurityBinding makes security objects mandatory for every
// HTTPLoadBalancer of its namespace (namespaced; written by SecOps and
// admins). A load balancer's owner cannot remove what a binding adds by
// editing the load balancer or its routes:
//
//   - the binding's ServicePolicies are evaluated before the load
//     balancer's (and routes') own, so a deny there cannot be overridden;
//   - the binding's AppFirewall inspects every request, before the firewall
//     the load balancer or route names (both run; a request must pass both);
//   - the binding's RateLimiter applies in addition to the load balancer's
//     (its buckets are shared by every load balancer of the namespace).
//
// Several bindings in a namespace all apply, in name order.
type SecurityBinding struct {
	Envelope
	Spec   SecurityBindingSpec `json:"spec"`
	Status Status              `json:"status,omitempty"`
}

// SecurityBindingSpec is the desired state of a SecurityBinding.
type SecurityBindingSpec struct {
	// AppFirewall names an AppFirewall of the namespace that inspects
	// every request of every HTTPLoadBalancer in the namespace.
	AppFirewall string `json:"appFirewall,omitempty"`
	// ServicePolicies name ServicePolicies of the namespace, evaluated in
	// order before those of the load balancer or route.
	ServicePolicies []string `json:"servicePolicies,omitempty"`
	// RateLimiter names a RateLimiter of the namespace applied to every
	// request of every HTTPLoadBalancer in the namespace.
	RateLimiter string `json:"rateLimiter,omitempty"`
}

// Validate checks that the binding names at least one object, by valid
// names, without repeating a policy.
func (b *SecurityBinding) Validate() FieldErrors {
	s := &b.Spec
	var errs FieldErrors
	if s.AppFirewall == "" && len(s.ServicePolicies) == 0 && s.RateLimiter == "" {
		errs = append(errs, Required("spec", "at least one of appFirewall, servicePolicies and rateLimiter is required"))
	}
	if s.AppFirewall != "" {
		errs = append(errs, validateNameField("spec.appFirewall", s.AppFirewall)...)
	}
	seen := map[string]int{}
	for i, p := range s.ServicePolicies {
		f := idx("spec.servicePolicies", i)
		errs = append(errs, validateNameField(f, p)...)
		if j, dup := seen[p]; dup {
			errs = append(errs, FieldError{Field: f, Reason: ReasonDuplicate,
				Message: fmt.Sprintf("ServicePolicy %q is already listed at spec.servicePolicies[%d]", p, j)})
		}
		seen[p] = i
	}
	if s.RateLimiter != "" {
		errs = append(errs, validateNameField("spec.rateLimiter", s.RateLimiter)...)
	}
	return errs
}

// References lists the security objects the binding names.
func (b *SecurityBinding) References() []Reference {
	ns := b.Metadata.Namespace
	var refs []Reference
	if b.Spec.AppFirewall != "" {
		refs = append(refs, Reference{Field: "spec.appFirewall", Kind: "AppFirewall", Namespace: ns, Name: b.Spec.AppFirewall})
	}
	for i, p := range b.Spec.ServicePolicies {
		refs = append(refs, Reference{Field: idx("spec.servicePolicies", i), Kind: "ServicePolicy", Namespace: ns, Name: p})
	}
	if b.Spec.RateLimiter != "" {
		refs = append(refs, Reference{Field: "spec.rateLimiter", Kind: "RateLimiter", Namespace: ns, Name: b.Spec.RateLimiter})
	}
	return refs
}
