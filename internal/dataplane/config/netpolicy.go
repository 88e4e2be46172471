package config

import (
	"fmt"
	"sort"
	"strings"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/internal/netpolicy"
)

// NetPolicy returns the matcher of the NetworkPolicies that select the
// listener with the given key ("address:port"), or nil when none does.
func (t *Table) NetPolicy(key string) *netpolicy.Matcher {
	if t.netPolicies == nil {
		return nil
	}
	return t.netPolicies.byListener[key]
}

// NetPolicyWarnings lists the listeners a NetworkPolicy would select but
// is not enforced on, because they also serve load balancers of other
// namespaces. The policy is in force everywhere else, so these are not
// Errors (which make a node fall back to an object's last good version).
func (t *Table) NetPolicyWarnings() []ObjectError {
	if t.netPolicies == nil {
		return nil
	}
	return t.netPolicies.warnings
}

// netPolicyTable is the compiled NetworkPolicy part of a Table.
type netPolicyTable struct {
	byListener map[string]*netpolicy.Matcher
	warnings   []ObjectError
}

// netPolicies compiles the NetworkPolicy objects (kept with the other
// kinds the compiler passes through) and gives each listener the policies
// that select it: those of the namespace of the load balancers it serves,
// filtered by listenerPorts. A listener serving load balancers of several
// namespaces gets none: one namespace's rules must not refuse another's
// clients. Such a listener is reported (NetPolicyWarnings) against each
// policy that would have selected it; the policy is still enforced on its
// other listeners.
func (c *compiler) netPolicies() {
	var objs []*v1.NetworkPolicy
	for _, o := range c.t.others {
		if np, ok := o.(*v1.NetworkPolicy); ok {
			objs = append(objs, np)
		}
	}
	if len(objs) == 0 {
		return
	}
	sortByName(objs)
	byNS := map[string][]*netpolicy.Policy{}
	for _, np := range objs {
		if err := validate(np); err != nil {
			c.fail(np, "NetworkPolicy", err)
			continue
		}
		p, err := netpolicy.Compile(np)
		if err != nil {
			c.fail(np, "NetworkPolicy", err)
			continue
		}
		byNS[p.Namespace] = append(byNS[p.Namespace], p)
	}
	type listener struct {
		key        string
		port       int
		namespaces []string
		lb         string // one load balancer served, for events
	}
	var ls []listener
	for k, l := range c.t.HTTP {
		seen := map[string]bool{}
		var nss []string
		lb := ""
		for _, vh := range l.VHosts() {
			if !seen[vh.Namespace] {
				seen[vh.Namespace] = true
				nss = append(nss, vh.Namespace)
			}
			if lb == "" || vh.ID < lb {
				lb = vh.ID
			}
		}
		sort.Strings(nss)
		ls = append(ls, listener{k, l.Port, nss, lb})
	}
	for k, l := range c.t.TCP {
		ns, _, _ := strings.Cut(l.ID, "/")
		ls = append(ls, listener{k, l.Port, []string{ns}, l.ID})
	}
	sort.Slice(ls, func(i, j int) bool { return ls[i].key < ls[j].key })
	npt := &netPolicyTable{byListener: map[string]*netpolicy.Matcher{}}
	c.t.netPolicies = npt
	for _, l := range ls {
		var sel []*netpolicy.Policy
		for _, ns := range l.namespaces {
			for _, p := range byNS[ns] {
				if p.Selects(l.port) {
					sel = append(sel, p)
				}
			}
		}
		if len(sel) == 0 {
			continue
		}
		if len(l.namespaces) > 1 {
			for _, p := range sel {
				others := make([]string, 0, len(l.namespaces)-1)
				for _, ns := range l.namespaces {
					if ns != p.Namespace {
						others = append(others, ns)
					}
				}
				npt.warnings = append(npt.warnings, ObjectError{Kind: "NetworkPolicy", Namespace: p.Namespace, Name: p.Name,
					Err: fmt.Errorf("not enforced on listener %s: it also serves load balancers of namespace %s", l.key, strings.Join(others, ", "))})
			}
			continue
		}
		m := netpolicy.NewMatcher(sel)
		m.LoadBalancer = l.lb
		npt.byListener[l.key] = m
	}
}
