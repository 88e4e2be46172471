package netpolicy

import (
	"net/netip"
	"time"

	"github.com/meridian-platform/meridian/internal/secevents"
)

// EventKind is the secevents kind of NetworkPolicy events.
const EventKind = "network"

// Event builds the security event for a connection a policy denied
// (enforced: action denied) or would have denied (dryRun: action
// detected) from src to the listener address dst, on a listener serving
// the load balancer lb ("namespace/name", may be empty). It returns nil
// when r holds no such verdict.
func Event(r Result, now time.Time, lb string, src, dst netip.AddrPort) *secevents.Event {
	h, action := r.Hit, secevents.ActionDenied
	if r.Action != Deny {
		if r.DryRun.Policy == nil || r.DryRun.Action != Deny {
			return nil
		}
		h, action = r.DryRun, secevents.ActionDetected
	}
	if h.Policy == nil {
		return nil
	}
	client := netip.AddrPortFrom(src.Addr().Unmap(), src.Port()).String()
	local := netip.AddrPortFrom(dst.Addr().Unmap(), dst.Port()).String()
	msg := "connection from " + client + " to " + local + " refused by NetworkPolicy " + h.Policy.ID() + " rule " + h.RuleName()
	if action == secevents.ActionDetected {
		msg = "connection from " + client + " to " + local + " would be refused by NetworkPolicy " + h.Policy.ID() + " (dryRun) rule " + h.RuleName()
	}
	return &secevents.Event{
		Time:   now,
		Kind:   EventKind,
		Action: action,
		// The listener's load balancer: the console attributes events
		// to a tenant through it.
		LoadBalancer: lb,
		Client:       client,
		Source:       h.Policy.ID() + "/" + h.RuleName(),
		Message:      msg,
		Rules:        []secevents.RuleHit{{Name: h.RuleName(), Message: h.Action.String()}},
	}
}
