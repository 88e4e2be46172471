package dataplane

import (
	"net"
	"net/netip"
	"time"

	"github.com/meridian-platform/meridian/internal/netpolicy"
)

// admit checks a just-accepted connection against the NetworkPolicies of
// the listener in the table in force (swapped atomically by Apply, so a
// reload changes the verdicts of new connections only). A refused
// connection is reset at once: no PROXY header is read, no TLS handshake
// is started. It reports whether the connection may be served.
func (l *listener) admit(c net.Conn, peer, local netip.AddrPort) bool {
	ok, reset := l.verdict(peer, local)
	if ok {
		return true
	}
	if tc, isTCP := c.(*net.TCPConn); isTCP && reset {
		_ = tc.SetLinger(0) // RST, not FIN: the client learns at once
	}
	_ = c.Close()
	return false
}

// verdict is admit's decision for a connection from peer to local: whether
// it may be served, and when not, whether it is reset (a NetworkPolicy
// refused it) rather than closed.
func (l *listener) verdict(peer, local netip.AddrPort) (ok, reset bool) {
	t := l.s.state.Load().table
	m := t.NetPolicy(l.key)
	if m == nil {
		if t.HTTP[l.key] == nil && t.TCP[l.key] == nil {
			// A listener Apply has started but not yet put in force (or
			// one that is stopping): the table that will name it may hold
			// policies for it that this one cannot check, so the
			// connection, a moment early, is not let through unchecked.
			return false, false
		}
		return true, false
	}
	r := m.Check(netpolicy.TCP, peer, local)
	l.s.netpol.Observe(r)
	if r.Action == netpolicy.Allow && r.DryRun.Action != netpolicy.Deny {
		return true, false
	}
	if sink := l.s.opts.SecurityEvents; sink != nil {
		if e := netpolicy.Event(r, time.Now(), m.LoadBalancer, peer, local); e != nil {
			sink.Emit(e)
		}
	}
	if r.Action == netpolicy.Allow {
		return true, false
	}
	return false, true
}
