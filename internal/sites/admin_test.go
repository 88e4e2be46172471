package sites_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/internal/sites"
	"github.com/meridian-platform/meridian/internal/sites/sitestest"
)

func TestAdminOperations(t *testing.T) {
	e := sitestest.Start(t)
	c := e.Client(t, "")
	ctx := context.Background()
	tok, err := sites.CreateToken(ctx, c, "eu", map[string]string{"region": "eu"}, 3, 72*time.Hour, false)
	if err != nil {
		t.Fatal(err)
	}
	if tok.Status.Token == "" || tok.Status.ExpiresAt == nil || time.Until(*tok.Status.ExpiresAt) < 71*time.Hour {
		t.Fatalf("token: %+v", tok.Status)
	}
	hc := httpClient(t, e, nil)
	if code, _, msg := register(t, e, hc, tok.Status.Token, "st-1", newNode(t)); code != http.StatusCreated {
		t.Fatal(msg)
	}
	s, err := sites.Approve(ctx, c, "st-1")
	if err != nil || !s.Spec.Approved {
		t.Fatalf("approve: %+v %v", s, err)
	}
	if err := sites.Label(ctx, c, "Site", "", "st-1", map[string]string{"tier": "gold"}, []string{"region"}); err != nil {
		t.Fatal(err)
	}
	if got := getSite(t, c, "st-1").Metadata.Labels; len(got) != 1 || got["tier"] != "gold" {
		t.Fatalf("labels %v", got)
	}
	if s, err := sites.Decommission(ctx, c, "st-1"); err != nil || s.Spec.StateOf() != v1.SiteStateDecommissioned {
		t.Fatalf("decommission: %v", err)
	}
	if err := sites.RevokeToken(ctx, c, "eu"); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := register(t, e, hc, tok.Status.Token, "st-2", newNode(t)); code != http.StatusForbidden {
		t.Fatalf("revoked token registered: %d", code)
	}
	if _, err := sites.Approve(ctx, c, "missing"); err == nil {
		t.Fatal("approving a missing site worked")
	}
}
