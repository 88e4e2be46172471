package dataplane

import "github.com/prometheus/client_golang/prometheus"

var (
	descEvRequests = prometheus.NewDesc("meridian_evloop_requests_total",
		"HTTP/1.1 requests the event-loop engine forwarded itself, by listener (the listener's current loops).", []string{"listener"}, nil)
	descEvHandoffs = prometheus.NewDesc("meridian_evloop_handoffs_total",
		"Connections the event-loop engine handed to the goroutine engine (a request it does not serve itself), by listener.", []string{"listener"}, nil)
)

// evCollector reports the counters of the listeners served by the event
// loops, so that an operator sees which engine serves a load balancer.
type evCollector struct{ s *Server }

func (c evCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descEvRequests
	ch <- descEvHandoffs
}

func (c evCollector) Collect(ch chan<- prometheus.Metric) {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	for key, l := range c.s.listeners {
		if l.ev == nil {
			continue
		}
		reqs, handoffs := l.ev.counts()
		ch <- prometheus.MustNewConstMetric(descEvRequests, prometheus.CounterValue, float64(reqs), key)
		ch <- prometheus.MustNewConstMetric(descEvHandoffs, prometheus.CounterValue, float64(handoffs), key)
	}
}
