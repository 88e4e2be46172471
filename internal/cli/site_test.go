package cli_test

import (
	"context"
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
	"github.com/meridian-platform/meridian/internal/sites/sitestest"
)

// nopApplier accepts every object without running anything.
type nopApplier struct{}

func (nopApplier) Apply(context.Context, []v1.Object) []distrib.ObjectError { return nil }

// siteState reads a site through `get site NAME -o json`.
func siteState(t *testing.T, r runner, name string) v1.Site {
	t.Helper()
	var s v1.Site
	if err := json.Unmarshal([]byte(r.ok("get", "site", name, "-o", "json")), &s); err != nil {
		t.Fatal(err)
	}
	return s
}

func waitSite(t *testing.T, r runner, name, what string, cond func(v1.Site) bool) v1.Site {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, _, code := r.run("", "get", "site", name); code == 0 {
			if s := siteState(t, r, name); cond(s) {
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("site %s: timed out waiting for %s", name, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestSiteVerbs creates a site token with the CLI, registers a real node
// agent with it and drives approve, label, get -o wide, describe,
// decommission and revoke-token against a real console.
func TestSiteVerbs(t *testing.T) {
	config := startConsole(t)
	r := runner{t: t, config: config}
	cfg, err := cli.LoadConfig(config)
	if err != nil {
		t.Fatal(err)
	}
	cctx := cfg.Contexts[0]

	out, errOut, code := r.run("", "create", "sitetoken", "lab", "--labels", "region=eu,tier=lab", "--max-uses", "2", "--expires", "1h")
	if code != 0 {
		t.Fatalf("create sitetoken: exit %d: %s", code, errOut)
	}
	token := strings.TrimSpace(out)
	if token == "" || strings.ContainsAny(token, " \n") {
		t.Fatalf("create sitetoken printed %q: want the token alone", out)
	}
	if !strings.Contains(errOut, "sitetoken/lab created; it expires ") {
		t.Fatalf("create sitetoken stderr: %q", errOut)
	}
	var tok v1.SiteToken
	if err := json.Unmarshal([]byte(r.ok("get", "sitetoken", "lab", "-o", "json")), &tok); err != nil {
		t.Fatal(err)
	}
	if tok.Spec.MaxUses != 2 || tok.Spec.AutoApprove || tok.Spec.Labels["region"] != "eu" || tok.Spec.Labels["tier"] != "lab" || tok.Status.Token != "" {
		t.Fatalf("stored token: %+v", tok)
	}
	if _, errOut, code := r.run("", "create", "sitetoken", "bad", "--labels", "novalue"); code == 0 || !strings.Contains(errOut, `label "novalue": want KEY=VALUE`) {
		t.Fatalf("bad label: exit %d: %s", code, errOut)
	}

	sitestest.RunAgent(t, agent.Options{ConsoleURL: cctx.Server, Token: token, Name: "station-1",
		CAData: []byte(cctx.CAData), NodeVersion: "9.9.9-test", Applier: nopApplier{}, MaxBackoff: 200 * time.Millisecond})

	s := waitSite(t, r, "station-1", "registration", func(s v1.Site) bool { return s.Status.State != "" })
	if s.Status.State != v1.SiteStatePending || s.Metadata.Labels["region"] != "eu" {
		t.Fatalf("registered site: state %q labels %v, want pending with the token's labels", s.Status.State, s.Metadata.Labels)
	}

	if out := r.ok("site", "approve", "station-1"); out != "site/station-1 approved\n" {
		t.Fatalf("approve: %q", out)
	}
	waitSite(t, r, "station-1", "approved and online", func(s v1.Site) bool {
		return s.Status.State == v1.SiteStateApproved && s.Status.Online && s.Status.NodeVersion == "9.9.9-test"
	})

	if out := r.ok("label", "site", "station-1", "rack=r7", "tier-"); out != "site/station-1 labeled\n" {
		t.Fatalf("label: %q", out)
	}
	s = siteState(t, r, "station-1")
	if s.Metadata.Labels["rack"] != "r7" || s.Metadata.Labels["region"] != "eu" {
		t.Fatalf("labels after label: %v", s.Metadata.Labels)
	}
	if _, ok := s.Metadata.Labels["tier"]; ok {
		t.Fatalf("tier- did not remove the label: %v", s.Metadata.Labels)
	}

	// Site labels are for site admins: a devops token may read sites but
	// not label them (the console enforces it).
	devTok := strings.TrimSpace(r.ok("create", "token", "dev", "--role", "devops", "-A"))
	devConfig := filepath.Join(t.TempDir(), "dev.yaml")
	if err := cli.WriteContext(devConfig, cli.Context{Name: "dev", Server: cctx.Server, CAData: cctx.CAData,
		Token: devTok, Tenant: cctx.Tenant}, true); err != nil {
		t.Fatal(err)
	}
	dev := runner{t: t, config: devConfig}
	dev.ok("get", "site", "station-1")
	if _, errOut, code := dev.run("", "label", "site", "station-1", "region=us", "--overwrite"); code == 0 || !strings.Contains(errOut, `may not patch Site`) {
		t.Fatalf("devops label site: exit %d: %s", code, errOut)
	}
	if _, errOut, code := dev.run("", "site", "decommission", "station-1"); code == 0 || !strings.Contains(errOut, `may not patch Site`) {
		t.Fatalf("devops site decommission: exit %d: %s", code, errOut)
	}
	if s := siteState(t, r, "station-1"); s.Metadata.Labels["region"] != "eu" || s.Spec.Decommissioned {
		t.Fatalf("a refused devops call changed the site: %+v", s)
	}

	wide := r.ok("get", "sites", "-o", "wide")
	lines := strings.Split(strings.TrimSpace(wide), "\n")
	for _, col := range []string{"ONLINE", "LAST-SEEN", "NODE-VERSION", "CAPABILITY", "APPLIED", "ERRORS"} {
		if !strings.Contains(lines[0], col) {
			t.Fatalf("get sites -o wide: no %s column:\n%s", col, wide)
		}
	}
	if len(lines) != 2 || !strings.Contains(lines[1], "station-1") || !strings.Contains(lines[1], "true") || !strings.Contains(lines[1], "9.9.9-test") {
		t.Fatalf("get sites -o wide:\n%s", wide)
	}

	desc := r.ok("describe", "site", "station-1")
	for _, want := range []string{"station-1", "state: approved", "online: true", "nodeVersion: 9.9.9-test", "rack=r7"} {
		if !strings.Contains(desc, want) {
			t.Fatalf("describe site: no %q in:\n%s", want, desc)
		}
	}

	if out := r.ok("site", "decommission", "station-1"); out != "site/station-1 decommissioned\n" {
		t.Fatalf("decommission: %q", out)
	}
	waitSite(t, r, "station-1", "decommissioned and offline", func(s v1.Site) bool {
		return s.Status.State == v1.SiteStateDecommissioned && !s.Status.Online
	})

	// Recommission: a one-use token with the site's labels; the old
	// record goes (the node registers again with the token).
	out, errOut, code = r.run("", "site", "recommission", "station-1", "--approve", "--expires", "2h")
	if code != 0 {
		t.Fatalf("recommission: exit %d: %s", code, errOut)
	}
	if rtok := strings.TrimSpace(out); rtok == "" || strings.ContainsAny(rtok, " \n") {
		t.Fatalf("recommission printed %q: want the token alone", out)
	}
	m := regexp.MustCompile(`site/station-1 recommissioned: sitetoken/(station-1-r[0-9a-f]{6}) registers it once until `).FindStringSubmatch(errOut)
	if m == nil || !strings.Contains(errOut, "--name station-1") {
		t.Fatalf("recommission stderr: %q", errOut)
	}
	var rt v1.SiteToken
	if err := json.Unmarshal([]byte(r.ok("get", "sitetoken", m[1], "-o", "json")), &rt); err != nil {
		t.Fatal(err)
	}
	if rt.Spec.MaxUses != 1 || !rt.Spec.AutoApprove || rt.Spec.Labels["rack"] != "r7" || rt.Spec.Labels["region"] != "eu" {
		t.Fatalf("recommission token: %+v", rt.Spec)
	}
	if _, errOut, code := r.run("", "get", "site", "station-1"); code == 0 || !strings.Contains(errOut, "not found") {
		t.Fatalf("the recommissioned site's old record: exit %d: %s", code, errOut)
	}
	if _, errOut, code := r.run("", "site", "recommission", "nowhere"); code == 0 || !strings.Contains(errOut, `"nowhere"`) {
		t.Fatalf("recommission of a missing site: exit %d: %s", code, errOut)
	}
	if out := r.ok("site", "recommission", "--help"); !strings.Contains(out, "new serial") || !strings.Contains(out, "Examples:") {
		t.Fatalf("site recommission --help:\n%s", out)
	}

	if out := r.ok("site", "revoke-token", "lab"); out != "sitetoken/lab revoked\n" {
		t.Fatalf("revoke-token: %q", out)
	}
	if err := json.Unmarshal([]byte(r.ok("get", "sitetoken", "lab", "-o", "json")), &tok); err != nil {
		t.Fatal(err)
	}
	if !tok.Spec.Revoked {
		t.Fatal("revoke-token did not revoke")
	}
	if _, errOut, code := r.run("", "site", "approve", "nowhere"); code == 0 || !strings.Contains(errOut, "nowhere") {
		t.Fatalf("approve of a missing site: exit %d: %s", code, errOut)
	}

	// Help shows examples.
	for _, args := range [][]string{{"create", "sitetoken", "--help"}, {"site", "approve", "--help"}, {"site", "--help"}} {
		if out := r.ok(args...); !strings.Contains(out, "Examples:") {
			t.Fatalf("meridian %s: no examples:\n%s", strings.Join(args, " "), out)
		}
	}
}
