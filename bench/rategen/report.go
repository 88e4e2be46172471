package main

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

func ms(ns int64) float64 { return float64(ns) / 1e6 }

// summary is the one-line, machine-readable form of r: key=value pairs
// after the word "rategen", latencies in milliseconds.
func summary(r *result) string {
	return fmt.Sprintf("rategen url=%s rate=%g conns=%d window_s=%.3f span_s=%.3f sent=%d ok=%d non2xx=%d errors=%d timeouts=%d conn_errors=%d "+
		"achieved_rps=%.1f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f p999_ms=%.3f max_ms=%.3f mean_ms=%.3f lag_p50_ms=%.3f lag_p99_ms=%.3f lag_max_ms=%.3f "+
		"from_send_p50_ms=%.3f from_send_p99_ms=%.3f cpu_us_per_req=%.2f",
		r.url, r.rate, r.conns, r.window.Seconds(), r.span.Seconds(), r.sent, r.ok, r.non2xx, r.errors, r.timeouts, r.connErrs,
		r.achieved(), ms(r.lat.quantile(0.5)), ms(r.lat.quantile(0.9)), ms(r.lat.quantile(0.99)), ms(r.lat.quantile(0.999)), ms(r.lat.max), r.lat.mean()/1e6,
		ms(r.lag.quantile(0.5)), ms(r.lag.quantile(0.99)), ms(r.lag.max), ms(r.svc.quantile(0.5)), ms(r.svc.quantile(0.99)), r.cpuPerReq())
}

// table writes r for people.
func table(w io.Writer, r *result) {
	fmt.Fprintf(w, "target     %s, %d connections\n", r.url, r.conns)
	fmt.Fprintf(w, "rate       %g/s asked, %.1f/s answered (%d responses in %.3f s; %d sent in a window of %.3f s)\n",
		r.rate, r.achieved(), r.responses(), r.span.Seconds(), r.sent, r.window.Seconds())
	fmt.Fprintf(w, "answers    2xx %d, other status %d, errors %d (timeouts %d), failed connections %d\n", r.ok, r.non2xx, r.errors, r.timeouts, r.connErrs)
	if r.firstErr != "" {
		fmt.Fprintf(w, "first error %s\n", r.firstErr)
	}
	fmt.Fprintf(w, "%-10s %9s %9s %9s %9s %9s %9s %9s\n", "ms", "min", "p50", "p90", "p99", "p99.9", "max", "mean")
	for _, row := range []struct {
		name string
		h    *histogram
	}{{"latency", &r.lat}, {"send lag", &r.lag}, {"from send", &r.svc}} {
		h := row.h
		fmt.Fprintf(w, "%-10s %9.3f %9.3f %9.3f %9.3f %9.3f %9.3f %9.3f\n", row.name, ms(h.min), ms(h.quantile(0.5)), ms(h.quantile(0.9)),
			ms(h.quantile(0.99)), ms(h.quantile(0.999)), ms(h.max), h.mean()/1e6)
	}
	fmt.Fprintf(w, "(latency: from each request's intended send time to its response's end; send lag: from the intended time to the send;\n"+
		" from send: from the send to the response's end, the latency a closed-loop client would report)\n")
	fmt.Fprintf(w, "generator  %.2f µs CPU per request (%.3f s user+system for %d requests, warm-up included)\n", r.cpuPerReq(), r.cpu.Seconds(), r.all)
}

// The result file (-out) keeps a run whole so that runs can be merged
// (-merge): "key value" lines, then one "lat"/"lag" line per bucket in use.
const fileMagic = "rategen-result 1"

func writeResult(w io.Writer, r *result) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "%s\nurl %s\nrate %g\nconns %d\nwindow_ns %d\nspan_ns %d\nsent %d\nok %d\nnon2xx %d\nerrors %d\ntimeouts %d\nconn_errors %d\nall %d\ncpu_ns %d\n",
		fileMagic, r.url, r.rate, r.conns, r.window, r.span, r.sent, r.ok, r.non2xx, r.errors, r.timeouts, r.connErrs, r.all, r.cpu)
	if r.firstErr != "" {
		fmt.Fprintf(bw, "first_error %s\n", strings.ReplaceAll(r.firstErr, "\n", " "))
	}
	for _, h := range []struct {
		name string
		h    *histogram
	}{{"lat", &r.lat}, {"lag", &r.lag}, {"svc", &r.svc}} {
		fmt.Fprintf(bw, "%s_stats %d %d %d %g\n", h.name, h.h.n, h.h.min, h.h.max, h.h.sum)
		for i, c := range h.h.counts {
			if c > 0 {
				fmt.Fprintf(bw, "%s %d %d\n", h.name, i, c)
			}
		}
	}
	return bw.Flush()
}

// readResult reads what writeResult wrote; name is for errors.
func readResult(rd io.Reader, name string) (*result, error) {
	r := &result{}
	sc := bufio.NewScanner(rd)
	line := 0
	bad := func(what string) error { return fmt.Errorf("%s:%d: %s", name, line, what) }
	for sc.Scan() {
		line++
		text := sc.Text()
		if line == 1 {
			if text != fileMagic {
				return nil, bad(fmt.Sprintf("not a rategen result (want %q first)", fileMagic))
			}
			continue
		}
		key, val, _ := strings.Cut(text, " ")
		var err error
		u := func(p *uint64) { *p, err = strconv.ParseUint(val, 10, 64) }
		d := func(p *time.Duration) {
			var v int64
			v, err = strconv.ParseInt(val, 10, 64)
			*p = time.Duration(v)
		}
		switch key {
		case "url":
			r.url = val
		case "first_error":
			r.firstErr = val
		case "rate":
			r.rate, err = strconv.ParseFloat(val, 64)
		case "conns":
			r.conns, err = strconv.Atoi(val)
		case "window_ns":
			d(&r.window)
		case "span_ns":
			d(&r.span)
		case "cpu_ns":
			d(&r.cpu)
		case "sent":
			u(&r.sent)
		case "ok":
			u(&r.ok)
		case "non2xx":
			u(&r.non2xx)
		case "errors":
			u(&r.errors)
		case "timeouts":
			u(&r.timeouts)
		case "conn_errors":
			u(&r.connErrs)
		case "all":
			u(&r.all)
		case "lat_stats", "lag_stats", "svc_stats":
			h := r.hist(strings.TrimSuffix(key, "_stats"))
			if _, e := fmt.Sscanf(val, "%d %d %d %g", &h.n, &h.min, &h.max, &h.sum); e != nil {
				return nil, bad(fmt.Sprintf("%s: %v", key, e))
			}
		case "lat", "lag", "svc":
			h := r.hist(key)
			var i int
			var c uint64
			if _, e := fmt.Sscanf(val, "%d %d", &i, &c); e != nil {
				return nil, bad(fmt.Sprintf("bucket: %v", e))
			}
			if i < 0 || i >= nBuckets {
				return nil, bad(fmt.Sprintf("bucket %d out of range [0, %d)", i, nBuckets))
			}
			h.counts[i] += c
		default:
			return nil, bad(fmt.Sprintf("unknown key %q", key))
		}
		if err != nil {
			return nil, bad(fmt.Sprintf("%s: %v", key, err))
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	if line == 0 {
		return nil, fmt.Errorf("%s: empty", name)
	}
	for _, h := range []*histogram{&r.lat, &r.lag, &r.svc} {
		var n uint64
		for _, c := range h.counts {
			n += c
		}
		if n != h.n {
			return nil, fmt.Errorf("%s: histogram buckets hold %d values, its stats say %d", name, n, h.n)
		}
	}
	return r, nil
}
