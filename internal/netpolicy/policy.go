package netpolicy

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"

	v1 "github.com/meridian-platform/meridian/api/v1"
)

// Action is what a rule or a policy decides.
type Action uint8

// Actions.
const (
	Allow Action = iota
	Deny
)

func (a Action) String() string {
	if a == Deny {
		return v1.PolicyActionDeny
	}
	return v1.PolicyActionAllow
}

// Proto is the transport protocol of a connection or of a rule.
type Proto uint8

// Protocols. ProtoAny is only meaningful in a rule.
const (
	ProtoAny Proto = iota
	TCP
	UDP
)

// DefaultRule is the rule label of decisions taken by a default action.
const DefaultRule = "(default)"

// Policy is one compiled NetworkPolicy. It is immutable once compiled.
type Policy struct {
	Namespace string
	Name      string
	Priority  int
	DryRun    bool
	Default   Action
	Rules     []Rule
	// ListenerPorts is the listener selection (empty: every listener of
	// the namespace's load balancers).
	ListenerPorts []int

	// budgets bound the events of each rule, then of the default action
	// (len(Rules)+1; nil: unbounded).
	budgets []eventBudget
	// cells cache the counter of each rule, then of the default action,
	// in the last Metrics that counted it (a policy's rule always decides
	// with the same action and mode).
	cells []atomic.Pointer[cellRef]
}

// ID is "namespace/name".
func (p *Policy) ID() string { return p.Namespace + "/" + p.Name }

// Selects reports whether the policy applies to a listener on port.
func (p *Policy) Selects(port int) bool {
	return len(p.ListenerPorts) == 0 || slices.Contains(p.ListenerPorts, port)
}

// Rule is one compiled ingress rule.
type Rule struct {
	Name   string
	Action Action
	Proto  Proto
	// Empty src or dst sets with hasSrc/hasDst unset match any address.
	src, notSrc, dst ipSet
	hasSrc, hasDst   bool
	ports            []portRange // empty: any port
}

type portRange struct{ lo, hi uint16 }

// Matches reports whether the rule's conditions all hold for a connection
// from src to dst (addresses already unmapped).
func (r *Rule) Matches(proto Proto, src netip.Addr, dst netip.AddrPort) bool {
	if r.Proto != ProtoAny && r.Proto != proto {
		return false
	}
	if len(r.ports) > 0 {
		port, in := dst.Port(), false
		for _, pr := range r.ports {
			if port >= pr.lo && port <= pr.hi {
				in = true
				break
			}
		}
		if !in {
			return false
		}
	}
	if r.hasSrc && !r.src.contains(src) {
		return false
	}
	if r.notSrc.contains(src) {
		return false
	}
	if r.hasDst && !r.dst.contains(dst.Addr().Unmap()) {
		return false
	}
	return true
}

// Compile turns a validated, defaulted NetworkPolicy into a Policy. It
// checks again what it relies on, so that an object that skipped
// validation gives an error naming the field rather than a wrong matcher.
func Compile(np *v1.NetworkPolicy) (*Policy, error) {
	s := &np.Spec
	p := &Policy{Namespace: np.Metadata.Namespace, Name: np.Metadata.Name, Priority: s.Priority,
		ListenerPorts: slices.Clone(s.ListenerPorts)}
	switch s.Mode {
	case v1.PolicyModeEnforce, "":
	case v1.PolicyModeDryRun:
		p.DryRun = true
	default:
		return nil, fieldErr("spec.mode", s.Mode, "must be enforce or dryRun")
	}
	var err error
	if p.Default, err = parseAction("spec.defaultAction", s.DefaultAction, Allow); err != nil {
		return nil, err
	}
	p.Rules = make([]Rule, len(s.Ingress))
	p.budgets = make([]eventBudget, len(s.Ingress)+1)
	p.cells = make([]atomic.Pointer[cellRef], len(s.Ingress)+1)
	for i := range s.Ingress {
		if err := compileRule(&p.Rules[i], &s.Ingress[i], fmt.Sprintf("spec.ingress[%d]", i)); err != nil {
			return nil, err
		}
	}
	return p, nil
}

func compileRule(r *Rule, in *v1.NetworkPolicyRule, f string) error {
	r.Name = in.Name
	if r.Name == "" {
		return fieldErr(f+".name", "", "is required")
	}
	var err error
	if r.Action, err = parseAction(f+".action", in.Action, 0); err != nil {
		return err
	}
	switch strings.ToLower(in.Protocol) {
	case "", "any":
		r.Proto = ProtoAny
	case "tcp":
		r.Proto = TCP
	case "udp":
		r.Proto = UDP
	default:
		return fieldErr(f+".protocol", in.Protocol, "must be TCP, UDP or any")
	}
	if r.src, err = parseSet(f+".sources", in.Sources); err != nil {
		return err
	}
	if r.notSrc, err = parseSet(f+".notSources", in.NotSources); err != nil {
		return err
	}
	if r.dst, err = parseSet(f+".destinations", in.Destinations); err != nil {
		return err
	}
	r.hasSrc, r.hasDst = len(in.Sources) > 0, len(in.Destinations) > 0
	for j, pr := range in.Ports {
		pf := fmt.Sprintf("%s.ports[%d]", f, j)
		end := pr.EndPort
		if end == 0 {
			end = pr.Port
		}
		if pr.Port < 1 || pr.Port > 65535 {
			return fieldErr(pf+".port", pr.Port, "must be between 1 and 65535")
		}
		if end < pr.Port || end > 65535 {
			return fieldErr(pf+".endPort", pr.EndPort, "must be between port and 65535")
		}
		r.ports = append(r.ports, portRange{uint16(pr.Port), uint16(end)})
	}
	return nil
}

func parseAction(field, s string, def Action) (Action, error) {
	switch s {
	case "":
		if field == "spec.defaultAction" {
			return def, nil
		}
		return 0, fieldErr(field, s, "is required: allow or deny")
	case v1.PolicyActionAllow:
		return Allow, nil
	case v1.PolicyActionDeny:
		return Deny, nil
	}
	return 0, fieldErr(field, s, "must be allow or deny")
}

// ParseCIDRs reads a list of CIDRs or bare addresses (field names the list
// in errors: "spec.ingress[0].sources").
func ParseCIDRs(field string, list []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(list))
	for i, c := range list {
		p, err := v1.ParseNetworkCIDR(c)
		if err != nil {
			return nil, fieldErr(fmt.Sprintf("%s[%d]", field, i), c, err.Error())
		}
		out = append(out, p)
	}
	return out, nil
}

func parseSet(field string, list []string) (ipSet, error) {
	ps, err := ParseCIDRs(field, list)
	if err != nil {
		return ipSet{}, err
	}
	return newIPSet(ps), nil
}

func fieldErr(field string, v any, msg string) error {
	return v1.FieldErrors{v1.Invalid(field, v, msg)}
}
