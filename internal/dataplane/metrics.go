package dataplane

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/meridian-platform/meridian/internal/dataplane/config"
	"github.com/meridian-platform/meridian/internal/lb"
)

// metrics are the data plane's Prometheus metrics. Per-route and per-LB
// children are resolved when a table is applied, so the request path only
// increments counters.
type metrics struct {
	requests     *prometheus.CounterVec
	latency      *prometheus.HistogramVec
	retries      *prometheus.CounterVec
	bytesIn      *prometheus.CounterVec
	bytesOut     *prometheus.CounterVec
	connections  *prometheus.GaugeVec
	connRejected prometheus.Counter
	rejected     prometheus.Counter
	tlsErrors    prometheus.Counter
	tcpSessions  *prometheus.CounterVec
}

var statusClasses = [...]string{"1xx", "2xx", "3xx", "4xx", "5xx", "other"}

func newMetrics(r prometheus.Registerer, reg *lb.Registry) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "meridian_http_requests_total",
			Help: "HTTP requests by load balancer, route, pool and status class."}, []string{"namespace", "loadbalancer", "route", "pool", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "meridian_http_request_duration_seconds",
			Help: "Time from request head to response, by load balancer and route.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)},
			[]string{"namespace", "loadbalancer", "route"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "meridian_http_retries_total",
			Help: "Retries sent to another endpoint, by route."}, []string{"namespace", "loadbalancer", "route"}),
		bytesIn: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "meridian_http_request_bytes_total",
			Help: "Request bytes received (head and body) by load balancer."}, []string{"namespace", "loadbalancer"}),
		bytesOut: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "meridian_http_response_body_bytes_total",
			Help: "Response body bytes sent by load balancer."}, []string{"namespace", "loadbalancer"}),
		connections: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "meridian_active_connections",
			Help: "Client connections open, by listener."}, []string{"listener"}),
		connRejected: prometheus.NewCounter(prometheus.CounterOpts{Name: "meridian_connections_rejected_total",
			Help: "Client connections closed at accept because the listener was at maxConnections."}),
		rejected: prometheus.NewCounter(prometheus.CounterOpts{Name: "meridian_requests_rejected_total",
			Help: "Requests rejected for malformed framing, oversize heads or bad PROXY headers."}),
		tlsErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "meridian_tls_handshake_errors_total",
			Help: "Failed TLS handshakes with clients."}),
		tcpSessions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "meridian_tcp_sessions_total",
			Help: "TCP load-balancer sessions by load balancer and pool."}, []string{"loadbalancer", "pool"}),
	}
	if r != nil {
		r.MustRegister(m.requests, m.latency, m.retries, m.bytesIn, m.bytesOut, m.connections, m.connRejected,
			m.rejected, m.tlsErrors, m.tcpSessions, &poolCollector{reg: reg})
	}
	return m
}

type routeMetrics struct {
	codes   [len(statusClasses)]prometheus.Counter
	latency prometheus.Observer
	retries prometheus.Counter
	budget  retryBudget
	rt      *config.Route
	// streamy is set once the route answered with a large body: its
	// answers are streamed from then on.
	streamy atomic.Bool
}

type lbMetrics struct {
	bytesIn, bytesOut prometheus.Counter
}

// seriesKey names one labelled series of a metric vector.
type seriesKey struct {
	vec    seriesVec
	labels [5]string
}

type seriesVec uint8

const (
	vecRequests seriesVec = iota
	vecLatency
	vecRetries
	vecBytesIn
	vecBytesOut
	vecTCPSessions
)

// seriesSet is the labelled series a configuration has. When a new
// configuration replaces it, the series of load balancers, routes and
// pools it no longer has are deleted (a series for something that is gone
// disappears from /metrics); those still there keep their values.
type seriesSet map[seriesKey]struct{}

func (ss seriesSet) add(v seriesVec, labels ...string) {
	var k seriesKey
	k.vec = v
	copy(k.labels[:], labels)
	ss[k] = struct{}{}
}

func (m *metrics) forLB(vh *config.VHost, ss seriesSet) *lbMetrics {
	ss.add(vecBytesIn, vh.Namespace, vh.Name)
	ss.add(vecBytesOut, vh.Namespace, vh.Name)
	return &lbMetrics{bytesIn: m.bytesIn.WithLabelValues(vh.Namespace, vh.Name), bytesOut: m.bytesOut.WithLabelValues(vh.Namespace, vh.Name)}
}

func (m *metrics) forRoute(vh *config.VHost, r *config.Route, ss seriesSet) *routeMetrics {
	pool := ""
	if r.Pool != nil {
		pool = r.Pool.Name
	}
	rm := &routeMetrics{latency: m.latency.WithLabelValues(vh.Namespace, vh.Name, r.Name),
		retries: m.retries.WithLabelValues(vh.Namespace, vh.Name, r.Name), rt: r}
	ss.add(vecLatency, vh.Namespace, vh.Name, r.Name)
	ss.add(vecRetries, vh.Namespace, vh.Name, r.Name)
	for i, c := range statusClasses {
		rm.codes[i] = m.requests.WithLabelValues(vh.Namespace, vh.Name, r.Name, pool, c)
		ss.add(vecRequests, vh.Namespace, vh.Name, r.Name, pool, c)
	}
	return rm
}

// forTCP records the series a TCP load balancer may use.
func (m *metrics) forTCP(tl *config.TCPListener, ss seriesSet) {
	if tl.Default != nil {
		ss.add(vecTCPSessions, tl.ID, tl.Default.ID)
	}
	for _, r := range tl.Routes {
		if r.Pool != nil {
			ss.add(vecTCPSessions, tl.ID, r.Pool.ID)
		}
	}
}

// dropStale deletes the series old has and cur does not. Requests still
// running on the old configuration count into detached series.
func (m *metrics) dropStale(old, cur seriesSet) {
	for k := range old {
		if _, ok := cur[k]; ok {
			continue
		}
		l := k.labels[:]
		switch k.vec {
		case vecRequests:
			m.requests.DeleteLabelValues(l...)
		case vecLatency:
			m.latency.DeleteLabelValues(l[:3]...)
		case vecRetries:
			m.retries.DeleteLabelValues(l[:3]...)
		case vecBytesIn:
			m.bytesIn.DeleteLabelValues(l[:2]...)
		case vecBytesOut:
			m.bytesOut.DeleteLabelValues(l[:2]...)
		case vecTCPSessions:
			m.tcpSessions.DeleteLabelValues(l[:2]...)
		}
	}
}

func (rm *routeMetrics) observe(status int, d time.Duration) {
	i := status/100 - 1
	if i < 0 || i >= len(statusClasses)-1 {
		i = len(statusClasses) - 1
	}
	rm.codes[i].Inc()
	rm.latency.Observe(d.Seconds())
	rm.budget.request()
}

// retryBudget allows retries up to a percentage of the requests of the
// current second, but at least MinPerSecond.
type retryBudget struct {
	sec      atomic.Int64
	requests atomic.Int64
	retries  atomic.Int64
}

func (b *retryBudget) roll(now int64) {
	if s := b.sec.Load(); s != now && b.sec.CompareAndSwap(s, now) {
		b.requests.Store(0)
		b.retries.Store(0)
	}
}

func (b *retryBudget) request() {
	b.roll(time.Now().Unix())
	b.requests.Add(1)
}

func (rm *routeMetrics) allowRetry() bool {
	if rm == nil || rm.rt.Retry == nil {
		return false
	}
	b := &rm.budget
	b.roll(time.Now().Unix())
	limit := max(int64(rm.rt.Retry.MinPerSecond), b.requests.Load()*int64(rm.rt.Retry.BudgetPercent)/100)
	if rm.rt.Retry.BudgetPercent == 0 && rm.rt.Retry.MinPerSecond == 0 {
		limit = 1 << 62
	}
	if b.retries.Add(1) > limit {
		b.retries.Add(-1)
		return false
	}
	return true
}

// poolCollector exports pool and endpoint state from the lb registry at
// scrape time.
type poolCollector struct{ reg *lb.Registry }

var (
	descHealthy   = prometheus.NewDesc("meridian_endpoint_healthy", "1 when the endpoint passes health checks.", []string{"pool", "endpoint"}, nil)
	descEjected   = prometheus.NewDesc("meridian_endpoint_ejected", "1 while outlier detection ejects the endpoint.", []string{"pool", "endpoint"}, nil)
	descEjections = prometheus.NewDesc("meridian_endpoint_ejections_total", "Ejections of the endpoint.", []string{"pool", "endpoint"}, nil)
	descEPReq     = prometheus.NewDesc("meridian_endpoint_requests_total", "Requests sent to the endpoint.", []string{"pool", "endpoint"}, nil)
	descEP5xx     = prometheus.NewDesc("meridian_endpoint_responses_5xx_total", "5xx answers of the endpoint.", []string{"pool", "endpoint"}, nil)
	descEPConnF   = prometheus.NewDesc("meridian_endpoint_connect_failures_total", "Failed connects to the endpoint.", []string{"pool", "endpoint"}, nil)
	descEPActive  = prometheus.NewDesc("meridian_endpoint_active_requests", "Requests in flight to the endpoint.", []string{"pool", "endpoint"}, nil)
	descEPConns   = prometheus.NewDesc("meridian_endpoint_connections", "Open connections to the endpoint.", []string{"pool", "endpoint"}, nil)
	descPoolAvail = prometheus.NewDesc("meridian_pool_available_endpoints", "Endpoints neither unhealthy nor ejected.", []string{"pool"}, nil)
	descPoolRej   = prometheus.NewDesc("meridian_pool_circuit_rejections_total", "Requests refused by the circuit breaker.", []string{"pool", "limit"}, nil)
)

func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descHealthy, descEjected, descEjections, descEPReq, descEP5xx, descEPConnF, descEPActive, descEPConns, descPoolAvail, descPoolRej} {
		ch <- d
	}
}

func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	b := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	for _, p := range c.reg.Pools() {
		st := p.Stats()
		ch <- prometheus.MustNewConstMetric(descPoolAvail, prometheus.GaugeValue, float64(st.Available), st.ID)
		ch <- prometheus.MustNewConstMetric(descPoolRej, prometheus.CounterValue, float64(st.RequestsRejected), st.ID, "requests")
		ch <- prometheus.MustNewConstMetric(descPoolRej, prometheus.CounterValue, float64(st.PendingRejected), st.ID, "pending")
		ch <- prometheus.MustNewConstMetric(descPoolRej, prometheus.CounterValue, float64(st.ConnectionsRejected), st.ID, "connections")
		for _, e := range st.Endpoints {
			ch <- prometheus.MustNewConstMetric(descHealthy, prometheus.GaugeValue, b(e.Health != lb.HealthUnhealthy), st.ID, e.Address)
			ch <- prometheus.MustNewConstMetric(descEjected, prometheus.GaugeValue, b(e.Ejected), st.ID, e.Address)
			ch <- prometheus.MustNewConstMetric(descEjections, prometheus.CounterValue, float64(e.EjectionsTotal), st.ID, e.Address)
			ch <- prometheus.MustNewConstMetric(descEPReq, prometheus.CounterValue, float64(e.RequestsTotal), st.ID, e.Address)
			ch <- prometheus.MustNewConstMetric(descEP5xx, prometheus.CounterValue, float64(e.Responses5xxTotal), st.ID, e.Address)
			ch <- prometheus.MustNewConstMetric(descEPConnF, prometheus.CounterValue, float64(e.ConnectFailures), st.ID, e.Address)
			ch <- prometheus.MustNewConstMetric(descEPActive, prometheus.GaugeValue, float64(e.ActiveRequests), st.ID, e.Address)
			ch <- prometheus.MustNewConstMetric(descEPConns, prometheus.GaugeValue, float64(e.ActiveConnections), st.ID, e.Address)
		}
	}
}
