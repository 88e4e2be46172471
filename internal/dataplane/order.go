package dataplane

import (
	"github.com/meridian-platform/meridian/internal/dataplane/config"
)

// StageEnv is what stage factories may use.
type StageEnv struct {
	AccessLog *AccessLogWriter
	// Table is the table being installed: a factory finds the objects its
	// load balancer names (spec.appFirewall, spec.servicePolicies, ...)
	// with Table.Object.
	Table *config.Table
}

// StageFactory builds a stage for one virtual host, or returns nil when the
// virtual host does not need it.
type StageFactory func(vh *config.VHost, env *StageEnv) Stage

// StageDef is one slot of the stage order.
type StageDef struct {
	Name string
	// New is nil for a slot whose capability is not built yet.
	New StageFactory
}

// Order is the one place where the request stages are ordered (DESIGN.md,
// "Data plane"). To add a capability: write a package with a pure core and
// a Stage implementing the callbacks it needs (RequestHeadersFilter,
// RequestBodyFilter with a buffering limit, ResponseHeadersFilter, ...,
// DoneHook), and set New in its slot below to a factory that returns nil
// for load balancers that do not use it. Transports need no change.
//
// Accept, network firewall, TLS and HTTP parsing happen in
// the transports before this list; route match and real-client-address
// resolution happen in the core right before it; load balancing and the
// origin exchange right after the request callbacks. Response callbacks run
// in the reverse order.
var Order = []StageDef{
	{Name: "requestid", New: newRequestIDStage},
	{Name: "cors", New: newCORSStage},
	{Name: "authn"},
	{Name: "policy"},
	{Name: "ratelimit"},
	{Name: "waf"},
	{Name: "apiprotect"},
	{Name: "headers", New: newHeadersStage},
	{Name: "discovery"},
	{Name: "accesslog", New: newAccessLogStage},
}

// BuildPipeline builds the pipeline of a virtual host from Order.
func BuildPipeline(vh *config.VHost, env *StageEnv) *Pipeline { return buildPipeline(vh, env, nil) }

// buildPipeline builds a pipeline from Order, taking the factory of a slot
// from extra when it has one.
func buildPipeline(vh *config.VHost, env *StageEnv, extra map[string]StageFactory) *Pipeline {
	var stages []Stage
	for _, d := range Order {
		f := d.New
		if x, ok := extra[d.Name]; ok {
			f = x
		}
		if f == nil {
			continue
		}
		if s := f(vh, env); s != nil {
			stages = append(stages, s)
		}
	}
	p := newPipeline(stages)
	p.evServable = true
	for _, s := range stages {
		switch s := s.(type) {
		case *requestIDStage, headersStage:
			// The loop sets the request id itself, and makes the request
			// header changes it can (Target.Rewrite; routes with response
			// header changes are handed off).
		case *accessLogStage:
			p.accessLog = s
		default:
			if ls, ok := s.(LoopStage); ok && ls.LoopServable() {
				if f, ok := s.(RequestHeadersFilter); ok {
					p.evReq = append(p.evReq, f)
				}
				if f, ok := s.(DoneHook); ok {
					p.evDone = append(p.evDone, f)
				}
				continue
			}
			p.evServable = false
		}
	}
	return p
}
