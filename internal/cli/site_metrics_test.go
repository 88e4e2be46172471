package cli_test

import (
	"encoding/json"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/internal/cli"
	"github.com/meridian-platform/meridian/internal/distrib"
	"github.com/meridian-platform/meridian/internal/node/agent"
	"github.com/meridian-platform/meridian/internal/secevents"
	"github.com/meridian-platform/meridian/internal/sites"
	"github.com/meridian-platform/meridian/internal/sites/sitestest"
)

// topObjects are the owner's side of the shared-site fixture with the
// load balancer named shop.
func topObjects() string {
	o := sitestest.Owner()
	o.LoadBalancer, o.Domains = "shop", `["shop.example"]`
	return o.YAML()
}

// TestTopAndDescribeTelemetry: counters a real node agent reports reach
// `meridian top` and `meridian describe` (per site for a load balancer,
// per object and node-wide for a site), as tables and as JSON, and the
// console checks "get" on the kind (a netops token reads the site's
// telemetry but not a load balancer's metrics).
func TestTopAndDescribeTelemetry(t *testing.T) {
	config := startConsole(t)
	r := runner{t: t, config: config}
	cfg, err := cli.LoadConfig(config)
	if err != nil {
		t.Fatal(err)
	}
	cctx := cfg.Contexts[0]
	if _, errOut, code := r.run(topObjects(), "apply", "-f", "-"); code != 0 {
		t.Fatalf("apply: %s", errOut)
	}
	token := strings.TrimSpace(r.ok("create", "sitetoken", "eu", "--labels", "region=eu", "--auto-approve"))
	a := sitestest.RunAgent(t, agent.Options{ConsoleURL: cctx.Server, Token: token, Name: "station-1",
		CAData: []byte(cctx.CAData), Applier: nopApplier{}, TelemetryInterval: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})

	if out := r.ok("top", "httploadbalancer", "shop", "-n", "retail"); !strings.Contains(out, "no site has reported") {
		t.Fatalf("top before any report:\n%s", out)
	}
	waitSite(t, r, "station-1", "online", func(s v1.Site) bool { return s.Status.Online && s.Status.AppliedVersion != "" })
	ref := distrib.ObjectRef{Kind: "HTTPLoadBalancer", Namespace: "retail", Name: "shop"}
	for name, v := range map[string]float64{"requests_total": 12, "requests_2xx": 10, "requests_5xx": 2,
		"listener_connections": 3, "request_bytes_total": 4096} {
		a.SetObjectCounter(ref, name, v)
	}
	a.SetCounter("process_open_fds", 7)
	a.RecordEvent(distrib.Event{Type: "config.warning", Message: "listener 8080 shared"})
	// A security event is its load balancer's tenant's (served by
	// securityevents), never part of the site's telemetry.
	a.RecordEvent(distrib.Event{Type: secevents.TelemetryType, Message: "blocked", Attrs: map[string]string{"loadBalancer": "retail/shop"}})

	row := regexp.MustCompile(`(?m)^station-1\s+true\s+12\s+10\s+-\s+-\s+2\s+3\s+4096\s+-\s+\S+ ago$`)
	deadline := time.Now().Add(15 * time.Second)
	var out string
	for {
		out = r.ok("top", "httploadbalancer", "shop", "-n", "retail")
		if row.MatchString(out) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("top httploadbalancer: no row for station-1:\n%s", out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, col := range []string{"SITE", "ONLINE", "REQUESTS", "2XX", "5XX", "CONNS", "BYTES-IN", "BYTES-OUT", "LAST REPORT"} {
		if !strings.Contains(out, col) {
			t.Fatalf("top httploadbalancer: no %s column:\n%s", col, out)
		}
	}
	desc := r.ok("describe", "httploadbalancer", "shop", "-n", "retail")
	if !strings.Contains(desc, "\nMetrics:\n") || !regexp.MustCompile(`(?m)^  station-1\s+true\s+12\s`).MatchString(desc) {
		t.Fatalf("describe httploadbalancer: no per-site metrics:\n%s", desc)
	}
	desc = r.ok("describe", "site", "station-1")
	for _, want := range []string{"\nTelemetry:\n", "Online: true", "process_open_fds: 7", "config.warning  listener 8080 shared"} {
		if !strings.Contains(desc, want) {
			t.Fatalf("describe site: no %q in:\n%s", want, desc)
		}
	}
	if strings.Contains(desc, "blocked") {
		t.Fatalf("describe site shows a security event:\n%s", desc)
	}
	if !regexp.MustCompile(`(?m)^    HTTPLoadBalancer\s+retail/shop\s+12\s+10\s`).MatchString(desc) {
		t.Fatalf("describe site: no object row:\n%s", desc)
	}
	var tel sites.SiteTelemetry
	if err := json.Unmarshal([]byte(r.ok("top", "site", "station-1", "-o", "json")), &tel); err != nil {
		t.Fatal(err)
	}
	if tel.Kind != "SiteTelemetry" || tel.Site != "station-1" || !tel.Online || tel.Counters["process_open_fds"] != 7 ||
		len(tel.Objects) != 1 || tel.Objects[0].Name != "shop" || tel.Objects[0].Counters["requests_5xx"] != 2 ||
		len(tel.Events) != 1 || tel.Events[0].Type != "config.warning" {
		t.Fatalf("top site -o json: %+v", tel)
	}
	var m sites.ObjectMetrics
	if err := json.Unmarshal([]byte(r.ok("top", "httploadbalancer/shop", "-n", "retail", "-o", "json")), &m); err != nil {
		t.Fatal(err)
	}
	if len(m.Sites) != 1 || m.Sites[0].Site != "station-1" || m.Sites[0].Owner != "" || m.Total["requests_total"] != 12 {
		t.Fatalf("top httploadbalancer -o json: %+v", m)
	}

	// RBAC: "get" on the kind.
	netTok := strings.TrimSpace(r.ok("create", "token", "net", "--role", "netops", "-A"))
	netConfig := filepath.Join(t.TempDir(), "net.yaml")
	if err := cli.WriteContext(netConfig, cli.Context{Name: "net", Server: cctx.Server, CAData: cctx.CAData,
		Token: netTok, Tenant: cctx.Tenant}, true); err != nil {
		t.Fatal(err)
	}
	net := runner{t: t, config: netConfig}
	if out := net.ok("top", "site", "station-1"); !strings.Contains(out, "process_open_fds: 7") {
		t.Fatalf("netops top site:\n%s", out)
	}
	if _, errOut, code := net.run("", "top", "httploadbalancer", "shop", "-n", "retail"); code == 0 || !strings.Contains(errOut, "may not get HTTPLoadBalancer") {
		t.Fatalf("netops top httploadbalancer: exit %d: %s", code, errOut)
	}
	// Bad input.
	if _, errOut, code := r.run("", "top", "namespace", "retail"); code == 0 || !strings.Contains(errOut, "not namespaces") {
		t.Fatalf("top namespace: exit %d: %s", code, errOut)
	}
	if _, errOut, code := r.run("", "top", "site", "station-1", "-o", "wide"); code == 0 || !strings.Contains(errOut, `--output "wide"`) {
		t.Fatalf("top -o wide: exit %d: %s", code, errOut)
	}
	if _, errOut, code := r.run("", "top", "site", "nowhere"); code == 0 || !strings.Contains(errOut, "nowhere") {
		t.Fatalf("top of a missing site: exit %d: %s", code, errOut)
	}
	if out := r.ok("top", "--help"); !strings.Contains(out, "Examples:") || !strings.Contains(out, "/metrics") {
		t.Fatalf("top --help:\n%s", out)
	}
}
