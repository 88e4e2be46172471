package secevents

import "github.com/prometheus/client_golang/prometheus"

var (
	descEvents  = prometheus.NewDesc("meridian_security_events_total", "Security events accepted for writing, by kind.", []string{"kind"}, nil)
	descDropped = prometheus.NewDesc("meridian_security_events_dropped_total", "Security events dropped because the queue was full.", nil, nil)
	descErrors  = prometheus.NewDesc("meridian_security_events_write_errors_total", "Security events that could not be written.", nil, nil)
)

// Describe implements prometheus.Collector.
func (w *Writer) Describe(ch chan<- *prometheus.Desc) {
	ch <- descEvents
	ch <- descDropped
	ch <- descErrors
}

// Collect implements prometheus.Collector.
func (w *Writer) Collect(ch chan<- prometheus.Metric) {
	s := w.Stats()
	for k, n := range s.ByKind {
		ch <- prometheus.MustNewConstMetric(descEvents, prometheus.CounterValue, float64(n), k)
	}
	ch <- prometheus.MustNewConstMetric(descDropped, prometheus.CounterValue, float64(s.Dropped))
	ch <- prometheus.MustNewConstMetric(descErrors, prometheus.CounterValue, float64(s.WriteErrors))
}

var _ prometheus.Collector = (*Writer)(nil)
