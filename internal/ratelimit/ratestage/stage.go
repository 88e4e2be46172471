package ratestage

import (
	"encoding/binary"
	"hash/maphash"
	"strconv"
	"time"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/internal/dataplane"
	"github.com/meridian-platform/meridian/internal/dataplane/config"
	"github.com/meridian-platform/meridian/internal/ratelimit"
	"github.com/meridian-platform/meridian/internal/secevents"
)

// Options are the optional hooks of a Stage.
type Options struct {
	// Events receives an event per refused request (may be nil).
	Events secevents.Sink
	// Claim returns a JWT claim of the exchange (set by authn).
	Claim func(x *dataplane.Exchange, name string) ([]byte, bool)
	// APIKey returns the identity of the API key that authenticated the
	// exchange (set by authn).
	APIKey func(x *dataplane.Exchange) ([]byte, bool)
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Stage applies one RateLimiter to the requests of a load balancer.
// Requests whose key is missing (no such header, claim or API key) are
// counted by client address instead.
type Stage struct {
	vhost string
	lim   *ratelimit.Limiter
	err   error
	opts  Options
	seed  maphash.Seed
}

var (
	_ dataplane.Stage                = (*Stage)(nil)
	_ dataplane.RequestHeadersFilter = (*Stage)(nil)
)

// New builds the stage. A non-nil err (a broken or missing RateLimiter)
// makes the stage fail closed with 503.
func New(vhost string, lim *ratelimit.Limiter, err error, opts Options) *Stage {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Stage{vhost: vhost, lim: lim, err: err, opts: opts, seed: maphash.MakeSeed()}
}

// Factory returns a dataplane.StageFactory for the "ratelimit" slot. The
// RateLimiter a load balancer names is found in the table being installed
// (StageEnv.Table); reg keeps the buckets across configuration pushes.
func Factory(reg *ratelimit.Registry, opts Options) dataplane.StageFactory {
	return func(vh *config.VHost, env *dataplane.StageEnv) dataplane.Stage {
		if vh.Spec == nil || vh.Spec.RateLimiter == "" {
			return nil
		}
		var rl *v1.RateLimiter
		if env != nil && env.Table != nil {
			rl, _ = env.Table.Object("RateLimiter", vh.Namespace, vh.Spec.RateLimiter).(*v1.RateLimiter)
		}
		if rl == nil {
			return New(vh.ID, nil, &missingError{vh.Namespace, vh.Spec.RateLimiter}, opts)
		}
		lim, err := ratelimit.Compile(rl, reg)
		return New(vh.ID, lim, err, opts)
	}
}

type missingError struct{ namespace, name string }

func (e *missingError) Error() string {
	return "RateLimiter " + e.namespace + "/" + e.name + " not found"
}

// Err returns the configuration error the stage fails closed on.
func (s *Stage) Err() error { return s.err }

// Name implements dataplane.Stage.
func (s *Stage) Name() string { return "ratelimit" }

// LoopServable implements dataplane.LoopStage: a bucket is taken from the
// request head alone, without waiting, and no header is changed.
func (s *Stage) LoopServable() bool { return true }

const maxInlineKey = 200

// key writes the bucket key of an exchange into buf.
func (s *Stage) key(x *dataplane.Exchange, buf []byte) []byte {
	var v []byte
	ok := false
	switch s.lim.Key.Type {
	case v1.RateKeyHeader:
		v, ok = x.ReqHeaders.Peek(s.lim.Key.Name)
	case v1.RateKeyJWTClaim:
		if s.opts.Claim != nil {
			v, ok = s.opts.Claim(x, s.lim.Key.Name)
		}
	case v1.RateKeyAPIKey:
		if s.opts.APIKey != nil {
			v, ok = s.opts.APIKey(x)
		}
	}
	if !ok {
		a := x.Client.As16()
		return append(append(buf, 'i'), a[:]...)
	}
	if len(v) <= maxInlineKey {
		return append(append(buf, 'v'), v...)
	}
	return binary.LittleEndian.AppendUint64(append(buf, 'h'), maphash.Bytes(s.seed, v))
}

// OnRequestHeaders implements dataplane.RequestHeadersFilter.
func (s *Stage) OnRequestHeaders(x *dataplane.Exchange) dataplane.Action {
	if s.err != nil {
		x.Reply = dataplane.Reply{Status: 503, ContentType: "text/plain; charset=utf-8", Body: []byte("rate limiter configuration error\n")}
		return dataplane.Respond
	}
	var buf [maxInlineKey + 1]byte
	ok, retry := s.lim.Take(s.key(x, buf[:0]), s.opts.Now())
	if ok {
		return dataplane.Continue
	}
	secs := int64((retry + time.Second - 1) / time.Second)
	x.Reply = dataplane.Reply{Status: 429, ContentType: "text/plain; charset=utf-8", Body: []byte("too many requests\n"),
		Headers: []dataplane.HeaderKV{{Name: "Retry-After", Value: strconv.FormatInt(max(secs, 1), 10)}}}
	if s.opts.Events != nil {
		e := &secevents.Event{Kind: secevents.KindRateLimit, Action: secevents.ActionLimited, RequestID: string(x.RequestID),
			LoadBalancer: s.vhost, Method: string(x.Method), Host: string(x.Host), Path: string(x.Path), Status: 429,
			Source: s.lim.ID, Message: "rate limit exceeded, retry after " + retry.Round(time.Millisecond).String()}
		if x.Route != nil {
			e.Route = x.Route.Name
		}
		if x.Client.IsValid() {
			e.Client = x.Client.String()
		}
		s.opts.Events.Emit(e)
	}
	return dataplane.Respond
}
