package apiserver

import (
	"encoding/json"
	"net/url"
	"testing"
	"time"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/internal/secevents"
	"github.com/meridian-platform/meridian/internal/store/backendtest"
)

type eventList struct {
	Kind  string             `json:"kind"`
	Items []secevents.Record `json:"items"`
}

func (e *env) events(path, token string) eventList {
	e.t.Helper()
	r := e.must(200, "GET", path, token, nil)
	var l eventList
	if err := json.Unmarshal(r.body, &l); err != nil {
		e.t.Fatalf("%s: %v: %s", path, err, r.body)
	}
	if l.Kind != "SecurityEventList" || l.Items == nil {
		e.t.Fatalf("%s: not a SecurityEventList: %s", path, r.body)
	}
	return l
}

func TestSecurityEventsRBACAndTenantIsolation(t *testing.T) {
	e := newEnv(t, backendtest.Bolt)
	events := secevents.NewStore(t.TempDir(), secevents.StoreOptions{})
	e.srv.SetSecurityEvents(events)
	acme := e.tenant("acme", "retail", "hr")
	globex := e.tenant("globex", "retail")
	now := time.Now().UTC().Truncate(time.Second)
	ev := func(ago time.Duration, typ, ns, lb, site string, rule int) secevents.Record {
		return secevents.Record{Time: now.Add(-ago), Type: typ, Action: "blocked", Namespace: ns, LoadBalancer: lb, Site: site,
			Rules: []secevents.RuleHit{{ID: rule}}}
	}
	if err := events.Append("acme", []secevents.Record{
		ev(3*time.Hour, "waf", "retail", "shop", "paris", 942100),
		ev(30*time.Minute, "policy", "retail", "shop", "oslo", 0),
		ev(10*time.Minute, "waf", "hr", "portal", "paris", 941100),
		ev(time.Minute, "waf", "retail", "cart", "paris", 942100),
	}); err != nil {
		t.Fatal(err)
	}
	if err := events.Append("globex", []secevents.Record{ev(time.Second, "waf", "retail", "shop", "paris", 942100)}); err != nil {
		t.Fatal(err)
	}

	all := e.events("/api/v1/securityevents", acme)
	if len(all.Items) != 4 || all.Items[0].LoadBalancer != "cart" || all.Items[3].Site != "paris" || all.Items[3].Type != "waf" {
		t.Fatalf("acme's events, newest first: %+v", all.Items)
	}
	for _, it := range all.Items {
		if it.Time.Equal(now.Add(-time.Second)) {
			t.Fatal("globex's event shown to acme")
		}
	}
	if g := e.events("/api/v1/namespaces/retail/securityevents", globex); len(g.Items) != 1 {
		t.Fatalf("globex sees %d events, want its 1", len(g.Items))
	}

	for _, tt := range []struct {
		query string
		want  int
	}{
		{"", 3},
		{"loadBalancer=shop", 2},
		{"loadBalancer=retail/cart", 1},
		{"site=oslo", 1},
		{"rule=942100", 2},
		{"type=policy", 1},
		{"since=1h", 2},
		{"until=20m", 2},
		{"since=" + url.QueryEscape(now.Add(-2*time.Minute).Format(time.RFC3339)), 1},
		{"limit=1", 1},
	} {
		l := e.events("/api/v1/namespaces/retail/securityevents?"+tt.query, acme)
		if len(l.Items) != tt.want {
			t.Errorf("?%s: %d events, want %d: %+v", tt.query, len(l.Items), tt.want, l.Items)
		}
	}
	for _, q := range []string{"type=nope", "since=yesterday", "limit=-1", "loadBalancer=a/b/c", "site=Bad_Site"} {
		if r := e.do("GET", "/api/v1/securityevents?"+q, acme, nil); r.code != 400 {
			t.Errorf("?%s: got %d, want 400: %s", q, r.code, r.body)
		}
	}
	if r := e.do("POST", "/api/v1/securityevents", acme, "{}"); r.code != 405 {
		t.Errorf("POST: got %d, want 405", r.code)
	}

	// Roles: secops and viewer read events tenant-wide; a developer bound
	// to hr sees hr's only; netops none (403).
	secops := e.token(acme, "sec", "secops")
	viewer := e.token(acme, "view", "viewer")
	dev := e.token(acme, "dev", "developer", "hr")
	netops := e.token(acme, "net", "netops")
	if l := e.events("/api/v1/securityevents", secops); len(l.Items) != 4 {
		t.Errorf("secops sees %d events, want 4", len(l.Items))
	}
	if l := e.events("/api/v1/securityevents", viewer); len(l.Items) != 4 {
		t.Errorf("viewer sees %d events, want 4", len(l.Items))
	}
	if l := e.events("/api/v1/securityevents", dev); len(l.Items) != 1 || l.Items[0].Namespace != "hr" {
		t.Errorf("developer bound to hr sees %+v", l.Items)
	}
	for _, c := range []struct{ path, tok string }{
		{"/api/v1/namespaces/retail/securityevents", dev},
		{"/api/v1/securityevents", netops},
		{"/api/v1/namespaces/hr/securityevents", netops},
	} {
		r := e.do("GET", c.path, c.tok, nil)
		if r.code != 403 || r.status().Reason != v1.StatusReasonForbidden {
			t.Errorf("GET %s: got %d, want 403: %s", c.path, r.code, r.body)
		}
	}
	// Security events are read-only, whatever a role says.
	r := e.must(200, "POST", "/api/v1/accessreviews", acme, map[string]any{"verb": "delete", "kind": "SecurityEvent", "namespace": "retail"})
	if r.obj()["allowed"] != false {
		t.Errorf("delete SecurityEvent allowed for an admin: %s", r.body)
	}
	r = e.must(200, "POST", "/api/v1/accessreviews", secops, map[string]any{"verb": "list", "kind": "SecurityEvent", "namespace": "retail"})
	if r.obj()["allowed"] != true {
		t.Errorf("secops may not list SecurityEvent: %s", r.body)
	}
	if r := e.do("GET", "/api/v1/securityevents", "", nil); r.code != 401 {
		t.Errorf("anonymous: got %d, want 401", r.code)
	}
}

func TestSecurityEventsWithoutStore(t *testing.T) {
	e := newEnv(t, backendtest.Bolt)
	acme := e.tenant("acme", "retail")
	if r := e.do("GET", "/api/v1/securityevents", acme, nil); r.code != 404 {
		t.Errorf("got %d, want 404: %s", r.code, r.body)
	}
}
