package node

import (
	"context"
	"io"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/meridian-platform/meridian/internal/authn"
	"github.com/meridian-platform/meridian/internal/authn/authstage"
	"github.com/meridian-platform/meridian/internal/dataplane"
	"github.com/meridian-platform/meridian/internal/dataplane/config"
	"github.com/meridian-platform/meridian/internal/policy"
	"github.com/meridian-platform/meridian/internal/policy/policystage"
	"github.com/meridian-platform/meridian/internal/ratelimit"
	"github.com/meridian-platform/meridian/internal/ratelimit/ratestage"
	"github.com/meridian-platform/meridian/internal/secevents"
	"github.com/meridian-platform/meridian/internal/waf"
	"github.com/meridian-platform/meridian/internal/waf/wafstage"
)

// Security is the security stack of a node: the stage factories of the
// authn, policy, ratelimit and waf slots of dataplane.Order, their metrics
// and the security-event writer they share. Its runtime state (rate-limit
// buckets, rule counters, compiled WAFs) outlives configuration pushes.
type Security struct {
	Stages     map[string]dataplane.StageFactory
	Collectors []prometheus.Collector
	events     *secevents.Writer
	limits     *ratelimit.Registry
}

// NewSecurity builds the security stages; events receives one JSON line per
// security event (WAF block or detection, policy deny, rate-limit hit,
// authentication failure).
func NewSecurity(events io.Writer) *Security {
	evw := secevents.NewWriter(events, secevents.WriterOptions{})
	ids := authstage.NewIdentities()
	polReg := policy.NewRegistry()
	rlReg := ratelimit.NewRegistry(0)
	wafMetrics := wafstage.NewMetrics()
	// Load balancers carry no authentication settings yet: authn stays
	// out of every pipeline until they do.
	noAuthn := func(*config.VHost) *authn.Config { return nil }
	return &Security{
		Stages: map[string]dataplane.StageFactory{
			"authn":     authstage.Factory(noAuthn, authstage.NewCache(), ids, authstage.Options{Events: evw}),
			"policy":    policystage.Factory(polReg, policystage.Options{Events: evw, Claims: ids.Claims}),
			"ratelimit": ratestage.Factory(rlReg, ratestage.Options{Events: evw, Claim: ids.Claim, APIKey: ids.APIKey}),
			"waf":       wafstage.Factory(waf.NewCache(16), wafstage.Options{Events: evw, Metrics: wafMetrics}),
		},
		Collectors: []prometheus.Collector{polReg, rlReg, wafMetrics, evw},
		events:     evw,
		limits:     rlReg,
	}
}

// ForwardEvents also hands every security event to fn (on a console-managed
// node: the agent's telemetry buffer); nil stops forwarding.
func (s *Security) ForwardEvents(fn func(*secevents.Event)) { s.events.SetOnEvent(fn) }

// Run drops idle rate-limit buckets every minute until ctx ends, then
// flushes the event writer.
func (s *Security) Run(ctx context.Context) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			s.events.Close()
			return
		case now := <-t.C:
			s.limits.Sweep(now)
		}
	}
}
