package node

import (
	"context"
	"io"
	"time"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/meridian-platform/meridian/internal/authn"
	"github.com/meridian-platform/meridian/internal/authn/authstage"
	"github.com/meridian-platform/meridian/internal/dataplane"
	"github.com/meridian-platform/meridian/internal/dataplane/config"
	"github.com/meridian-platform/meridian/internal/policy"
	"github.com/meridian-platform/meridian/internal/policy/geoip"
	"github.com/meridian-platform/meridian/internal/policy/policystage"
	"github.com/meridian-platform/meridian/internal/ratelimit"
	"github.com/meridian-platform/meridian/internal/ratelimit/ratestage"
	"github.com/meridian-platform/meridian/internal/secevents"
	"github.com/meridian-platform/meridian/internal/secroute"
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
	geo        *geoip.DB
}

// NewSecurity builds the security stages; events receives one JSON line per
// security event (WAF block or detection, policy deny, rate-limit hit,
// authentication failure).
func NewSecurity(events io.Writer) *Security { return NewSecurityWith(events, SecurityOptions{}) }

// SecurityOptions are the optional inputs of the security stack.
type SecurityOptions struct {
	// GeoIP answers the country and ASN matches of service policies
	// (meridian node --geoip-db / --geoip-asn-db); nil: policies using
	// them are configuration errors.
	GeoIP *geoip.DB
}

// NewSecurityWith is NewSecurity with options. Each slot runs, per request,
// the settings of the route it matched (secroute): the route's own
// appFirewall, servicePolicies, rateLimiter and authentication, else the
// load balancer's, with the namespace's SecurityBindings first.
func NewSecurityWith(events io.Writer, o SecurityOptions) *Security {
	evw := secevents.NewWriter(events, secevents.WriterOptions{})
	ids := authstage.NewIdentities()
	polReg := policy.NewRegistry()
	rlReg := ratelimit.NewRegistry(0)
	wafMetrics := wafstage.NewMetrics()
	authnOf := func(vh *config.VHost) *authn.Config { return vh.Authn }
	var geo policy.Geo
	if o.GeoIP != nil {
		geo = o.GeoIP
	}
	return &Security{
		Stages: map[string]dataplane.StageFactory{
			"authn": secroute.Authn(authstage.Factory(authnOf, authstage.NewCache(), ids,
				authstage.Options{Events: evw, PeerCertificates: (*dataplane.Exchange).PeerCertificates})),
			"policy": secroute.Policy(policystage.Factory(polReg,
				policystage.Options{Events: evw, Claims: ids.Claims, Geo: geo, SNI: sniBytes})),
			"ratelimit": secroute.RateLimit(ratestage.Factory(rlReg, ratestage.Options{Events: evw, Claim: ids.Claim, APIKey: ids.APIKey})),
			"waf":       secroute.WAF(wafstage.Factory(waf.NewCache(16), wafstage.Options{Events: evw, Metrics: wafMetrics})),
		},
		Collectors: []prometheus.Collector{polReg, rlReg, wafMetrics, evw},
		events:     evw,
		limits:     rlReg,
		geo:        o.GeoIP,
	}
}

// sniBytes lends the exchange's TLS server name to the policy matcher,
// which only reads it (no copy per request).
func sniBytes(x *dataplane.Exchange) []byte {
	s := x.SNI()
	if s == "" {
		return nil
	}
	return unsafe.Slice(unsafe.StringData(s), len(s))
}

// CompileOptions are the config.Compile options that match this stack
// (which GeoIP databases policies may use).
func (s *Security) CompileOptions() []config.CompileOption {
	return []config.CompileOption{config.WithGeoIP(s.geo.HasCountry(), s.geo.HasASN())}
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
