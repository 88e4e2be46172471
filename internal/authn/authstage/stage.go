package authstage

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"strings"
	"sync"

	"github.com/meridian-platform/meridian/internal/authn"
	"github.com/meridian-platform/meridian/internal/dataplane"
	"github.com/meridian-platform/meridian/internal/dataplane/config"
	"github.com/meridian-platform/meridian/internal/secevents"
)

// Identities gives the identity of each exchange in flight, from the authn
// stage to the end of the request, to the stages after it. The identity is
// kept on the exchange itself (Exchange.SetStageValue, under the store's
// pointer): no map shared by all exchanges, no allocation.
type Identities struct {
	_ byte // (a pointer to a zero-size value need not be unique)
}

// NewIdentities returns an empty store; share one between the authn,
// policy and rate-limit stage factories of a node.
func NewIdentities() *Identities { return &Identities{} }

// Identity returns who the exchange authenticated as (nil: nobody).
func (s *Identities) Identity(x *dataplane.Exchange) *authn.Identity {
	id, _ := x.StageValue(s).(*authn.Identity)
	return id
}

// Claims is a policystage.ClaimsFunc.
func (s *Identities) Claims(x *dataplane.Exchange) func(name string) ([]byte, bool) {
	id := s.Identity(x)
	if id == nil {
		return nil
	}
	return id.Claim
}

// Claim is the ratestage Options.Claim hook.
func (s *Identities) Claim(x *dataplane.Exchange, name string) ([]byte, bool) {
	return s.Identity(x).Claim(name)
}

// APIKey is the ratestage Options.APIKey hook: the API key's name.
func (s *Identities) APIKey(x *dataplane.Exchange) ([]byte, bool) {
	id := s.Identity(x)
	if id == nil || id.Method != authn.MethodAPIKey {
		return nil, false
	}
	return []byte(id.KeyName), true
}

// Cache keeps compiled authenticators by configuration, so that a
// configuration push keeps the cached JWKS.
type Cache struct {
	mu sync.Mutex
	m  map[[32]byte]*entry
}

type entry struct {
	a   *authn.Authenticator
	err error
}

// NewCache returns an empty cache.
func NewCache() *Cache { return &Cache{m: map[[32]byte]*entry{}} }

// Get compiles cfg or returns the authenticator compiled for an equal one.
func (c *Cache) Get(cfg authn.Config, opts authn.Options) (*authn.Authenticator, error) {
	b, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	key := sha256.Sum256(b)
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.m[key]
	if e == nil {
		e = &entry{}
		e.a, e.err = authn.New(cfg, opts)
		c.m[key] = e
	}
	return e.a, e.err
}

// Options are the optional hooks of the stage.
type Options struct {
	Events secevents.Sink
	// PeerCertificates returns the client certificate chain of the
	// exchange's TLS connection (needed for mTLS).
	PeerCertificates func(x *dataplane.Exchange) []*x509.Certificate
	// Authn are the authenticator's runtime options.
	Authn authn.Options
}

// Stage authenticates the requests of one load balancer.
type Stage struct {
	vhost string
	a     *authn.Authenticator
	err   error
	ids   *Identities
	opts  Options
	jwt   bool
	// loop says the stage may run on the event loops (LoopServable).
	loop bool
}

var (
	_ dataplane.RequestHeadersFilter = (*Stage)(nil)
	_ dataplane.DoneHook             = (*Stage)(nil)
	_ dataplane.LoopStage            = (*Stage)(nil)
)

// New builds the stage; a non-nil err fails closed (503).
func New(vhost string, a *authn.Authenticator, err error, ids *Identities, jwt bool, opts Options) *Stage {
	return &Stage{vhost: vhost, a: a, err: err, ids: ids, opts: opts, jwt: jwt}
}

// Factory returns a dataplane.StageFactory for the "authn" slot. lookup
// returns the authentication of a load balancer (nil: none).
func Factory(lookup func(vh *config.VHost) *authn.Config, cache *Cache, ids *Identities, opts Options) dataplane.StageFactory {
	return func(vh *config.VHost, _ *dataplane.StageEnv) dataplane.Stage {
		cfg := lookup(vh)
		if cfg == nil {
			return nil
		}
		a, err := cache.Get(*cfg, opts.Authn)
		s := New(vh.ID, a, err, ids, cfg.JWT != nil, opts)
		s.loop = err != nil || loopServable(cfg)
		return s
	}
}

// Err returns the configuration error the stage fails closed on.
func (s *Stage) Err() error { return s.err }

// Name implements dataplane.Stage.
func (s *Stage) Name() string { return "authn" }

// LoopServable implements dataplane.LoopStage (see loopServable; a stage
// that fails closed only answers 503).
func (s *Stage) LoopServable() bool { return s.loop }

// loopServable says an authentication can run on an event loop: it
// forwards no claim (the loop's request head is read-only) and never
// waits for the network: API keys, client certificates (the loops make
// the handshake with the listener's configuration and give the stages the
// connection's state, as the goroutine engine does), and JWTs whose keys
// come from a file (a key id it does not know is looked up in the file,
// at most every minRefresh; a JWKS URL may take seconds to answer).
func loopServable(cfg *authn.Config) bool {
	return len(cfg.ForwardClaims) == 0 && (cfg.JWT == nil || cfg.JWT.JWKSURL == "")
}

type request struct {
	x    *dataplane.Exchange
	cert func(x *dataplane.Exchange) []*x509.Certificate
}

func (r request) Header(n string) ([]byte, bool) { return r.x.ReqHeaders.Peek(n) }
func (r request) PeerCertificates() []*x509.Certificate {
	if r.cert == nil {
		return nil
	}
	return r.cert(r.x)
}

// OnRequestHeaders implements dataplane.RequestHeadersFilter.
func (s *Stage) OnRequestHeaders(x *dataplane.Exchange) dataplane.Action {
	if s.err != nil {
		x.Reply = dataplane.Reply{Status: 503, ContentType: "text/plain; charset=utf-8", Body: []byte("authentication configuration error\n")}
		return dataplane.Respond
	}
	// Forwarded claim headers come from Meridian only.
	fwd := s.a.ForwardClaims()
	for _, f := range fwd {
		x.ReqHeaders.Del(f.Header)
	}
	id, e := s.a.Authenticate(context.Background(), request{x: x, cert: s.opts.PeerCertificates})
	if e != nil {
		x.Reply = dataplane.Reply{Status: e.Status, ContentType: "text/plain; charset=utf-8", Body: []byte(e.Reason + "\n")}
		if s.jwt {
			x.Reply.Headers = []dataplane.HeaderKV{{Name: "WWW-Authenticate",
				Value: `Bearer error="` + e.Code + `", error_description="` + strings.ReplaceAll(e.Reason, `"`, "'") + `"`}}
		}
		s.emit(x, e)
		return dataplane.Respond
	}
	x.SetStageValue(s.ids, id)
	for _, f := range fwd {
		if v, ok := id.Claim(f.Claim); ok {
			x.ReqHeaders.SetBytes(f.Header, []byte(strings.ReplaceAll(string(v), "\x1f", ",")))
		}
	}
	return dataplane.Continue
}

// OnDone forgets the identity.
func (s *Stage) OnDone(x *dataplane.Exchange) { x.SetStageValue(s.ids, nil) }

func (s *Stage) emit(x *dataplane.Exchange, e *authn.Error) {
	if s.opts.Events == nil {
		return
	}
	ev := &secevents.Event{Kind: secevents.KindAuthn, Action: secevents.ActionRejected, RequestID: string(x.RequestID),
		LoadBalancer: s.vhost, Method: string(x.Method), Host: string(x.Host), Path: string(x.Path), Status: e.Status,
		Message: e.Reason, Rules: []secevents.RuleHit{{Name: e.Code, Message: e.Reason}}}
	if x.Route != nil {
		ev.Route = x.Route.Name
	}
	if x.Client.IsValid() {
		ev.Client = x.Client.String()
	}
	s.opts.Events.Emit(ev)
}
