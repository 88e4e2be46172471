package main

import "time"

// result is what a run measured. Counts are of the requests whose
// intended send time fell in the measured window (after the warm-up).
type result struct {
	url      string
	rate     float64
	conns    int
	window   time.Duration // the measured window asked for
	span     time.Duration // from the window's start to its last response (at least window)
	sent     uint64
	ok       uint64 // 2xx
	non2xx   uint64
	errors   uint64 // no whole response: connection or parse errors, timeouts
	timeouts uint64
	connErrs uint64        // connections that failed (counted whether a request was on them or not)
	all      uint64        // every request sent, the warm-up's too
	cpu      time.Duration // the generator's user+system CPU time over all of them
	lat      histogram     // from the intended send time to the response's end
	lag      histogram     // from the intended send time to the send
	svc      histogram     // from the send to the response's end (what a closed-loop client would see)
	firstErr string
}

func (r *result) responses() uint64 { return r.ok + r.non2xx }

// achieved is the responses per second over the span.
func (r *result) achieved() float64 {
	if r.span <= 0 {
		return 0
	}
	return float64(r.responses()) / r.span.Seconds()
}

// cpuPerReq is the generator's CPU time per request sent, in µs.
func (r *result) cpuPerReq() float64 {
	if r.all == 0 {
		return 0
	}
	return float64(r.cpu) / 1e3 / float64(r.all)
}

func (r *result) merge(o *result) {
	if r.url == "" {
		r.url, r.rate, r.conns = o.url, o.rate, o.conns
	}
	r.window += o.window
	r.span += o.span
	r.sent += o.sent
	r.ok += o.ok
	r.non2xx += o.non2xx
	r.errors += o.errors
	r.timeouts += o.timeouts
	r.connErrs += o.connErrs
	r.all += o.all
	r.cpu += o.cpu
	r.lat.merge(&o.lat)
	r.lag.merge(&o.lag)
	r.svc.merge(&o.svc)
	if r.firstErr == "" {
		r.firstErr = o.firstErr
	}
}

// hist is the histogram a result file names lat, lag or svc.
func (r *result) hist(name string) *histogram {
	switch name {
	case "lag":
		return &r.lag
	case "svc":
		return &r.svc
	}
	return &r.lat
}
