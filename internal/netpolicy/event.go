package netpolicy

import (
	"net/netip"
	"strconv"
	"sync/atomic"
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
	suppressed, ok := h.Policy.budget(h.Rule).take(now.Unix())
	if !ok {
		return nil
	}
	client := netip.AddrPortFrom(src.Addr().Unmap(), src.Port()).String()
	local := netip.AddrPortFrom(dst.Addr().Unmap(), dst.Port()).String()
	msg := "connection from " + client + " to " + local + " refused by NetworkPolicy " + h.Policy.ID() + " rule " + h.RuleName()
	if action == secevents.ActionDetected {
		msg = "connection from " + client + " to " + local + " would be refused by NetworkPolicy " + h.Policy.ID() + " (dryRun) rule " + h.RuleName()
	}
	if suppressed > 0 {
		msg += " (" + strconv.FormatUint(suppressed, 10) + " similar events suppressed)"
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

// MaxEventsPerRule bounds the events one rule (or a policy's default
// action) produces per second: a flood of refused connections is counted
// in full, but reported by at most this many events a second; the next
// event says how many were left out.
const MaxEventsPerRule = 100

// eventBudget is the event allowance of one rule in the current second.
type eventBudget struct {
	second     atomic.Int64
	n          atomic.Int64
	suppressed atomic.Uint64
}

// budget returns the budget of rule (-1: the default action); a nil
// budget (a Policy not made by Compile) is unbounded.
func (p *Policy) budget(rule int) *eventBudget {
	i := rule
	if i < 0 {
		i = len(p.Rules)
	}
	if i >= len(p.budgets) {
		return nil
	}
	return &p.budgets[i]
}

// take spends one event of the second now; it reports whether the event
// may go out, and then how many were suppressed since the last one.
func (b *eventBudget) take(now int64) (suppressed uint64, ok bool) {
	if b == nil {
		return 0, true
	}
	if s := b.second.Load(); s != now && b.second.CompareAndSwap(s, now) {
		b.n.Store(0)
	}
	if b.n.Add(1) > MaxEventsPerRule {
		b.suppressed.Add(1)
		return 0, false
	}
	return b.suppressed.Swap(0), true
}
