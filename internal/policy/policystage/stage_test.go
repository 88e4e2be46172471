package policystage

import (
	"net/netip"
	"testing"

	"sigs.k8s.io/yaml"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/internal/dataplane"
	"github.com/meridian-platform/meridian/internal/dataplane/config"
	"github.com/meridian-platform/meridian/internal/policy"
	"github.com/meridian-platform/meridian/internal/secevents"
	"github.com/meridian-platform/meridian/internal/testfixture"
)

// headers and sink are the stage tests' request headers and event sink.
type (
	headers = testfixture.Headers
	sink    = testfixture.Sink
)

func pol(t *testing.T, name, spec string) *v1.ServicePolicy {
	t.Helper()
	p := &v1.ServicePolicy{}
	if err := yaml.UnmarshalStrict([]byte(spec), &p.Spec); err != nil {
		t.Fatal(err)
	}
	p.Kind, p.APIVersion = "ServicePolicy", "meridian/v1"
	p.Metadata.Namespace, p.Metadata.Name = "retail", name
	return p
}

// envOf is the StageEnv of a table holding objs.
func envOf(objs map[string]*v1.ServicePolicy) *dataplane.StageEnv {
	var list []v1.Object
	for _, o := range objs {
		list = append(list, o)
	}
	return &dataplane.StageEnv{Table: config.Compile(list)}
}

func exchange(path, client string, h headers) *dataplane.Exchange {
	return &dataplane.Exchange{Method: []byte("GET"), Path: []byte(path), Host: []byte("shop.example.com"),
		Client: netip.MustParseAddr(client), ReqHeaders: h, RequestID: []byte("rid-1")}
}

func TestStage(t *testing.T) {
	objs := map[string]*v1.ServicePolicy{
		"watch": pol(t, "watch", `{mode: dryRun, rules: [{name: no-bots, action: deny, match: {headers: [{name: user-agent, regex: bot}]}}]}`),
		"guard": pol(t, "guard", `{rules: [
  {name: vpn-only, action: deny, match: {pathPrefix: /admin, notClientCIDRs: [10.0.0.0/8]}},
  {name: moved, action: redirect, status: 308, redirectURL: "https://new.example.com/", match: {pathPrefix: /old}},
  {name: admins, action: allow, match: {claims: [{name: role, exact: admin}]}}]}`),
	}
	ev := &sink{}
	claims := func(x *dataplane.Exchange) func(string) ([]byte, bool) {
		if v, ok := x.ReqHeaders.Peek("x-test-role"); ok {
			return func(n string) ([]byte, bool) { return v, n == "role" }
		}
		return nil
	}
	f := Factory(policy.NewRegistry(), Options{Events: ev, Claims: claims})
	spec := &v1.HTTPLoadBalancerSpec{ServicePolicies: []string{"watch", "guard"}}
	st := f(&config.VHost{ID: "retail/shop", Namespace: "retail", Spec: spec}, envOf(objs)).(*Stage)
	if st.Err() != nil {
		t.Fatal(st.Err())
	}

	x := exchange("/admin/users", "198.51.100.1", headers{"user-agent": "a bot"})
	if st.OnRequestHeaders(x) != dataplane.Respond || x.Reply.Status != 403 {
		t.Fatalf("admin from outside: %+v", x.Reply)
	}
	x = exchange("/admin/users", "10.2.3.4", headers{})
	if st.OnRequestHeaders(x) != dataplane.Continue {
		t.Fatalf("admin from VPN refused: %+v", x.Reply)
	}
	x = exchange("/old/page", "10.2.3.4", headers{})
	if st.OnRequestHeaders(x) != dataplane.Respond || x.Reply.Status != 308 || x.Reply.Headers[0].Value != "https://new.example.com/" {
		t.Fatalf("redirect: %+v", x.Reply)
	}
	x = exchange("/", "10.2.3.4", headers{"x-test-role": "admin"})
	if st.OnRequestHeaders(x) != dataplane.Continue {
		t.Fatal("admin claim")
	}
	evs := ev.Events()
	if len(evs) != 2 || evs[0].Action != secevents.ActionDetected || evs[0].Source != "retail/watch" ||
		evs[1].Action != secevents.ActionDenied || evs[1].Rules[0].Name != "vpn-only" || evs[1].RequestID != "rid-1" {
		for _, e := range evs {
			t.Logf("%+v", e)
		}
		t.Fatal("unexpected events")
	}

	// No policies: no stage.
	if s := f(&config.VHost{ID: "retail/x", Namespace: "retail", Spec: &v1.HTTPLoadBalancerSpec{}}, envOf(objs)); s != nil {
		t.Error("stage without policies")
	}
	// A missing or broken policy fails closed.
	for _, names := range [][]string{{"nope"}, {"broken"}} {
		objs["broken"] = pol(t, "broken", `{rules: [{name: a, action: deny, match: {pathRegex: "("}}]}`)
		st := f(&config.VHost{ID: "retail/y", Namespace: "retail", Spec: &v1.HTTPLoadBalancerSpec{ServicePolicies: names}}, envOf(objs)).(*Stage)
		x := exchange("/", "10.0.0.1", headers{})
		if st.Err() == nil || st.OnRequestHeaders(x) != dataplane.Respond || x.Reply.Status != 503 {
			t.Errorf("%v: err %v, reply %+v", names, st.Err(), x.Reply)
		}
	}
}

func TestStageDoesNotAllocate(t *testing.T) {
	p := pol(t, "g", `{defaultAction: allow, rules: [{name: a, action: deny, match: {clientCIDRs: [203.0.113.0/24], pathPrefix: /admin}}]}`)
	set, err := policy.Compile([]*v1.ServicePolicy{p}, nil)
	if err != nil {
		t.Fatal(err)
	}
	st := New("retail/shop", set, nil, Options{})
	x := exchange("/api", "198.51.100.1", headers{})
	if n := testing.AllocsPerRun(100, func() { st.OnRequestHeaders(x) }); n != 0 {
		t.Errorf("%.1f allocations per request", n)
	}
}
