package lb

import (
	"crypto"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Algorithm names an endpoint selection algorithm. The values are the ones
// OriginPool.spec.loadBalancing accepts, so the data plane can convert with
// lb.Algorithm(spec.LoadBalancing).
type Algorithm string

// Selection algorithms.
const (
	// RoundRobin is smooth weighted round robin (nginx style): a weight-3
	// endpoint gets three picks out of every cycle, interleaved with the
	// others rather than in a burst.
	RoundRobin Algorithm = "roundRobin"
	// LeastRequest draws two endpoints at random (weighted) and picks the
	// one with fewer active requests per unit of weight.
	LeastRequest Algorithm = "leastRequest"
	// Random picks an endpoint at random, in proportion to its weight.
	Random Algorithm = "random"
	// RingHash places every endpoint at weight-proportional points of a
	// ketama-style hash ring; a key goes to the first point at or after its
	// hash.
	RingHash Algorithm = "ringHash"
	// Maglev looks the key up in a Maglev table (Google's Maglev paper,
	// weighted as in Envoy).
	Maglev Algorithm = "maglev"
)

// Defaults used when a field is zero.
const (
	DefaultHealthInterval        = 5 * time.Second
	DefaultHealthTimeout         = time.Second
	DefaultHealthyThreshold      = 2
	DefaultUnhealthyThreshold    = 3
	DefaultConsecutive5xx        = 5
	DefaultConsecutiveConnect    = 5
	DefaultOutlierInterval       = 10 * time.Second
	DefaultBaseEjectionTime      = 30 * time.Second
	DefaultMaxEjectionTime       = 300 * time.Second
	DefaultMaxEjectionPercent    = 10
	DefaultPanicThresholdPercent = 50
	DefaultResolveInterval       = 30 * time.Second
	DefaultMinRingSize           = 4096
	DefaultMaglevTableSize       = 65537
	maxWeight                    = 1 << 16
	maxRingSize                  = 1 << 22
	maxRRSequence                = 1 << 14
)

// PoolConfig is the desired state of one pool. The data plane builds it from
// an api/v1 OriginPool; lb knows nothing about the API types.
type PoolConfig struct {
	// ID is the pool's stable identity, e.g. "tenant/namespace/name".
	// Runtime state is kept per ID across updates.
	ID        string
	Endpoints []EndpointConfig
	// Algorithm defaults to RoundRobin.
	Algorithm   Algorithm
	HealthCheck *HealthCheckConfig // nil: no active health checks
	Outlier     *OutlierConfig     // nil: no passive outlier detection
	Breaker     *BreakerConfig     // nil: no circuit breaker limits
	// ResolveInterval is how often endpoint host names are re-resolved
	// (default 30s). Addresses with a literal IP are never resolved.
	ResolveInterval time.Duration
	// PanicThresholdPercent: when fewer than this percentage of the pool's
	// endpoints are available (healthy and not ejected), Pick ignores
	// health and ejections and picks among all endpoints, like Envoy's
	// healthy panic threshold. 0 means the default (50); a negative value
	// disables panic mode (Pick then fails with ErrNoHealthyEndpoint when
	// nothing is available).
	PanicThresholdPercent int
	// MinRingSize is the minimum number of points on a ringHash ring
	// (default 4096).
	MinRingSize int
	// MaglevTableSize is the size of a maglev lookup table; it must be a
	// prime (default 65537).
	MaglevTableSize int
}

// EndpointConfig is one configured origin.
type EndpointConfig struct {
	// Address is host:port. A host name is resolved; when it resolves to
	// several IP addresses the endpoint expands into one Endpoint per
	// address, the configured weight split evenly among them.
	Address string
	// Weight is the relative share of traffic (0 means 1).
	Weight int
}

// HealthCheckConfig configures active health checks. Exactly one of HTTP or
// TCP is set.
type HealthCheckConfig struct {
	HTTP *HTTPCheck
	TCP  *TCPCheck
	// Interval between two probes of one endpoint (default 5s).
	Interval time.Duration
	// Timeout of one probe (default 1s).
	Timeout time.Duration
	// HealthyThreshold consecutive successes make an unhealthy endpoint
	// healthy (default 2).
	HealthyThreshold int
	// UnhealthyThreshold consecutive failures make an endpoint unhealthy
	// (default 3).
	UnhealthyThreshold int
	// Jitter is the largest random delay added to every interval (default 0).
	Jitter time.Duration
	// TLS, when set, makes HTTP probes use HTTPS with this configuration
	// (cloned; ServerName defaults to the endpoint's host name) and TCP
	// probes a TLS handshake.
	TLS *tls.Config
}

// HTTPCheck probes with an HTTP request.
type HTTPCheck struct {
	Path   string // default "/"
	Host   string // Host header; default the endpoint's configured address
	Method string // default GET
	// ExpectedStatus lists the healthy status codes (default [200]).
	ExpectedStatus []int
	// HTTP2 makes the probe speak HTTP/2: over TLS (ALPN h2) when the
	// check has TLS, else h2c with prior knowledge. For origins that speak
	// HTTP/2 only.
	HTTP2 bool
}

// TCPCheck probes by connecting; when Send is set it is written, and when
// Expect is set the reply must start with it.
type TCPCheck struct {
	Send   string
	Expect string
}

// OutlierConfig configures passive outlier detection from Endpoint.End.
type OutlierConfig struct {
	// Consecutive5xx ejects an endpoint after that many 5xx results in a
	// row (0: default 5; negative: never).
	Consecutive5xx int
	// ConsecutiveConnectFailures ejects after that many failed connects in
	// a row (0: default 5; negative: never).
	ConsecutiveConnectFailures int
	// Interval: for every Interval an endpoint stays un-ejected, its
	// ejection multiplier goes down by one (default 10s).
	Interval time.Duration
	// BaseEjectionTime is multiplied by the number of recent ejections of
	// the endpoint (default 30s), capped at MaxEjectionTime (default 300s
	// or BaseEjectionTime if larger).
	BaseEjectionTime time.Duration
	MaxEjectionTime  time.Duration
	// MaxEjectionPercent bounds the share of the pool's endpoints ejected
	// at the same time (0: default 10; at least one endpoint may always be
	// ejected).
	MaxEjectionPercent int
}

// BreakerConfig bounds the load sent to a pool. Zero means unlimited.
type BreakerConfig struct {
	MaxConnections     int // open connections to all endpoints of the pool
	MaxPendingRequests int // requests waiting for a connection
	MaxRequests        int // requests in flight
}

// normalized returns a copy of c with defaults filled in, or an error naming
// the offending field.
func (c PoolConfig) normalized() (PoolConfig, error) {
	if c.ID == "" {
		return c, errors.New("id: must not be empty")
	}
	switch c.Algorithm {
	case "":
		c.Algorithm = RoundRobin
	case RoundRobin, LeastRequest, Random, RingHash, Maglev:
	default:
		return c, fmt.Errorf("algorithm: unsupported value %q", c.Algorithm)
	}
	eps := make([]EndpointConfig, len(c.Endpoints))
	for i, e := range c.Endpoints {
		if _, _, err := splitAddress(e.Address); err != nil {
			return c, fmt.Errorf("endpoints[%d].address: %w", i, err)
		}
		switch {
		case e.Weight == 0:
			e.Weight = 1
		case e.Weight < 0 || e.Weight > maxWeight:
			return c, fmt.Errorf("endpoints[%d].weight: %d is not between 1 and %d", i, e.Weight, maxWeight)
		}
		eps[i] = e
	}
	c.Endpoints = eps
	if c.HealthCheck != nil {
		h, err := c.HealthCheck.normalized()
		if err != nil {
			return c, fmt.Errorf("healthCheck.%w", err)
		}
		c.HealthCheck = h
	}
	if c.Outlier != nil {
		o := *c.Outlier
		if o.Consecutive5xx == 0 {
			o.Consecutive5xx = DefaultConsecutive5xx
		}
		if o.ConsecutiveConnectFailures == 0 {
			o.ConsecutiveConnectFailures = DefaultConsecutiveConnect
		}
		if o.Interval <= 0 {
			o.Interval = DefaultOutlierInterval
		}
		if o.BaseEjectionTime <= 0 {
			o.BaseEjectionTime = DefaultBaseEjectionTime
		}
		if o.MaxEjectionTime <= 0 {
			o.MaxEjectionTime = max(DefaultMaxEjectionTime, o.BaseEjectionTime)
		}
		if o.MaxEjectionPercent == 0 {
			o.MaxEjectionPercent = DefaultMaxEjectionPercent
		}
		if o.MaxEjectionPercent < 0 || o.MaxEjectionPercent > 100 {
			return c, fmt.Errorf("outlier.maxEjectionPercent: %d is not between 0 and 100", o.MaxEjectionPercent)
		}
		c.Outlier = &o
	}
	if c.Breaker != nil {
		b := *c.Breaker
		if b.MaxConnections < 0 || b.MaxPendingRequests < 0 || b.MaxRequests < 0 {
			return c, errors.New("breaker: limits must not be negative")
		}
		c.Breaker = &b
	}
	if c.ResolveInterval <= 0 {
		c.ResolveInterval = DefaultResolveInterval
	}
	if c.PanicThresholdPercent == 0 {
		c.PanicThresholdPercent = DefaultPanicThresholdPercent
	}
	if c.PanicThresholdPercent > 100 {
		return c, fmt.Errorf("panicThresholdPercent: %d is above 100", c.PanicThresholdPercent)
	}
	if c.MinRingSize <= 0 {
		c.MinRingSize = DefaultMinRingSize
	}
	if c.MinRingSize > maxRingSize {
		return c, fmt.Errorf("minRingSize: %d is above %d", c.MinRingSize, maxRingSize)
	}
	if c.MaglevTableSize == 0 {
		c.MaglevTableSize = DefaultMaglevTableSize
	}
	if c.MaglevTableSize < 2 || c.MaglevTableSize > maxRingSize || !isPrime(c.MaglevTableSize) {
		return c, fmt.Errorf("maglevTableSize: %d is not a prime between 2 and %d", c.MaglevTableSize, maxRingSize)
	}
	return c, nil
}

func (h *HealthCheckConfig) normalized() (*HealthCheckConfig, error) {
	n := *h
	switch {
	case n.HTTP != nil && n.TCP != nil:
		return nil, errors.New("tcp: only one of http and tcp may be set")
	case n.HTTP == nil && n.TCP == nil:
		return nil, errors.New("http: one of http or tcp is required")
	}
	if n.HTTP != nil {
		hc := *n.HTTP
		if hc.Path == "" {
			hc.Path = "/"
		}
		if !strings.HasPrefix(hc.Path, "/") {
			return nil, fmt.Errorf("http.path: %q does not start with /", hc.Path)
		}
		if hc.Method == "" {
			hc.Method = "GET"
		}
		if len(hc.ExpectedStatus) == 0 {
			hc.ExpectedStatus = []int{200}
		} else {
			hc.ExpectedStatus = slices.Clone(hc.ExpectedStatus)
		}
		n.HTTP = &hc
	}
	if n.TCP != nil {
		tc := *n.TCP
		n.TCP = &tc
	}
	if n.Interval <= 0 {
		n.Interval = DefaultHealthInterval
	}
	if n.Timeout <= 0 {
		n.Timeout = DefaultHealthTimeout
	}
	if n.HealthyThreshold <= 0 {
		n.HealthyThreshold = DefaultHealthyThreshold
	}
	if n.UnhealthyThreshold <= 0 {
		n.UnhealthyThreshold = DefaultUnhealthyThreshold
	}
	if n.Jitter < 0 {
		n.Jitter = 0
	}
	return &n, nil
}

// equal reports whether two normalized health checks probe the same way.
func (h *HealthCheckConfig) equal(o *HealthCheckConfig) bool {
	if h == nil || o == nil {
		return h == o
	}
	if h.Interval != o.Interval || h.Timeout != o.Timeout || h.HealthyThreshold != o.HealthyThreshold ||
		h.UnhealthyThreshold != o.UnhealthyThreshold || h.Jitter != o.Jitter || !tlsEqual(h.TLS, o.TLS) {
		return false
	}
	if (h.HTTP == nil) != (o.HTTP == nil) || (h.TCP == nil) != (o.TCP == nil) {
		return false
	}
	if h.HTTP != nil && (h.HTTP.Path != o.HTTP.Path || h.HTTP.Host != o.HTTP.Host ||
		h.HTTP.Method != o.HTTP.Method || !slices.Equal(h.HTTP.ExpectedStatus, o.HTTP.ExpectedStatus)) {
		return false
	}
	return h.TCP == nil || *h.TCP == *o.TCP
}

// splitAddress splits host:port and checks the port.
func splitAddress(addr string) (host, port string, err error) {
	host, port, err = net.SplitHostPort(addr)
	if err != nil {
		return "", "", fmt.Errorf("%q is not host:port: %w", addr, err)
	}
	if host == "" {
		return "", "", fmt.Errorf("%q has an empty host", addr)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return "", "", fmt.Errorf("%q: port must be between 1 and 65535", addr)
	}
	return host, port, nil
}

func isPrime(n int) bool {
	if n < 2 {
		return false
	}
	for d := 2; d*d <= n; d++ {
		if n%d == 0 {
			return false
		}
	}
	return true
}

// tlsEqual reports whether two probe TLS configurations are the same
// pointer or, without callbacks, have the same settings, so that a data
// plane building a fresh *tls.Config per configuration does not restart
// every health checker.
func tlsEqual(a, b *tls.Config) bool {
	if a == b {
		return true
	}
	if a == nil || b == nil {
		return false
	}
	if a.GetClientCertificate != nil || b.GetClientCertificate != nil || a.VerifyPeerCertificate != nil ||
		b.VerifyPeerCertificate != nil || a.VerifyConnection != nil || b.VerifyConnection != nil ||
		a.GetCertificate != nil || b.GetCertificate != nil || a.GetConfigForClient != nil || b.GetConfigForClient != nil {
		return false
	}
	if a.ServerName != b.ServerName || a.InsecureSkipVerify != b.InsecureSkipVerify ||
		a.MinVersion != b.MinVersion || a.MaxVersion != b.MaxVersion || !slices.Equal(a.NextProtos, b.NextProtos) ||
		!slices.Equal(a.CipherSuites, b.CipherSuites) || !slices.Equal(a.CurvePreferences, b.CurvePreferences) {
		return false
	}
	if (a.RootCAs == nil) != (b.RootCAs == nil) || (a.RootCAs != nil && !a.RootCAs.Equal(b.RootCAs)) {
		return false
	}
	return slices.EqualFunc(a.Certificates, b.Certificates, func(x, y tls.Certificate) bool {
		return keyEqual(x.PrivateKey, y.PrivateKey) && slices.EqualFunc(x.Certificate, y.Certificate, func(p, q []byte) bool {
			return string(p) == string(q)
		})
	})
}

// keyEqual compares private keys with their Equal method (every standard key
// type has one; == would panic on ed25519's slice type).
func keyEqual(a, b crypto.PrivateKey) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	k, ok := a.(interface{ Equal(crypto.PrivateKey) bool })
	return ok && k.Equal(b)
}
