package sites

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/client"
)

// Admin operations behind the CLI verbs (`meridian create sitetoken`,
// `meridian site approve|decommission`, `meridian label site`), written
// against the REST API so that the CLI stays a thin layer.

// CreateToken creates a SiteToken and returns it with status.token (the
// plaintext, shown once).
func CreateToken(ctx context.Context, c *client.Client, name string, labels map[string]string, maxUses int,
	expires time.Duration, autoApprove bool) (*v1.SiteToken, error) {
	tok := &v1.SiteToken{Spec: v1.SiteTokenSpec{Labels: labels, MaxUses: maxUses, AutoApprove: autoApprove,
		Expires: v1.Duration{Duration: expires}}}
	tok.APIVersion, tok.Kind, tok.Metadata.Name = v1.APIVersion, "SiteToken", name
	if err := c.Create(ctx, tok); err != nil {
		return nil, fmt.Errorf("creating site token %q: %w", name, err)
	}
	return tok, nil
}

// Approve lets a pending site receive configuration.
func Approve(ctx context.Context, c *client.Client, name string) (*v1.Site, error) {
	return patchSite(ctx, c, name, "approving", `{"spec":{"approved":true}}`)
}

// Decommission stops a site at once: its stream is closed, its
// certificates are refused and revoked, and the name stays taken.
func Decommission(ctx context.Context, c *client.Client, name string) (*v1.Site, error) {
	return patchSite(ctx, c, name, "decommissioning", `{"spec":{"decommissioned":true}}`)
}

// RevokeToken stops a SiteToken from registering more sites.
func RevokeToken(ctx context.Context, c *client.Client, name string) error {
	if err := c.Patch(ctx, "SiteToken", "", name, []byte(`{"spec":{"revoked":true}}`), nil); err != nil {
		return fmt.Errorf("revoking site token %q: %w", name, err)
	}
	return nil
}

// Label sets (and, for keys in remove, deletes) labels of any object; for
// sites this is what moves them between virtual sites.
func Label(ctx context.Context, c *client.Client, kind, namespace, name string, set map[string]string, remove []string) error {
	labels := map[string]any{}
	for k, v := range set {
		labels[k] = v
	}
	for _, k := range remove {
		labels[k] = nil
	}
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"labels": labels}})
	if err := c.Patch(ctx, kind, namespace, name, patch, nil); err != nil {
		return fmt.Errorf("labelling %s %q: %w", kind, name, err)
	}
	return nil
}

func patchSite(ctx context.Context, c *client.Client, name, what, patch string) (*v1.Site, error) {
	var s v1.Site
	if err := c.Patch(ctx, "Site", "", name, []byte(patch), &s); err != nil {
		return nil, fmt.Errorf("%s site %q: %w", what, name, err)
	}
	return &s, nil
}

// DefaultRecommissionTokenTTL is how long the token Recommission creates
// stays usable.
const DefaultRecommissionTokenTTL = 24 * time.Hour

// Recommission brings a decommissioned site back under the same name. The
// console's record of the old site is deleted (its certificates stay
// refused: they are revoked and predate any new site of that name) and a
// one-use SiteToken carrying the old site's labels is created and returned
// (status.token holds the plaintext, shown once). The site's node then
// registers again with it under the same name and gets a new certificate;
// with approve the site receives configuration at once, otherwise it waits
// as pending. A site that is not decommissioned is refused.
func Recommission(ctx context.Context, c *client.Client, name string, approve bool, expires time.Duration) (*v1.SiteToken, error) {
	var s v1.Site
	if err := c.Get(ctx, "Site", "", name, &s); err != nil {
		return nil, fmt.Errorf("recommissioning site %q: %w", name, err)
	}
	if !s.Spec.Decommissioned {
		return nil, fmt.Errorf("recommissioning site %q: it is %s, not decommissioned (decommission it first: meridian site decommission %s)",
			name, s.Spec.StateOf(), name)
	}
	if expires <= 0 {
		expires = DefaultRecommissionTokenTTL
	}
	var sfx [3]byte
	rand.Read(sfx[:])
	tokName := fmt.Sprintf("%s-r%s", name[:min(len(name), 55)], hex.EncodeToString(sfx[:]))
	tok, err := CreateToken(ctx, c, tokName, s.Metadata.Labels, 1, expires, approve)
	if err != nil {
		return nil, fmt.Errorf("recommissioning site %q: %w", name, err)
	}
	if err := c.Delete(ctx, "Site", "", name); err != nil {
		// Leave nothing usable behind.
		if rerr := RevokeToken(ctx, c, tokName); rerr != nil {
			err = errors.Join(err, rerr)
		}
		return nil, fmt.Errorf("recommissioning site %q: deleting the decommissioned site: %w", name, err)
	}
	return tok, nil
}
