package v1

import (
	"fmt"
	"time"

	"github.com/meridian-platform/meridian/internal/labels"
)

// VirtualSite is a named group of sites selected by their labels (tenant
// scope). Load balancers are placed on virtual sites.
type VirtualSite struct {
	Envelope
	Spec   VirtualSiteSpec `json:"spec"`
	Status Status          `json:"status,omitempty"`
}

// VirtualSiteSpec is the desired state of a VirtualSite.
type VirtualSiteSpec struct {
	// Selector chooses the sites by label. An empty selector selects every
	// site of the tenant.
	Selector LabelSelector `json:"selector"`
}

// LabelSelector is a Kubernetes-style structured label selector: all of
// MatchLabels and all of MatchExpressions must hold.
type LabelSelector struct {
	// MatchLabels requires each label to have the given value.
	MatchLabels map[string]string `json:"matchLabels,omitempty"`
	// MatchExpressions are set-based requirements.
	MatchExpressions []LabelSelectorRequirement `json:"matchExpressions,omitempty"`
}

// Label selector operators.
const (
	SelectorOpIn           = "In"
	SelectorOpNotIn        = "NotIn"
	SelectorOpExists       = "Exists"
	SelectorOpDoesNotExist = "DoesNotExist"
)

// LabelSelectorRequirement is one expression of a LabelSelector.
type LabelSelectorRequirement struct {
	// Key is the label key.
	Key string `json:"key"`
	// Operator is In, NotIn, Exists or DoesNotExist.
	Operator string `json:"operator" enum:"In,NotIn,Exists,DoesNotExist"`
	// Values are required for In and NotIn and forbidden otherwise.
	Values []string `json:"values,omitempty"`
}

func selectorOp(op string) (labels.Operator, bool) {
	switch op {
	case SelectorOpIn:
		return labels.In, true
	case SelectorOpNotIn:
		return labels.NotIn, true
	case SelectorOpExists:
		return labels.Exists, true
	case SelectorOpDoesNotExist:
		return labels.DoesNotExist, true
	}
	return "", false
}

// AsSelector converts the structured selector into a labels.Selector.
func (ls *LabelSelector) AsSelector() (labels.Selector, error) {
	sel, err := labels.FromSet(ls.MatchLabels)
	if err != nil {
		return labels.Selector{}, fmt.Errorf("matchLabels: %w", err)
	}
	for i, e := range ls.MatchExpressions {
		op, ok := selectorOp(e.Operator)
		if !ok {
			return labels.Selector{}, fmt.Errorf("matchExpressions[%d].operator: unsupported operator %q", i, e.Operator)
		}
		r, err := labels.NewRequirement(e.Key, op, e.Values)
		if err != nil {
			return labels.Selector{}, fmt.Errorf("matchExpressions[%d]: %w", i, err)
		}
		sel = sel.Add(r)
	}
	return sel, nil
}

func (ls *LabelSelector) validate(f string) FieldErrors {
	errs := validateLabels(f+".matchLabels", ls.MatchLabels)
	for i, e := range ls.MatchExpressions {
		ef := idx(f+".matchExpressions", i)
		if err := labels.ValidateKey(e.Key); err != nil {
			errs = append(errs, Invalid(ef+".key", e.Key, err.Error()))
		}
		errs = append(errs, oneOf(ef+".operator", e.Operator, []string{SelectorOpIn, SelectorOpNotIn, SelectorOpExists, SelectorOpDoesNotExist})...)
		switch e.Operator {
		case SelectorOpIn, SelectorOpNotIn:
			if len(e.Values) == 0 {
				errs = append(errs, Required(ef+".values", "In and NotIn need at least one value"))
			}
		case SelectorOpExists, SelectorOpDoesNotExist:
			if len(e.Values) != 0 {
				errs = append(errs, forbidden(ef+".values", "Exists and DoesNotExist take no values"))
			}
		}
		for j, v := range e.Values {
			if err := labels.ValidateValue(v); err != nil {
				errs = append(errs, Invalid(idx(ef+".values", j), v, err.Error()))
			}
		}
	}
	return errs
}

// Validate checks the selector.
func (v *VirtualSite) Validate() FieldErrors { return v.Spec.Selector.validate("spec.selector") }

// SiteToken lets nodes register as sites (tenant scope). The token itself
// is shown once, in status.token of the answer to its creation.
type SiteToken struct {
	Envelope
	Spec   SiteTokenSpec   `json:"spec,omitempty"`
	Status SiteTokenStatus `json:"status,omitempty"`
}

// SiteTokenSpec is the desired state of a SiteToken.
type SiteTokenSpec struct {
	// Expires is the lifetime counted from creation (default 24h).
	Expires Duration `json:"expires,omitempty"`
	// MaxUses is how many sites may register with the token (default 1).
	MaxUses int `json:"maxUses,omitempty"`
	// Labels are given to every site registered with the token.
	Labels map[string]string `json:"labels,omitempty"`
	// AutoApprove approves sites registered with the token at once;
	// otherwise an admin approves each (Site spec.approved).
	AutoApprove bool `json:"autoApprove,omitempty"`
	// Revoked stops the token from registering more sites (sites already
	// registered with it are not affected).
	Revoked bool `json:"revoked,omitempty"`
}

// SiteTokenStatus is written by the console.
type SiteTokenStatus struct {
	Status `json:",inline"`
	// Uses counts registrations made with the token.
	Uses int `json:"uses,omitempty"`
	// Token is set only in the answer to the creation.
	Token string `json:"token,omitempty"`
	// TokenHash is the stored hash of the token; never returned.
	TokenHash Secret `json:"tokenHash,omitempty"`
	// ExpiresAt is when the token stops working.
	ExpiresAt *time.Time `json:"expiresAt,omitempty"`
}

// SiteToken defaults and bounds.
const (
	DefaultSiteTokenLifetime = 24 * time.Hour
	MaxSiteTokenUses         = 1_000_000
)

// Default fills in lifetime and uses.
func (t *SiteToken) Default() {
	if t.Spec.Expires.Duration == 0 {
		t.Spec.Expires.Duration = DefaultSiteTokenLifetime
	}
	if t.Spec.MaxUses == 0 {
		t.Spec.MaxUses = 1
	}
}

// Validate checks the spec.
func (t *SiteToken) Validate() FieldErrors {
	var errs FieldErrors
	if d := t.Spec.Expires.Duration; d <= 0 || d > MaxTokenLifetime {
		errs = append(errs, Invalid("spec.expires", d, fmt.Sprintf("must be positive and at most %s", MaxTokenLifetime)))
	}
	if t.Spec.MaxUses < 1 || t.Spec.MaxUses > MaxSiteTokenUses {
		errs = append(errs, Invalid("spec.maxUses", t.Spec.MaxUses, fmt.Sprintf("must be between 1 and %d", MaxSiteTokenUses)))
	}
	errs = append(errs, validateLabels("spec.labels", t.Spec.Labels)...)
	return errs
}

// SecretFields returns the token hash, so that it is never shown.
func (t *SiteToken) SecretFields() []SecretField {
	return []SecretField{{Field: "status.tokenHash", Value: &t.Status.TokenHash}}
}

// Site is a node registered with the console (tenant scope). It is created
// by registration; its labels (metadata.labels) come from the SiteToken or
// from an admin, never from the node.
type Site struct {
	Envelope
	Spec   SiteSpec   `json:"spec,omitempty"`
	Status SiteStatus `json:"status,omitempty"`
}

// SiteSpec is what admins decide about a site.
type SiteSpec struct {
	// Description says where the site is or what it is for.
	Description string `json:"description,omitempty"`
	// Approved lets the site receive configuration (set at registration
	// when the token auto-approves).
	Approved bool `json:"approved,omitempty"`
	// Decommissioned sites receive nothing and cannot reconnect; the name
	// stays taken.
	Decommissioned bool `json:"decommissioned,omitempty"`
}

// Site states.
const (
	SiteStatePending        = "pending"
	SiteStateApproved       = "approved"
	SiteStateDecommissioned = "decommissioned"
)

// SiteStatus is written by the console.
type SiteStatus struct {
	Status `json:",inline"`
	// State is pending, approved or decommissioned.
	State string `json:"state,omitempty" enum:"pending,approved,decommissioned"`
	// Online says whether the node's sync stream is connected.
	Online   bool       `json:"online,omitempty"`
	LastSeen *time.Time `json:"lastSeen,omitempty"`
	// NodeVersion is the meridian version the node runs.
	NodeVersion string `json:"nodeVersion,omitempty"`
	// CapabilityVersion is the protocol version the node understands.
	CapabilityVersion int `json:"capabilityVersion,omitempty"`
	// AppliedVersion is the snapshot version the node last applied.
	AppliedVersion string `json:"appliedVersion,omitempty"`
	// SiteToken names the token the site registered with.
	SiteToken string `json:"siteToken,omitempty"`
}

// StateOf returns the state the spec implies.
func (s *SiteSpec) StateOf() string {
	switch {
	case s.Decommissioned:
		return SiteStateDecommissioned
	case s.Approved:
		return SiteStateApproved
	}
	return SiteStatePending
}

// Validate checks the spec.
func (s *Site) Validate() FieldErrors {
	return validateDisplayName("spec.description", s.Spec.Description)
}

// SiteShare leases one of this tenant's sites to another tenant (tenant
// scope, in the owner's tenant). The other tenant's virtual sites may then
// select the site, by the labels its owner gives it, and that tenant's
// load balancers run there beside the owner's; each tenant sees only its
// own objects and status. Listeners of two tenants that collide on the
// site (same port, a common domain) are reported in both objects' status
// and the one placed first keeps the listener.
type SiteShare struct {
	Envelope
	Spec   SiteShareSpec `json:"spec"`
	Status Status        `json:"status,omitempty"`
}

// SiteShareSpec names the site and the tenant it is leased to.
type SiteShareSpec struct {
	// Site is the name of a site of this tenant.
	Site string `json:"site"`
	// Tenant is the tenant the site is leased to.
	Tenant string `json:"tenant"`
}

// Validate checks the names.
func (s *SiteShare) Validate() FieldErrors {
	errs := validateNameField("spec.site", s.Spec.Site)
	return append(errs, validateNameField("spec.tenant", s.Spec.Tenant)...)
}

// References lists the shared site.
func (s *SiteShare) References() []Reference {
	if s.Spec.Site == "" {
		return nil
	}
	return []Reference{{Field: "spec.site", Kind: "Site", Name: s.Spec.Site}}
}
