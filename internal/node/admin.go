package node

import (
	"encoding/json"
	"net/http"
	"net/http/pprof"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/internal/lb"
)

// ConfigDump is what /config returns: the effective configuration (secrets
// redacted), what was skipped, and the runtime state of pools.
type ConfigDump struct {
	Generation int64          `json:"generation"`
	AppliedAt  time.Time      `json:"appliedAt"`
	Objects    []v1.Object    `json:"objects"`
	Problems   []Problem      `json:"problems"`
	Listeners  []ListenerInfo `json:"listeners"`
	Pools      []lb.PoolStats `json:"pools"`
}

// ListenerInfo describes one listener of the effective configuration.
type ListenerInfo struct {
	Address       string   `json:"address"`
	Kind          string   `json:"kind"`
	TLS           bool     `json:"tls,omitempty"`
	HTTP2         bool     `json:"http2,omitempty"`
	H2C           bool     `json:"h2c,omitempty"`
	ProxyProtocol bool     `json:"proxyProtocol,omitempty"`
	LoadBalancers []string `json:"loadBalancers"`
}

func (n *node) adminHandler(reg *prometheus.Registry) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		n.mu.Lock()
		ready := n.ready
		n.mu.Unlock()
		if !ready {
			http.Error(w, "configuration not loaded yet", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /config", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(n.dump())
	})
	if n.opts.EnablePprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}

func (n *node) dump() ConfigDump {
	n.mu.Lock()
	d := ConfigDump{Generation: n.generation, AppliedAt: n.appliedAt, Problems: append([]Problem{}, n.problems...)}
	n.mu.Unlock()
	t := n.dp.Table()
	d.Objects = append([]v1.Object{}, t.Objects...)
	for k, l := range t.HTTP {
		li := ListenerInfo{Address: k, Kind: "http", TLS: l.TLS != nil, HTTP2: l.HTTP2, H2C: l.H2C, ProxyProtocol: l.ProxyProtocol}
		for _, vh := range l.VHosts() {
			li.LoadBalancers = append(li.LoadBalancers, vh.ID)
		}
		sort.Strings(li.LoadBalancers)
		d.Listeners = append(d.Listeners, li)
	}
	for k, l := range t.TCP {
		d.Listeners = append(d.Listeners, ListenerInfo{Address: k, Kind: "tcp", ProxyProtocol: l.ProxyProtocol, LoadBalancers: []string{l.ID}})
	}
	sort.Slice(d.Listeners, func(i, j int) bool { return d.Listeners[i].Address < d.Listeners[j].Address })
	for _, p := range n.dp.Registry().Pools() {
		d.Pools = append(d.Pools, p.Stats())
	}
	return d
}
