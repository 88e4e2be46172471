package policystage

import (
	"net/netip"
	"strconv"
	"sync"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/internal/dataplane"
	"github.com/meridian-platform/meridian/internal/dataplane/config"
	"github.com/meridian-platform/meridian/internal/policy"
	"github.com/meridian-platform/meridian/internal/secevents"
)

// ClaimsFunc returns the validated JWT claims of an exchange (set by the
// authn stage); nil when there are none.
type ClaimsFunc func(x *dataplane.Exchange) func(name string) ([]byte, bool)

// Stage evaluates the ServicePolicies of one load balancer.
type Stage struct {
	vhost  string
	set    *policy.Set
	err    error
	sink   secevents.Sink
	claims ClaimsFunc
	sni    func(x *dataplane.Exchange) []byte
}

var (
	_ dataplane.Stage                = (*Stage)(nil)
	_ dataplane.RequestHeadersFilter = (*Stage)(nil)
)

// Options are the optional hooks of a Stage.
type Options struct {
	// Events receives deny, redirect and dry-run events (may be nil).
	Events secevents.Sink
	// Claims gives access to JWT claims (nil: requests have no claims).
	Claims ClaimsFunc
	// SNI returns the TLS server name of an exchange (nil: none).
	SNI func(x *dataplane.Exchange) []byte
	// Geo answers country and ASN matches (nil: policies using them fail
	// to compile, and the stage fails closed).
	Geo policy.Geo
}

// New builds the stage for a load balancer ("namespace/name") from an
// already compiled set. A compile error (err != nil) makes the stage fail
// closed: every request is answered 503 until the policy is fixed.
func New(vhost string, set *policy.Set, err error, opts Options) *Stage {
	return &Stage{vhost: vhost, set: set, err: err, sink: opts.Events, claims: opts.Claims, sni: opts.SNI}
}

// Factory returns a dataplane.StageFactory for the "policy" slot. The
// ServicePolicies a load balancer names are found in the table being
// installed (StageEnv.Table); reg keeps hit counters across configuration
// pushes.
func Factory(reg *policy.Registry, opts Options) dataplane.StageFactory {
	return func(vh *config.VHost, env *dataplane.StageEnv) dataplane.Stage {
		if vh.Spec == nil || len(vh.Spec.ServicePolicies) == 0 {
			return nil
		}
		var pols []*v1.ServicePolicy
		var err error
		for _, name := range vh.Spec.ServicePolicies {
			p := lookup[*v1.ServicePolicy](env, "ServicePolicy", vh.Namespace, name)
			if p == nil {
				err = &missingError{namespace: vh.Namespace, name: name}
				break
			}
			pols = append(pols, p)
		}
		var set *policy.Set
		if err == nil {
			set, err = policy.CompileWith(pols, reg, policy.Options{Geo: opts.Geo})
		}
		return New(vh.ID, set, err, opts)
	}
}

type missingError struct{ namespace, name string }

func (e *missingError) Error() string {
	return "ServicePolicy " + e.namespace + "/" + e.name + " not found"
}

// Err returns the configuration error the stage fails closed on, if any.
func (s *Stage) Err() error { return s.err }

// Name implements dataplane.Stage.
func (s *Stage) Name() string { return "policy" }

// LoopServable implements dataplane.LoopStage: a policy decides from the
// request head alone (its SNI matcher sees the name of the connection's
// TLS state, which the loops give as the goroutine engine does; claims
// come from the authn stage, loop-servable only for the methods the loop
// can run) and changes no header.
func (s *Stage) LoopServable() bool { return true }

// request adapts an exchange to policy.Request; requests are pooled so
// that an evaluation does not allocate.
type request struct {
	s *Stage
	x *dataplane.Exchange
}

var requests = sync.Pool{New: func() any { return new(request) }}

func (r *request) ClientAddr() netip.Addr            { return r.x.Client }
func (r *request) RequestHost() []byte               { return r.x.Host }
func (r *request) RequestPath() []byte               { return r.x.Path }
func (r *request) RequestMethod() []byte             { return r.x.Method }
func (r *request) Header(name string) ([]byte, bool) { return r.x.ReqHeaders.Peek(name) }
func (r *request) Query(name string) ([]byte, bool)  { return r.x.Query(name) }
func (r *request) ServerName() []byte {
	if r.s.sni == nil {
		return nil
	}
	return r.s.sni(r.x)
}
func (r *request) Claim(name string) ([]byte, bool) {
	if r.s.claims == nil {
		return nil, false
	}
	if f := r.s.claims(r.x); f != nil {
		return f(name)
	}
	return nil, false
}

// OnRequestHeaders implements dataplane.RequestHeadersFilter.
func (s *Stage) OnRequestHeaders(x *dataplane.Exchange) dataplane.Action {
	if s.err != nil {
		x.Reply = dataplane.Reply{Status: 503, ContentType: "text/plain; charset=utf-8", Body: []byte("service policy configuration error\n")}
		return dataplane.Respond
	}
	rq := requests.Get().(*request)
	rq.s, rq.x = s, x
	d := s.set.Evaluate(rq)
	rq.s, rq.x = nil, nil
	requests.Put(rq)
	if d.DryRun.Action == policy.Deny || d.DryRun.Action == policy.Redirect {
		s.emit(x, d.DryRun, secevents.ActionDetected, 0)
	}
	switch d.Action {
	case policy.Deny:
		x.Reply = dataplane.Reply{Status: d.Status, ContentType: "text/plain; charset=utf-8", Body: []byte("request denied by policy\n")}
		s.emit(x, d.Verdict, secevents.ActionDenied, d.Status)
		return dataplane.Respond
	case policy.Redirect:
		x.Reply = dataplane.Reply{Status: d.Status, Headers: []dataplane.HeaderKV{{Name: "Location", Value: d.RedirectURL}}}
		return dataplane.Respond
	}
	return dataplane.Continue
}

func (s *Stage) emit(x *dataplane.Exchange, v policy.Verdict, action string, status int) {
	if s.sink == nil {
		return
	}
	e := &secevents.Event{Kind: secevents.KindPolicy, Action: action, RequestID: string(x.RequestID),
		LoadBalancer: s.vhost, Method: string(x.Method), Host: string(x.Host), Path: string(x.Path), Status: status,
		Source: v.Policy, Message: v.Action.String()}
	if x.Route != nil {
		e.Route = x.Route.Name
	}
	if x.Client.IsValid() {
		e.Client = x.Client.String()
	}
	name := v.Rule
	if name == "" {
		name = "(default action)"
	}
	e.Rules = []secevents.RuleHit{{Name: name, Message: v.Action.String() + " " + strconv.Itoa(v.Status)}}
	s.sink.Emit(e)
}

// lookup finds an object of the table being installed.
func lookup[T v1.Object](env *dataplane.StageEnv, kind, namespace, name string) T {
	var zero T
	if env == nil || env.Table == nil {
		return zero
	}
	o, ok := env.Table.Object(kind, namespace, name).(T)
	if !ok {
		return zero
	}
	return o
}
