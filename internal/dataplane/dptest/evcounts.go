package dptest

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// EvloopCounts returns the event loops' request and hand-off counters
// (meridian_evloop_requests_total, meridian_evloop_handoffs_total) summed
// over the series reg gathers.
func EvloopCounts(tb testing.TB, reg prometheus.Gatherer) (reqs, handoffs float64) {
	tb.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		tb.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			switch mf.GetName() {
			case "meridian_evloop_requests_total":
				reqs += m.GetCounter().GetValue()
			case "meridian_evloop_handoffs_total":
				handoffs += m.GetCounter().GetValue()
			}
		}
	}
	return reqs, handoffs
}
