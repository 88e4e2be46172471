package v1

import (
	"fmt"
	"net/netip"
)

// NetworkPolicy is a layer 3/4 firewall for the listeners of a namespace's
// load balancers (namespaced): ordered allow/deny rules on the client
// address, the local address, the port and the protocol, checked when a
// connection is accepted, before any PROXY protocol header or TLS
// handshake is read. A denied connection is reset at once. Every verdict
// is counted (meridian_netpolicy_connections_total, by policy, rule,
// action and mode); refusals, and those a dryRun policy would make, are
// security events of type network (at most 100 a second per rule, the
// rest counted).
//
// The policies that select a listener combine as follows: they are taken
// in order of priority (lower first), then namespace and name. Within one
// priority, each policy gives the action of its first matching rule; a
// deny from any of them wins over an allow. The first priority with a
// matching rule decides. When no rule of any policy matches, the
// connection is denied if one of the policies has defaultAction deny, and
// allowed otherwise. Policies in dryRun mode take no part in the decision:
// they are evaluated as if they were enforced, and a connection they would
// have denied is counted and reported, never refused.
type NetworkPolicy struct {
	Envelope
	Spec   NetworkPolicySpec `json:"spec"`
	Status Status            `json:"status,omitempty"`
}

// NetworkPolicy protocols.
const (
	NetworkProtocolTCP = "TCP"
	NetworkProtocolUDP = "UDP"
	NetworkProtocolAny = "any"
)

// NetworkPolicy bounds.
const (
	// MaxNetworkPolicyRules bounds the ingress rules of one policy.
	MaxNetworkPolicyRules = 1024
	// MaxNetworkPolicyCIDRs bounds each address list of one rule.
	MaxNetworkPolicyCIDRs = 65536
	// MaxNetworkPolicyPorts bounds the port ranges of one rule and the
	// listener ports of one policy.
	MaxNetworkPolicyPorts = 1024
	// MaxNetworkPolicyPriority is the largest priority.
	MaxNetworkPolicyPriority = 1000
)

// NetworkPolicySpec is the desired state of a NetworkPolicy.
type NetworkPolicySpec struct {
	// Sites says where the policy is enforced, like the placement of a
	// load balancer: on the sites of a virtual site (absent: nowhere). A
	// standalone node ignores it.
	Sites *LBPlacement `json:"sites,omitempty"`
	// ListenerPorts limits the policy to the listeners on these ports
	// (default: every listener of the namespace's load balancers). A
	// listener also serving load balancers of other namespaces is never
	// selected: its clients are not this namespace's alone.
	ListenerPorts []int `json:"listenerPorts,omitempty"`
	// Priority orders policies selecting the same listener: lower first
	// (default 0, at most 1000).
	Priority int `json:"priority,omitempty"`
	// Mode is enforce (default) or dryRun (evaluate and count the
	// connections that would be denied, never refuse one).
	Mode string `json:"mode,omitempty" enum:"enforce,dryRun"`
	// Ingress rules are tried in order; the first whose conditions all hold
	// gives the policy's action for the connection.
	Ingress []NetworkPolicyRule `json:"ingress,omitempty"`
	// DefaultAction applies when no rule of any policy matches: allow
	// (default) or deny. One policy saying deny is enough.
	DefaultAction string `json:"defaultAction,omitempty" enum:"allow,deny"`
}

// NetworkPolicyRule is one ingress rule: every condition given must hold.
// A rule with no condition matches every connection.
type NetworkPolicyRule struct {
	// Name identifies the rule in counters and events (a DNS-1123 label).
	Name string `json:"name"`
	// Action is allow or deny.
	Action string `json:"action" enum:"allow,deny"`
	// Sources match when the client address is in one of these CIDRs (a
	// bare address is a single host; IPv4 and IPv6). Clients of dual-stack
	// listeners are matched by their IPv4 address, never the IPv4-mapped
	// IPv6 form. On a listener with proxyProtocol, the client is the proxy
	// that opened the connection.
	Sources []string `json:"sources,omitempty"`
	// NotSources match when the client address is in none of these CIDRs.
	NotSources []string `json:"notSources,omitempty"`
	// Destinations match when the local address the client connected to is
	// in one of these CIDRs.
	Destinations []string `json:"destinations,omitempty"`
	// Ports match when the local port is one of these ports or ranges.
	Ports []NetworkPortRange `json:"ports,omitempty"`
	// Protocol is TCP, UDP or any (default). Listeners are TCP today: a
	// UDP rule matches nothing yet.
	Protocol string `json:"protocol,omitempty" enum:"TCP,UDP,any"`
}

// NetworkPortRange is a port, or the range from Port to EndPort inclusive.
type NetworkPortRange struct {
	// Port is the port, or the first port of the range (1-65535).
	Port int `json:"port"`
	// EndPort is the last port of the range (default: Port alone).
	EndPort int `json:"endPort,omitempty"`
}

// Default fills in mode, default action and rule protocols.
func (p *NetworkPolicy) Default() {
	s := &p.Spec
	if s.Mode == "" {
		s.Mode = PolicyModeEnforce
	}
	if s.DefaultAction == "" {
		s.DefaultAction = PolicyActionAllow
	}
	for i := range s.Ingress {
		if s.Ingress[i].Protocol == "" {
			s.Ingress[i].Protocol = NetworkProtocolAny
		}
	}
}

// Validate checks the spec: enumerations, CIDRs, ports and rule names.
func (p *NetworkPolicy) Validate() FieldErrors {
	s := &p.Spec
	// Empty enumerations take their defaults (Default may not have run).
	var errs FieldErrors
	if s.Mode != "" {
		errs = append(errs, oneOf("spec.mode", s.Mode, []string{PolicyModeEnforce, PolicyModeDryRun})...)
	}
	if s.DefaultAction != "" {
		errs = append(errs, oneOf("spec.defaultAction", s.DefaultAction, []string{PolicyActionAllow, PolicyActionDeny})...)
	}
	if s.Priority < 0 || s.Priority > MaxNetworkPolicyPriority {
		errs = append(errs, Invalid("spec.priority", s.Priority, fmt.Sprintf("must be between 0 and %d", MaxNetworkPolicyPriority)))
	}
	if s.Sites != nil && s.Sites.VirtualSite != "" && !IsDNS1123Label(s.Sites.VirtualSite) {
		errs = append(errs, Invalid("spec.sites.virtualSite", s.Sites.VirtualSite, dnsLabelMsg))
	}
	if len(s.ListenerPorts) > MaxNetworkPolicyPorts {
		errs = append(errs, tooMany("spec.listenerPorts", len(s.ListenerPorts), MaxNetworkPolicyPorts))
	}
	seenPort := map[int]bool{}
	for i, port := range s.ListenerPorts {
		f := idx("spec.listenerPorts", i)
		if port < 1 || port > 65535 {
			errs = append(errs, Invalid(f, port, "must be between 1 and 65535"))
		} else if seenPort[port] {
			errs = append(errs, duplicate(f, port))
		}
		seenPort[port] = true
	}
	if len(s.Ingress) > MaxNetworkPolicyRules {
		errs = append(errs, tooMany("spec.ingress", len(s.Ingress), MaxNetworkPolicyRules))
	}
	names := map[string]int{}
	for i := range s.Ingress {
		r := &s.Ingress[i]
		f := idx("spec.ingress", i)
		errs = append(errs, validateNameField(f+".name", r.Name)...)
		if j, dup := names[r.Name]; dup && r.Name != "" {
			errs = append(errs, FieldError{Field: f + ".name", Reason: ReasonDuplicate,
				Message: fmt.Sprintf("duplicate rule name %q (also spec.ingress[%d].name)", r.Name, j)})
		} else {
			names[r.Name] = i
		}
		errs = append(errs, oneOf(f+".action", r.Action, []string{PolicyActionAllow, PolicyActionDeny})...)
		if r.Protocol != "" {
			errs = append(errs, oneOf(f+".protocol", r.Protocol, []string{NetworkProtocolTCP, NetworkProtocolUDP, NetworkProtocolAny})...)
		}
		for _, l := range []struct {
			field string
			cidrs []string
		}{{f + ".sources", r.Sources}, {f + ".notSources", r.NotSources}, {f + ".destinations", r.Destinations}} {
			if len(l.cidrs) > MaxNetworkPolicyCIDRs {
				errs = append(errs, tooMany(l.field, len(l.cidrs), MaxNetworkPolicyCIDRs))
				continue
			}
			for j, c := range l.cidrs {
				if _, err := ParseNetworkCIDR(c); err != nil {
					errs = append(errs, Invalid(idx(l.field, j), c, err.Error()))
				}
			}
		}
		if len(r.Ports) > MaxNetworkPolicyPorts {
			errs = append(errs, tooMany(f+".ports", len(r.Ports), MaxNetworkPolicyPorts))
		}
		for j, pr := range r.Ports {
			pf := idx(f+".ports", j)
			if pr.Port < 1 || pr.Port > 65535 {
				errs = append(errs, Invalid(pf+".port", pr.Port, "must be between 1 and 65535"))
			}
			if pr.EndPort != 0 && (pr.EndPort < pr.Port || pr.EndPort > 65535) {
				errs = append(errs, Invalid(pf+".endPort", pr.EndPort, "must be between port and 65535"))
			}
		}
	}
	return errs
}

// References lists the virtual site the policy is placed on.
func (p *NetworkPolicy) References() []Reference {
	if s := p.Spec.Sites; s != nil && s.VirtualSite != "" {
		return []Reference{{Field: "spec.sites.virtualSite", Kind: "VirtualSite", Name: s.VirtualSite}}
	}
	return nil
}

// ParseNetworkCIDR reads one address of a NetworkPolicy rule: a CIDR such
// as "10.0.0.0/8" or "2001:db8::/32" (host bits clear), or a bare address
// (a single host). IPv4-mapped IPv6 addresses are read as IPv4.
func ParseNetworkCIDR(s string) (netip.Prefix, error) {
	p, err := parseCIDR(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	if a := p.Addr(); a.Is4In6() {
		bits := p.Bits() - 96
		if bits < 0 {
			return netip.Prefix{}, fmt.Errorf("an IPv4-mapped prefix must be /96 or longer; write it as an IPv4 CIDR")
		}
		return netip.PrefixFrom(a.Unmap(), bits), nil
	}
	return p, nil
}

func tooMany(field string, n, limit int) FieldError {
	return FieldError{Field: field, Reason: ReasonTooLong, Message: fmt.Sprintf("at most %d entries are allowed, got %d", limit, n)}
}
