package policy

import "github.com/prometheus/client_golang/prometheus"

var descHits = prometheus.NewDesc("meridian_service_policy_rule_hits_total",
	"Decisions made by a ServicePolicy rule (rule \"\" is the default action); dry_run rules only counted.",
	[]string{"policy", "rule", "action", "dry_run"}, nil)

// Describe implements prometheus.Collector.
func (r *Registry) Describe(ch chan<- *prometheus.Desc) { ch <- descHits }

// Collect implements prometheus.Collector.
func (r *Registry) Collect(ch chan<- prometheus.Metric) {
	for _, c := range r.Counters() {
		dry := "false"
		if c.DryRun {
			dry = "true"
		}
		ch <- prometheus.MustNewConstMetric(descHits, prometheus.CounterValue, float64(c.Hits()), c.Policy, c.Rule, c.Action, dry)
	}
}

var _ prometheus.Collector = (*Registry)(nil)
