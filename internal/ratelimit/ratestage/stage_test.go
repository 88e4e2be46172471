package ratestage

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/internal/dataplane"
	"github.com/meridian-platform/meridian/internal/dataplane/config"
	"github.com/meridian-platform/meridian/internal/ratelimit"
	"github.com/meridian-platform/meridian/internal/secevents"
	"github.com/meridian-platform/meridian/internal/testfixture"
)

// headers and sink are the stage tests' request headers and event sink.
type (
	headers = testfixture.Headers
	sink    = testfixture.Sink
)

func TestStage(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	clock := func() time.Time { return now }
	objs := map[string]*v1.RateLimiter{
		"per-client": {Spec: v1.RateLimiterSpec{Rate: 2, Burst: 2, Per: "minute"}},
		"per-tenant": {Spec: v1.RateLimiterSpec{Rate: 1, Burst: 1, Key: v1.RateLimitKey{Type: "header", Name: "X-Tenant"}}},
	}
	var list []v1.Object
	for n, o := range objs {
		o.Kind, o.APIVersion = "RateLimiter", "meridian/v1"
		o.Metadata.Namespace, o.Metadata.Name = "retail", n
		list = append(list, o)
	}
	env := &dataplane.StageEnv{Table: config.Compile(list)}
	ev := &sink{}
	reg := ratelimit.NewRegistry(0)
	build := Factory(reg, Options{Events: ev, Now: clock})
	f := func(vh *config.VHost, _ *dataplane.StageEnv) dataplane.Stage { return build(vh, env) }
	vh := func(name string) *config.VHost {
		return &config.VHost{ID: "retail/shop", Namespace: "retail", Spec: &v1.HTTPLoadBalancerSpec{RateLimiter: name}}
	}
	x := func(client string, h headers) *dataplane.Exchange {
		return &dataplane.Exchange{Method: []byte("GET"), Path: []byte("/"), Client: netip.MustParseAddr(client), ReqHeaders: h}
	}

	st := f(vh("per-client"), nil).(*Stage)
	for i := 0; i < 2; i++ {
		if st.OnRequestHeaders(x("198.51.100.1", headers{})) != dataplane.Continue {
			t.Fatalf("request %d refused", i)
		}
	}
	r := x("198.51.100.1", headers{})
	if st.OnRequestHeaders(r) != dataplane.Respond || r.Reply.Status != 429 || r.Reply.Headers[0].Value != "30" {
		t.Fatalf("3rd request: %+v", r.Reply)
	}
	if st.OnRequestHeaders(x("198.51.100.2", headers{})) != dataplane.Continue {
		t.Fatal("another client was limited")
	}
	// A configuration push builds a new stage; the buckets survive it.
	st = f(vh("per-client"), nil).(*Stage)
	if st.OnRequestHeaders(x("198.51.100.1", headers{})) != dataplane.Respond {
		t.Fatal("bucket reset by a configuration push")
	}
	evs := ev.Events()
	if len(evs) != 2 || evs[0].Kind != secevents.KindRateLimit || evs[0].Source != "retail/per-client" || evs[0].Client != "198.51.100.1" {
		t.Fatalf("events %+v", evs)
	}

	st = f(vh("per-tenant"), nil).(*Stage)
	if st.OnRequestHeaders(x("10.0.0.1", headers{"x-tenant": "a"})) != dataplane.Continue ||
		st.OnRequestHeaders(x("10.0.0.2", headers{"x-tenant": "a"})) != dataplane.Respond {
		t.Fatal("header key not shared across clients")
	}
	long := strings.Repeat("b", 5000)
	if st.OnRequestHeaders(x("10.0.0.1", headers{"x-tenant": long})) != dataplane.Continue ||
		st.OnRequestHeaders(x("10.0.0.1", headers{"x-tenant": long})) != dataplane.Respond {
		t.Fatal("long header values not keyed")
	}
	// Without the header, the client address is the key.
	if st.OnRequestHeaders(x("10.0.0.3", headers{})) != dataplane.Continue {
		t.Fatal("missing header refused")
	}

	if f(vh(""), nil) != nil {
		t.Error("stage without a rate limiter")
	}
	miss := f(vh("nope"), nil).(*Stage)
	r = x("10.0.0.1", headers{})
	if miss.Err() == nil || miss.OnRequestHeaders(r) != dataplane.Respond || r.Reply.Status != 503 {
		t.Error("missing limiter does not fail closed")
	}
}

func TestStageAllowedPathDoesNotAllocate(t *testing.T) {
	rl := &v1.RateLimiter{Spec: v1.RateLimiterSpec{Rate: 1_000_000, Burst: 1_000_000}}
	lim, err := ratelimit.Compile(rl, ratelimit.NewRegistry(0))
	if err != nil {
		t.Fatal(err)
	}
	st := New("retail/shop", lim, nil, Options{})
	x := &dataplane.Exchange{Client: netip.MustParseAddr("198.51.100.1"), ReqHeaders: headers{}}
	st.OnRequestHeaders(x)
	if n := testing.AllocsPerRun(200, func() { st.OnRequestHeaders(x) }); n != 0 {
		t.Errorf("%.1f allocations per allowed request", n)
	}
}
