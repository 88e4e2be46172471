package netpolicy

import (
	"sort"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics counts the verdicts of NetworkPolicies as
// meridian_netpolicy_connections_total{namespace,policy,rule,action,mode}.
// Counters outlive configuration reloads (they are keyed by names, not by
// compiled policies), so they only ever grow. A Metrics is a
// prometheus.Collector; the zero value is not usable, use NewMetrics.
type Metrics struct {
	desc *prometheus.Desc
	mu   sync.RWMutex
	cell map[cellKey]*atomic.Uint64
}

type cellKey struct {
	namespace, policy, rule string
	action                  Action
	dryRun                  bool
}

// NewMetrics returns counters, registered with reg when reg is not nil.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		desc: prometheus.NewDesc("meridian_netpolicy_connections_total",
			"Connections decided by a NetworkPolicy rule (rule=\"(default)\": by the default action), by action; mode=dryRun counts what a dryRun policy would have done.",
			[]string{"namespace", "policy", "rule", "action", "mode"}, nil),
		cell: map[cellKey]*atomic.Uint64{},
	}
	if reg != nil {
		reg.MustRegister(m)
	}
	return m
}

// Observe counts a verdict: its enforced decision and its dryRun one. It
// does not allocate once a counter exists.
func (m *Metrics) Observe(r Result) {
	if m == nil {
		return
	}
	if r.Hit.Policy != nil {
		m.counter(r.Hit, false).Add(1)
	}
	if r.DryRun.Policy != nil {
		m.counter(r.DryRun, true).Add(1)
	}
}

// Value returns a counter's value (for tests and admin output).
func (m *Metrics) Value(namespace, policy, rule string, action Action, dryRun bool) uint64 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if c := m.cell[cellKey{namespace, policy, rule, action, dryRun}]; c != nil {
		return c.Load()
	}
	return 0
}

func (m *Metrics) counter(h Hit, dryRun bool) *atomic.Uint64 {
	i := h.Rule
	if i < 0 {
		i = len(h.Policy.Rules)
	}
	var ref *atomic.Pointer[cellRef]
	if i < len(h.Policy.cells) {
		ref = &h.Policy.cells[i]
		if r := ref.Load(); r != nil && r.m == m && r.action == h.Action && r.dryRun == dryRun {
			return r.c
		}
	}
	k := cellKey{h.Policy.Namespace, h.Policy.Name, h.RuleName(), h.Action, dryRun}
	m.mu.RLock()
	c := m.cell[k]
	m.mu.RUnlock()
	if c == nil {
		m.mu.Lock()
		if c = m.cell[k]; c == nil {
			c = new(atomic.Uint64)
			m.cell[k] = c
		}
		m.mu.Unlock()
	}
	if ref != nil {
		ref.Store(&cellRef{m: m, c: c, action: h.Action, dryRun: dryRun})
	}
	return c
}

// cellRef is a counter cached in a compiled policy.
type cellRef struct {
	m      *Metrics
	c      *atomic.Uint64
	action Action
	dryRun bool
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) { ch <- m.desc }

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	m.mu.RLock()
	keys := make([]cellKey, 0, len(m.cell))
	for k := range m.cell {
		keys = append(keys, k)
	}
	vals := make([]uint64, len(keys))
	for i, k := range keys {
		vals[i] = m.cell[k].Load()
	}
	m.mu.RUnlock()
	idx := make([]int, len(keys))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool {
		x, y := keys[idx[a]], keys[idx[b]]
		if x.namespace != y.namespace {
			return x.namespace < y.namespace
		}
		if x.policy != y.policy {
			return x.policy < y.policy
		}
		if x.rule != y.rule {
			return x.rule < y.rule
		}
		if x.action != y.action {
			return x.action < y.action
		}
		return !x.dryRun && y.dryRun
	})
	for _, i := range idx {
		k := keys[i]
		mode := "enforce"
		if k.dryRun {
			mode = "dryRun"
		}
		ch <- prometheus.MustNewConstMetric(m.desc, prometheus.CounterValue, float64(vals[i]),
			k.namespace, k.policy, k.rule, k.action.String(), mode)
	}
}
