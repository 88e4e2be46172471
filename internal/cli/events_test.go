package cli_test

import (
	"context"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/meridian-platform/meridian/internal/cli"
	"github.com/meridian-platform/meridian/internal/secevents"
)

// TestSecurityEventsAgainstConsole lists security events kept by a real
// console (written to its event store as the intake does) with every form
// of the command, and follows new ones with --watch.
func TestSecurityEventsAgainstConsole(t *testing.T) {
	cfg := startConsole(t)
	r := runner{t: t, config: cfg}
	store := secevents.NewStore(filepath.Join(filepath.Dir(cfg), "data", "events"), secevents.StoreOptions{})
	now := time.Now().UTC().Truncate(time.Second)
	waf := secevents.Record{Time: now.Add(-time.Minute), Type: "waf", Action: "blocked", RequestID: "r-1", Namespace: "retail",
		LoadBalancer: "shop", Route: "api", Site: "paris", Client: "203.0.113.7", Method: "GET", Host: "shop.example", Path: "/q",
		Status: 403, Source: "retail/fw", Message: "blocked by rule 942100",
		Rules: []secevents.RuleHit{{ID: 942100, Message: "SQL Injection Attack"}, {ID: 949110, Message: "Inbound Anomaly Score Exceeded"}}}
	pol := secevents.Record{Time: now.Add(-2 * time.Hour), Type: "policy", Action: "denied", Namespace: "hr", LoadBalancer: "portal",
		Site: "oslo", Client: "198.51.100.1", Status: 403, Source: "hr/guard", Message: "deny", Rules: []secevents.RuleHit{{Name: "no-admin"}}}
	if err := store.Append("default", []secevents.Record{waf, pol}); err != nil {
		t.Fatal(err)
	}

	var res syncBuffer
	rs := cli.IOStreams{In: strings.NewReader(""), Out: &res, ErrOut: &res}
	cli.Execute(cli.NewRootCommand(rs), []string{"api-resources"}, rs)
	if out := res.String(); !regexp.MustCompile(`(?m)^securityevents\s+secevents,sev\s+SecurityEvent\s+Namespaced \(read-only\)$`).MatchString(out) {
		t.Fatalf("api-resources lacks security events:\n%s", out)
	}
	out := r.ok("get", "securityevents") // the context's namespace: retail
	row := regexp.MustCompile(`(?m)^TIME\s+TYPE\s+ACTION\s+LB\s+ROUTE\s+SITE\s+CLIENT\s+RULES\s+MESSAGE\n\S+\s+waf\s+blocked\s+shop\s+api\s+paris\s+203\.0\.113\.7\s+942100,949110\s+blocked by rule 942100\n$`)
	if !row.MatchString(out) {
		t.Fatalf("get securityevents:\n%s", out)
	}
	out = r.ok("events", "-A")
	if !strings.Contains(out, "retail/shop") || !strings.Contains(out, "hr/portal") || strings.Index(out, "retail/shop") > strings.Index(out, "hr/portal") {
		t.Fatalf("events -A, newest first with namespaces:\n%s", out)
	}
	if out := r.ok("get", "sev", "-A", "--since", "1h"); strings.Contains(out, "portal") || !strings.Contains(out, "shop") {
		t.Fatalf("--since 1h:\n%s", out)
	}
	if out := r.ok("get", "secevents", "-A", "--rule", "no-admin", "--site", "oslo", "--type", "policy", "--lb", "hr/portal"); !strings.Contains(out, "portal") || strings.Contains(out, "shop") {
		t.Fatalf("filters:\n%s", out)
	}
	if out := r.ok("events", "-n", "retail", "-o", "wide"); !strings.Contains(out, "REQUEST-ID") || !strings.Contains(out, "GET shop.example/q") || !strings.Contains(out, "retail/fw") {
		t.Fatalf("-o wide:\n%s", out)
	}
	if out := r.ok("events", "-A", "-o", "yaml"); !strings.Contains(out, "kind: SecurityEventList") || !strings.Contains(out, "id: 942100") {
		t.Fatalf("-o yaml:\n%s", out)
	}
	if _, errOut, code := r.run("", "get", "securityevents", "-n", "empty"); code != 0 || !strings.Contains(errOut, "No security events found in namespace empty.") {
		t.Fatalf("empty namespace: %d %s", code, errOut)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"get", "sev", "--since", "yesterday"}, "--since"},
		{[]string{"get", "sev", "-o", "name"}, "unknown output format"},
		{[]string{"get", "sev", "shop"}, "no names"},
		{[]string{"get", "originpools", "--rule", "1"}, "--rule filters security events only"},
		{[]string{"events", "--type", "bogus"}, `invalid type "bogus"`},
	} {
		if _, errOut, code := r.run("", c.args...); code == 0 || !strings.Contains(errOut, c.want) {
			t.Errorf("meridian %s: exit %d, stderr %q, want it to mention %q", strings.Join(c.args, " "), code, errOut, c.want)
		}
	}

	// --watch prints new events once each.
	var wout, werr syncBuffer
	streams := cli.IOStreams{In: strings.NewReader(""), Out: &wout, ErrOut: &werr}
	root := cli.NewRootCommand(streams)
	root.SetArgs([]string{"events", "-A", "--watch", "--config", cfg})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	waitOut := func(what string, cond func(string) bool) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for !cond(wout.String()) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s; stdout:\n%s\nstderr:\n%s", what, wout.String(), werr.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitOut("the initial list", func(s string) bool { return strings.Contains(s, "portal") })
	late := pol
	late.Time, late.LoadBalancer = time.Now().UTC(), "late"
	if err := store.Append("default", []secevents.Record{late}); err != nil {
		t.Fatal(err)
	}
	waitOut("the new event", func(s string) bool { return strings.Contains(s, "hr/late") })
	time.Sleep(2500 * time.Millisecond) // one more poll: nothing printed twice
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("watch ended with %v", err)
	}
	if s := wout.String(); strings.Count(s, "hr/late") != 1 || strings.Count(s, "retail/shop") != 1 || strings.Count(s, "TIME") != 1 {
		t.Fatalf("watch output:\n%s", s)
	}
}
