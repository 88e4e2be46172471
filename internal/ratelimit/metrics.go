package ratelimit

import "github.com/prometheus/client_golang/prometheus"

var (
	descRequests = prometheus.NewDesc("meridian_ratelimit_requests_total", "Requests counted by a RateLimiter, by outcome (allowed, limited).", []string{"limiter", "outcome"}, nil)
	descKeys     = prometheus.NewDesc("meridian_ratelimit_keys", "Buckets held by a RateLimiter.", []string{"limiter"}, nil)
	descEvicted  = prometheus.NewDesc("meridian_ratelimit_evictions_total", "Buckets dropped before they were full (memory bound reached).", []string{"limiter"}, nil)
)

// Describe implements prometheus.Collector.
func (r *Registry) Describe(ch chan<- *prometheus.Desc) {
	ch <- descRequests
	ch <- descKeys
	ch <- descEvicted
}

// Collect implements prometheus.Collector.
func (r *Registry) Collect(ch chan<- prometheus.Metric) {
	r.mu.Lock()
	stores := make(map[string]*Store, len(r.stores))
	for id, s := range r.stores {
		stores[id] = s
	}
	r.mu.Unlock()
	for id, s := range stores {
		st := s.Stats()
		ch <- prometheus.MustNewConstMetric(descRequests, prometheus.CounterValue, float64(st.Allowed), id, "allowed")
		ch <- prometheus.MustNewConstMetric(descRequests, prometheus.CounterValue, float64(st.Limited), id, "limited")
		ch <- prometheus.MustNewConstMetric(descKeys, prometheus.GaugeValue, float64(st.Keys), id)
		ch <- prometheus.MustNewConstMetric(descEvicted, prometheus.CounterValue, float64(st.Evictions), id)
	}
}

var _ prometheus.Collector = (*Registry)(nil)
