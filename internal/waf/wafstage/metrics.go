package wafstage

import (
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics counts WAF verdicts and rule hits per AppFirewall. Share one
// between configuration pushes (it is keyed by firewall identity) and
// register it with Prometheus.
type Metrics struct {
	verdicts sync.Map // verdictKey -> *atomic.Uint64
	rules    sync.Map // ruleKey -> *atomic.Uint64
}

type verdictKey struct{ firewall, verdict string }
type ruleKey struct {
	firewall string
	rule     int
}

// NewMetrics returns empty counters.
func NewMetrics() *Metrics { return &Metrics{} }

func counter(m *sync.Map, k any) *atomic.Uint64 {
	if v, ok := m.Load(k); ok {
		return v.(*atomic.Uint64)
	}
	v, _ := m.LoadOrStore(k, new(atomic.Uint64))
	return v.(*atomic.Uint64)
}

func (m *Metrics) observe(firewall, verdict string, rules []int) {
	if m == nil {
		return
	}
	counter(&m.verdicts, verdictKey{firewall, verdict}).Add(1)
	for _, id := range rules {
		counter(&m.rules, ruleKey{firewall, id}).Add(1)
	}
}

// RuleHits returns the hits of one rule of a firewall.
func (m *Metrics) RuleHits(firewall string, rule int) uint64 {
	if v, ok := m.rules.Load(ruleKey{firewall, rule}); ok {
		return v.(*atomic.Uint64).Load()
	}
	return 0
}

var (
	descVerdicts = prometheus.NewDesc("meridian_waf_requests_total", "Requests inspected by an AppFirewall, by verdict (pass, detected, blocked).", []string{"firewall", "verdict"}, nil)
	descRules    = prometheus.NewDesc("meridian_waf_rule_hits_total", "Rule matches by AppFirewall and rule id.", []string{"firewall", "rule"}, nil)
)

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- descVerdicts
	ch <- descRules
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	m.verdicts.Range(func(k, v any) bool {
		key := k.(verdictKey)
		ch <- prometheus.MustNewConstMetric(descVerdicts, prometheus.CounterValue, float64(v.(*atomic.Uint64).Load()), key.firewall, key.verdict)
		return true
	})
	m.rules.Range(func(k, v any) bool {
		key := k.(ruleKey)
		ch <- prometheus.MustNewConstMetric(descRules, prometheus.CounterValue, float64(v.(*atomic.Uint64).Load()), key.firewall, strconv.Itoa(key.rule))
		return true
	})
}

var _ prometheus.Collector = (*Metrics)(nil)
