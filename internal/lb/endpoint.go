package lb

import (
	"strconv"
	"sync/atomic"
	"time"
)

// HealthState is an endpoint's active health-check state.
type HealthState int32

// Health states. A new endpoint starts HealthUnknown, which Pick treats as
// healthy; the first successful probe makes it HealthHealthy at once, and
// UnhealthyThreshold failed probes in a row make it HealthUnhealthy. Without
// an active health check an endpoint stays HealthUnknown.
const (
	HealthUnknown HealthState = iota
	HealthHealthy
	HealthUnhealthy
)

func (s HealthState) String() string {
	switch s {
	case HealthUnknown:
		return "unknown"
	case HealthHealthy:
		return "healthy"
	case HealthUnhealthy:
		return "unhealthy"
	}
	return "HealthState(" + strconv.Itoa(int(s)) + ")"
}

// flag bits of Endpoint.flags; an endpoint is available when none is set.
const (
	flagUnhealthy uint32 = 1 << iota
	flagEjected
)

// Result is what the data plane observed for one request sent to an
// endpoint.
type Result struct {
	// Status is the HTTP status of the response; 0 when there was none
	// (connect failure, reset, client gone, or a TCP session).
	Status int
	// ConnectFailed says the connection to the endpoint could not be
	// established (refused, timed out, TLS handshake failed).
	ConnectFailed bool
	// Duration of the request, for statistics.
	Duration time.Duration
}

// Endpoint is one resolved origin address of a pool. An *Endpoint and all of
// its runtime state live as long as its pool keeps an endpoint with the same
// resolved address, across any number of Registry.Update calls.
type Endpoint struct {
	pool       *Pool
	id         string
	addr       string // resolved ip:port
	hostname   string // host part of the configured address (name or IP)
	configAddr string // the configured host:port

	weight atomic.Int64
	flags  atomic.Uint32 // read by every Pick
	health atomic.Int32

	// The counters below are written on every request; keep them off the
	// cache line Pick reads.
	_               [64]byte
	active          atomic.Int64
	conns           atomic.Int64
	requests        atomic.Uint64
	connectFailures atomic.Uint64
	responses5xx    atomic.Uint64
	ejections       atomic.Uint64
	durationNanos   atomic.Int64

	consec5xx     atomic.Int32
	consecConnect atomic.Int32
	hcSuccesses   atomic.Int32
	hcFailures    atomic.Int32

	// guarded by pool.mu
	multiplier  int
	lastUneject time.Time
	ejectTimer  *time.Timer
	checker     *checker
}

func newEndpoint(p *Pool, addr, hostname, configAddr string) *Endpoint {
	e := &Endpoint{pool: p, addr: addr, hostname: hostname, configAddr: configAddr}
	e.id = strconv.FormatUint(HashString(addr), 16)
	return e
}

// ID is a stable opaque identifier of the endpoint (a hash of its resolved
// address), the same on every node; use it in affinity cookies and look it
// up with Pool.ByID.
func (e *Endpoint) ID() string { return e.id }

// Pool returns the pool the endpoint belongs to.
func (e *Endpoint) Pool() *Pool { return e.pool }

// Addr is the resolved ip:port to connect to.
func (e *Endpoint) Addr() string { return e.addr }

// Hostname is the host part of the configured address: the name to send as
// TLS SNI or Host when the configuration names no other (an IP literal when
// the address was one).
func (e *Endpoint) Hostname() string { return e.hostname }

// ConfigAddress is the configured host:port this endpoint was resolved from.
func (e *Endpoint) ConfigAddress() string { return e.configAddr }

// Weight is the endpoint's effective weight (configured weight, split among
// the addresses a host name resolved to).
func (e *Endpoint) Weight() int { return int(e.weight.Load()) }

// Health is the active health-check state.
func (e *Endpoint) Health() HealthState { return HealthState(e.health.Load()) }

// Ejected reports whether passive outlier detection has ejected the endpoint.
func (e *Endpoint) Ejected() bool { return e.flags.Load()&flagEjected != 0 }

// Available reports whether Pick would choose the endpoint outside panic
// mode: not unhealthy and not ejected. The data plane checks it before
// honouring an affinity cookie.
func (e *Endpoint) Available() bool { return e.flags.Load() == 0 }

// ActiveRequests is the number of requests between Begin and End.
func (e *Endpoint) ActiveRequests() int64 { return e.active.Load() }

// Begin records the start of a request to the endpoint. Every Begin must be
// followed by exactly one End.
func (e *Endpoint) Begin() {
	e.active.Add(1)
	e.requests.Add(1)
}

// End records the end of a request started with Begin and feeds passive
// outlier detection: ConnectFailed counts towards ConsecutiveConnectFailures,
// a status of 500 or more towards Consecutive5xx; any other status resets
// both; a Result with neither (Status 0) changes nothing.
func (e *Endpoint) End(res Result) {
	e.active.Add(-1)
	if res.Duration > 0 {
		e.durationNanos.Add(int64(res.Duration))
	}
	switch {
	case res.ConnectFailed:
		e.connectFailures.Add(1)
		n := e.consecConnect.Add(1)
		if o := e.pool.tab.Load().outlier; o != nil && o.ConsecutiveConnectFailures > 0 && n >= int32(o.ConsecutiveConnectFailures) {
			e.pool.outlierFailure(e, "consecutive connect failures", int(n))
		}
	case res.Status >= 500:
		e.responses5xx.Add(1)
		if e.consecConnect.Load() != 0 {
			e.consecConnect.Store(0)
		}
		n := e.consec5xx.Add(1)
		if o := e.pool.tab.Load().outlier; o != nil && o.Consecutive5xx > 0 && n >= int32(o.Consecutive5xx) {
			e.pool.outlierFailure(e, "consecutive 5xx", int(n))
		}
	case res.Status > 0:
		if e.consecConnect.Load() != 0 {
			e.consecConnect.Store(0)
		}
		if e.consec5xx.Load() != 0 {
			e.consec5xx.Store(0)
		}
	}
}

// ConnOpened asks to open a connection to the endpoint. It returns
// ErrCircuitOpen, counting nothing, when the pool's MaxConnections would be
// exceeded; then the caller must not open the connection and must not call
// ConnClosed. Otherwise the connection is counted until ConnClosed.
func (e *Endpoint) ConnOpened() error {
	p := e.pool
	if b := p.tab.Load().breaker; b != nil && b.MaxConnections > 0 {
		if p.conns.Add(1) > int64(b.MaxConnections) {
			p.conns.Add(-1)
			p.connRejected.Add(1)
			return ErrCircuitOpen
		}
	} else {
		p.conns.Add(1)
	}
	e.conns.Add(1)
	return nil
}

// ConnClosed records that a connection counted by ConnOpened is closed.
func (e *Endpoint) ConnClosed() {
	e.conns.Add(-1)
	e.pool.conns.Add(-1)
}

// EndpointStats is a snapshot of an endpoint's state and counters.
type EndpointStats struct {
	ID                string
	Address           string // resolved ip:port
	ConfigAddress     string
	Weight            int
	Health            HealthState
	Ejected           bool
	EjectionsTotal    uint64
	ActiveRequests    int64
	ActiveConnections int64
	RequestsTotal     uint64
	Responses5xxTotal uint64
	ConnectFailures   uint64
	// RequestSeconds is the sum of Result.Duration over all End calls.
	RequestSeconds float64
}

// Stats returns a snapshot of the endpoint's state and counters without
// allocating.
func (e *Endpoint) Stats() EndpointStats {
	return EndpointStats{
		ID:                e.id,
		Address:           e.addr,
		ConfigAddress:     e.configAddr,
		Weight:            e.Weight(),
		Health:            e.Health(),
		Ejected:           e.Ejected(),
		EjectionsTotal:    e.ejections.Load(),
		ActiveRequests:    e.active.Load(),
		ActiveConnections: e.conns.Load(),
		RequestsTotal:     e.requests.Load(),
		Responses5xxTotal: e.responses5xx.Load(),
		ConnectFailures:   e.connectFailures.Load(),
		RequestSeconds:    time.Duration(e.durationNanos.Load()).Seconds(),
	}
}
