package console_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/client"
	"github.com/meridian-platform/meridian/internal/distrib"
	"github.com/meridian-platform/meridian/internal/node"
	"github.com/meridian-platform/meridian/internal/node/agent"
	"github.com/meridian-platform/meridian/internal/secevents"
	"github.com/meridian-platform/meridian/internal/sites/sitestest"
	"github.com/meridian-platform/meridian/internal/testfixture"
)

func secEvent(lb, source string, rule int) distrib.Event {
	e := &secevents.Event{Time: time.Now().UTC(), Kind: secevents.KindWAF, Action: secevents.ActionBlocked, RequestID: "req-" + lb,
		LoadBalancer: lb, Route: lb + "#default", Client: "203.0.113.9:4242", Method: "GET", Host: "h", Path: "/?q=1&password=x",
		Status: 403, Source: source, Message: "blocked by rule", Rules: []secevents.RuleHit{{ID: rule, Message: "SQL injection", Variable: "ARGS:q", Data: "1 or 1=1"}}}
	return distrib.Event{Time: e.Time, Type: secevents.TelemetryType, Message: e.Message, Attrs: e.Attrs()}
}

// TestSecurityEventsOnASharedSite: on a site leased to another tenant,
// each event goes to the tenant owning its load balancer, under the names
// that tenant uses; a guest's event is never shown to the owner (nor the
// reverse); events survive a console restart.
func TestSecurityEventsOnASharedSite(t *testing.T) {
	e := sitestest.Start(t)
	e.CreateTenant(t, "other")
	e.Apply(t, "", sitestest.MustDecode(t, sitestest.Owner().YAML())...)
	e.Apply(t, "other", sitestest.MustDecode(t, sitestest.Guest().YAML())...)
	tok := e.CreateToken(t, "", "t", v1.SiteTokenSpec{MaxUses: 1, AutoApprove: true, Labels: map[string]string{"region": "eu"}})

	// The data plane is not what this test is about (test/e2e/events_test.go
	// runs a real one): the node keeps what it is given.
	k := &sitestest.Recorder{}
	a := sitestest.RunAgent(t, agent.Options{ConsoleURL: e.URL, Token: tok, Name: "s1", DataDir: filepath.Join(t.TempDir(), "s1"), CAData: e.CA, Applier: k})
	testfixture.WaitFor(t, "the owner's load balancer on s1", func() bool { return k.Has("HTTPLoadBalancer retail/own") })
	e.Lease(t, "lease-s1", "s1", "other")
	testfixture.WaitFor(t, "both tenants' load balancers on s1", func() bool {
		return k.Has("HTTPLoadBalancer retail/own") && k.Has("HTTPLoadBalancer other--retail/guest")
	})

	a.RecordEvent(secEvent("retail/own", "retail/fw", 942100))
	a.RecordEvent(secEvent("other--retail/guest", "other--retail/fw", 941100))
	a.RecordEvent(secEvent("other--retail/gone", "", 1)) // a guest's, no longer known: nobody's
	a.RecordEvent(distrib.Event{Type: secevents.TelemetryType, Attrs: map[string]string{"kind": "waf", "status": "x", "loadBalancer": "retail/own"}})
	netEvent := func(lb, source string) distrib.Event {
		e := &secevents.Event{Time: time.Now().UTC(), Kind: secevents.KindNetwork, Action: secevents.ActionDenied, LoadBalancer: lb,
			Client: "198.51.100.4:999", Source: source, Message: "connection refused by NetworkPolicy " + source}
		return node.TelemetryEvent(e)
	}
	a.RecordEvent(netEvent("other--retail/guest", "other--retail/np/r1")) // the guest's, through its load balancer
	a.RecordEvent(netEvent("", "retail/np/r2"))                           // the owner's, through its namespace
	a.RecordEvent(netEvent("", "other--retail/np/r3"))                    // a guest's policy the snapshot does not hold: nobody's

	owner, guest := e.Client(t, ""), e.Client(t, "other")
	list := func(c *client.Client) []client.SecurityEvent {
		t.Helper()
		l, err := c.SecurityEvents(context.Background(), client.SecurityEventFilter{})
		if err != nil {
			t.Fatal(err)
		}
		return l.Items
	}
	testfixture.WaitFor(t, "the events at the console", func() bool { return len(list(owner)) > 0 && len(list(guest)) > 0 })
	time.Sleep(300 * time.Millisecond) // let anything misattributed arrive too
	check := func(when string) {
		t.Helper()
		o, g := list(owner), list(guest)
		var ow, gw, on, gn []client.SecurityEvent
		for _, e := range o {
			if e.Type == "network" {
				on = append(on, e)
			} else {
				ow = append(ow, e)
			}
		}
		for _, e := range g {
			if e.Type == "network" {
				gn = append(gn, e)
			} else {
				gw = append(gw, e)
			}
		}
		if len(ow) != 1 || ow[0].Namespace != "retail" || ow[0].LoadBalancer != "own" || ow[0].Site != "s1" || ow[0].Rules[0].ID != 942100 ||
			ow[0].Source != "retail/fw" || ow[0].Route != "default" || ow[0].Path != "/?q=1&password=****" || ow[0].Status != 403 || ow[0].Client != "203.0.113.9:4242" {
			t.Fatalf("%s: owner's events: %+v", when, o)
		}
		if len(gw) != 1 || gw[0].Namespace != "retail" || gw[0].LoadBalancer != "guest" || gw[0].Source != "retail/fw" || gw[0].Route != "default" || gw[0].Rules[0].ID != 941100 {
			t.Fatalf("%s: guest's events: %+v", when, g)
		}
		if len(on) != 1 || on[0].Namespace != "retail" || on[0].LoadBalancer != "" || on[0].Source != "retail/np/r2" {
			t.Fatalf("%s: owner's network events: %+v", when, on)
		}
		if len(gn) != 1 || gn[0].LoadBalancer != "guest" || gn[0].Source != "retail/np/r1" || strings.Contains(gn[0].Message, "other--") {
			t.Fatalf("%s: guest's network events: %+v", when, gn)
		}
	}
	check("running")
	if st := e.Console.EventStats(); st.Unattributed != 3 || st.Written != 4 {
		t.Errorf("stats = %+v, want 4 written and 3 unattributed", st)
	}
	e.Restart(t)
	owner, guest = e.Client(t, ""), e.Client(t, "other")
	check("after a console restart")
}
