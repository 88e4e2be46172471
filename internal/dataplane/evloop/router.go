package evloop

import (
	"crypto/tls"
	"net/netip"
	"time"

	"github.com/meridian-platform/meridian/internal/lb"
)

// Request is what a Router sees of a request head. The slices point into
// the connection's buffer and are valid only during the call.
type Request struct {
	Method, Target, Host []byte
	// Path is the target's path when it is in normal form (no
	// percent-encoding, dot segments or empty segments), else nil; Query
	// is what follows "?".
	Path, Query []byte
	// Headers is the raw header block (lines ending in CRLF).
	Headers []byte
	Peer    netip.AddrPort
	// HTTP10 is set for an HTTP/1.0 request.
	HTTP10 bool
	// TLS is the state of a TLS client's connection (nil on plaintext),
	// made once per connection when its handshake ends: the same state
	// the goroutine engine gives its stages. It must not be changed.
	TLS *tls.ConnectionState

	match matchRequest
}

// Header returns the first value of the named header (ASCII
// case-insensitive).
func (r *Request) Header(name string) ([]byte, bool) {
	var v []byte
	found := false
	forEachHeader(r.Headers, func(n, val []byte) {
		if !found && len(n) == len(name) && equalFoldString(n, name) {
			v, found = val, true
		}
	})
	return v, found
}

// Router decides where a request goes: to an origin, or (ok false) to
// Handoff with its connection.
type Router interface {
	Route(r *Request) (t Target, ok bool)
}

// Target is where a Router sends a request.
type Target struct {
	Origin netip.AddrPort
	// Tag is handed back to Config.Observe when the exchange ends (for
	// example the route, for its metrics); a pointer costs no allocation.
	Tag any
	// Endpoint, when set, is the pool endpoint Origin is: the exchange is
	// counted on it (lb.Endpoint Begin and End: its request and 5xx
	// counters, active requests, passive health) as the goroutine engine
	// counts its own.
	Endpoint *lb.Endpoint
	// Timeout, when set, replaces Config.OriginTimeout for this exchange
	// (how long the origin may stay silent); ConnectTimeout replaces
	// Config.ConnectTimeout.
	Timeout, ConnectTimeout time.Duration
	// BodyTimeout, when set, replaces Config.BodyTimeout for this
	// request's body (its load balancer's own).
	BodyTimeout time.Duration
	// Rewrite, when set, changes the request head sent to the origin.
	Rewrite *Rewrite
	// Answer, when set, answers the request instead of an origin (Origin
	// and Endpoint are not used).
	Answer Answerer
	// RequestID, when set, is the request's id (the one the Router's
	// stages saw): with Config.RequestID, the loop sends and logs it
	// instead of making one. The loop copies it before it calls the
	// Router again.
	RequestID []byte
}

// Stats counts what the loops did.
type Stats struct {
	Connections, Requests, Rejected, Handoffs, OriginConnects uint64
	// Panics counts events whose handling panicked (a bug); the
	// connection was closed and the loop went on.
	Panics uint64
}
