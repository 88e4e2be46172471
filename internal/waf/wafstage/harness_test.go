package wafstage

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/internal/authn"
	"github.com/meridian-platform/meridian/internal/authn/authstage"
	"github.com/meridian-platform/meridian/internal/dataplane"
	"github.com/meridian-platform/meridian/internal/dataplane/config"
	"github.com/meridian-platform/meridian/internal/policy"
	"github.com/meridian-platform/meridian/internal/policy/policystage"
	"github.com/meridian-platform/meridian/internal/ratelimit"
	"github.com/meridian-platform/meridian/internal/ratelimit/ratestage"
	"github.com/meridian-platform/meridian/internal/secevents"
	"github.com/meridian-platform/meridian/internal/testfixture"
	"github.com/meridian-platform/meridian/internal/waf"
)

// The tests run real HTTP through a Meridian data-plane listener whose
// security slots are filled through dataplane.Options.Stages, as the node
// does.
var (
	events   = &eventLog{}
	cache    = waf.NewCache(8)
	prebuilt sync.Map // AppFirewall name -> *waf.WAF
	metrics  = NewMetrics()
	// stagesOnce builds the stage factories once for all servers, so that
	// registries (counters, buckets) are shared as on a node.
	stagesOnce = sync.OnceValue(securityStages)
	// The other security slots, for the pipeline test.
	identities  = authstage.NewIdentities()
	authConfigs sync.Map // load balancer ID -> *authn.Config
)

type eventLog struct {
	mu sync.Mutex
	m  map[string][]*secevents.Event // by load balancer and path
}

func (l *eventLog) Emit(e *secevents.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil {
		l.m = map[string][]*secevents.Event{}
	}
	l.m[e.LoadBalancer+e.Path] = append(l.m[e.LoadBalancer+e.Path], e)
}

func (l *eventLog) take(key string) []*secevents.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.m[key]
	delete(l.m, key)
	return e
}

// securityStages fills the security slots of dataplane.Order the way the
// node does (dataplane.Options.Stages), with this package's WAF factory and
// the authn, policy and rate-limit factories.
func securityStages() map[string]dataplane.StageFactory {
	f := Factory(cache, Options{Events: events, Metrics: metrics})
	return map[string]dataplane.StageFactory{
		"authn": authstage.Factory(func(vh *config.VHost) *authn.Config {
			if v, ok := authConfigs.Load(vh.ID); ok {
				return v.(*authn.Config)
			}
			return nil
		}, authstage.NewCache(), identities, authstage.Options{Events: events}),
		"policy":    policystage.Factory(policy.NewRegistry(), policystage.Options{Events: events, Claims: identities.Claims}),
		"ratelimit": ratestage.Factory(ratelimit.NewRegistry(0), ratestage.Options{Events: events, Claim: identities.Claim, APIKey: identities.APIKey}),
		"waf": func(vh *config.VHost, env *dataplane.StageEnv) dataplane.Stage {
			// Instances compiled outside the cache (the CRS suite's).
			if vh.Spec != nil {
				if v, ok := prebuilt.Load(vh.Spec.AppFirewall); ok {
					return New(vh.ID, "t/"+vh.Spec.AppFirewall, v.(*waf.WAF), nil, Options{Events: events})
				}
			}
			return f(vh, env)
		},
	}
}

// reflectBackend answers like the CRS test backend: POST /reflect with a
// JSON {"status", "headers", "body"} is answered with those; anything else
// gets 200 "ok".
func reflectBackend(t testing.TB) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if strings.HasPrefix(r.URL.Path, "/reflect") {
			var spec struct {
				Status  int               `json:"status"`
				Headers map[string]string `json:"headers"`
				Body    string            `json:"body"`
			}
			if json.Unmarshal(body, &spec) == nil {
				for k, v := range spec.Headers {
					w.Header().Set(k, v)
				}
				if w.Header().Get("Content-Type") == "" {
					w.Header().Set("Content-Type", "text/plain")
				}
				if spec.Status == 0 {
					spec.Status = 200
				}
				w.WriteHeader(spec.Status)
				io.WriteString(w, spec.Body)
				return
			}
		}
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "ok")
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// freePort returns a loopback port that was free a moment ago.
var freePort = testfixture.FreePort

// startFront starts a data-plane server with one load balancer protected
// by fw in front of backend and returns its address.
func startFront(t testing.TB, name string, fw v1.AppFirewallSpec, backend string) string {
	return startFrontWith(t, name, fw, backend, nil, nil)
}

// startFrontWith also installs extra objects and lets edit change the load
// balancer's spec.
func startFrontWith(t testing.TB, name string, fw v1.AppFirewallSpec, backend string, extra []v1.Object, edit func(*v1.HTTPLoadBalancerSpec)) string {
	t.Helper()
	af := &v1.AppFirewall{Spec: fw}
	af.Kind, af.APIVersion = "AppFirewall", "meridian/v1"
	af.Metadata.Namespace, af.Metadata.Name = "t", name
	port := freePort(t)
	pool := &v1.OriginPool{Spec: v1.OriginPoolSpec{Endpoints: []v1.OriginEndpoint{{Address: backend}}}}
	pool.Kind, pool.APIVersion = "OriginPool", "meridian/v1"
	pool.Metadata.Namespace, pool.Metadata.Name = "t", "backend"
	lb := &v1.HTTPLoadBalancer{Spec: v1.HTTPLoadBalancerSpec{Domains: []string{"*"},
		Listeners: []v1.HTTPListener{{Port: port, Address: "127.0.0.1"}}, DefaultPool: "backend", AppFirewall: name}}
	lb.Kind, lb.APIVersion = "HTTPLoadBalancer", "meridian/v1"
	lb.Metadata.Namespace, lb.Metadata.Name = "t", name
	if edit != nil {
		edit(&lb.Spec)
	}
	objs := append([]v1.Object{pool, lb, af}, extra...)
	for _, o := range objs {
		v1.DefaultObject(o)
	}
	tab := config.Compile(objs)
	if len(tab.Errors) > 0 {
		t.Fatalf("compile errors: %v", tab.Errors)
	}
	s := dataplane.New(dataplane.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), AccessLog: io.Discard,
		MaxRequestBodySize: 1 << 20, Stages: stagesOnce()})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
	})
	if err := s.Apply(context.Background(), tab); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("127.0.0.1:%d", port)
}

// takeAll removes and returns the events of one load balancer.
func (l *eventLog) takeAll(lb string) []*secevents.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []*secevents.Event
	for k, e := range l.m {
		if k == lb || strings.HasPrefix(k, lb+"/") {
			out = append(out, e...)
			delete(l.m, k)
		}
	}
	return out
}
