package secroute

import (
	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/internal/dataplane"
	"github.com/meridian-platform/meridian/internal/dataplane/config"
)

// Build returns the stages one security slot runs for one security profile
// of a load balancer (none: nil). vh is the load balancer; sec one of
// vh.Security.
type Build func(vh *config.VHost, sec *config.Security, env *dataplane.StageEnv) []dataplane.Stage

// Slot turns a Build into the factory of a slot of dataplane.Order. The
// stage it returns runs, for each exchange, the stages of the profile of
// the route the exchange matched (config.Route.Security), or those of the
// load balancer (profile 0) when it matched none. When a load balancer has
// a single profile with a single stage, that stage is returned as is.
func Slot(name string, build Build) dataplane.StageFactory {
	return func(vh *config.VHost, env *dataplane.StageEnv) dataplane.Stage {
		if len(vh.Security) == 0 {
			// A virtual host that was not compiled with profiles: the
			// load balancer's own settings.
			return one(name, build(vh, &config.Security{}, env))
		}
		per := make([][]dataplane.Stage, len(vh.Security))
		total := 0
		for i, sec := range vh.Security {
			per[i] = build(vh, sec, env)
			total += len(per[i])
		}
		switch {
		case total == 0:
			return nil
		case len(per) == 1:
			return one(name, per[0])
		}
		return newDispatch(name, per)
	}
}

func one(name string, stages []dataplane.Stage) dataplane.Stage {
	switch len(stages) {
	case 0:
		return nil
	case 1:
		return stages[0]
	}
	return newDispatch(name, [][]dataplane.Stage{stages})
}

// Derive returns a copy of vh whose spec names the given security objects
// and whose Authn is sec's: what the stage factories written for a whole
// load balancer read.
func Derive(vh *config.VHost, firewall string, policies []string, limiter string, sec *config.Security) *config.VHost {
	d := *vh
	var cp v1.HTTPLoadBalancerSpec
	if vh.Spec != nil {
		cp = *vh.Spec
	}
	cp.AppFirewall, cp.ServicePolicies, cp.RateLimiter = firewall, policies, limiter
	d.Spec = &cp
	d.Authn = sec.Authn
	return &d
}

// WAF builds the waf slot from a factory that reads vh.Spec.AppFirewall:
// one stage per firewall of the profile, in order.
func WAF(inner dataplane.StageFactory) dataplane.StageFactory {
	return Slot("waf", func(vh *config.VHost, sec *config.Security, env *dataplane.StageEnv) []dataplane.Stage {
		if len(vh.Security) == 0 {
			return nonNil(inner(vh, env))
		}
		var out []dataplane.Stage
		for _, fw := range sec.AppFirewalls {
			out = append(out, nonNil(inner(Derive(vh, fw, nil, "", sec), env))...)
		}
		return out
	})
}

// Policy builds the policy slot from a factory that reads
// vh.Spec.ServicePolicies: one stage evaluating the profile's policies in
// order.
func Policy(inner dataplane.StageFactory) dataplane.StageFactory {
	return Slot("policy", func(vh *config.VHost, sec *config.Security, env *dataplane.StageEnv) []dataplane.Stage {
		if len(vh.Security) == 0 {
			return nonNil(inner(vh, env))
		}
		if len(sec.ServicePolicies) == 0 {
			return nil
		}
		return nonNil(inner(Derive(vh, "", sec.ServicePolicies, "", sec), env))
	})
}

// RateLimit builds the ratelimit slot from a factory that reads
// vh.Spec.RateLimiter: one stage per limiter of the profile.
func RateLimit(inner dataplane.StageFactory) dataplane.StageFactory {
	return Slot("ratelimit", func(vh *config.VHost, sec *config.Security, env *dataplane.StageEnv) []dataplane.Stage {
		if len(vh.Security) == 0 {
			return nonNil(inner(vh, env))
		}
		var out []dataplane.Stage
		for _, rl := range sec.RateLimiters {
			out = append(out, nonNil(inner(Derive(vh, "", nil, rl, sec), env))...)
		}
		return out
	})
}

// Authn builds the authn slot from a factory that reads vh.Authn.
func Authn(inner dataplane.StageFactory) dataplane.StageFactory {
	return Slot("authn", func(vh *config.VHost, sec *config.Security, env *dataplane.StageEnv) []dataplane.Stage {
		if len(vh.Security) == 0 {
			return nonNil(inner(vh, env))
		}
		if sec.Authn == nil {
			return nil
		}
		return nonNil(inner(Derive(vh, "", nil, "", sec), env))
	})
}

func nonNil(s dataplane.Stage) []dataplane.Stage {
	if s == nil {
		return nil
	}
	return []dataplane.Stage{s}
}
