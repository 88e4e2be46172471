package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/meridian-platform/meridian/client"
	"github.com/meridian-platform/meridian/internal/sites"
)

// newCreateSiteTokenCommand is `meridian create sitetoken`.
func newCreateSiteTokenCommand(f *factory) *cobra.Command {
	var (
		labels      []string
		maxUses     int
		expires     time.Duration
		autoApprove bool
	)
	cmd := &cobra.Command{
		Use:   "sitetoken NAME",
		Short: "Create a site registration token and print it (once: it cannot be read again)",
		Long: `Create a SiteToken: the secret nodes present to register as sites
(` + "`meridian node --console URL --token TOKEN --name NAME`" + `). Sites
registered with it get the token's labels. With --auto-approve they receive
configuration at once; otherwise they wait as pending until
` + "`meridian site approve NAME`" + `.

The console stores only the token's hash: the token is printed once, now,
alone on standard output (so it can be captured with $(...)).`,
		Example: `  # A token for up to 25,000 EU stations, valid for three days, admitted at once
  TOKEN=$(meridian create sitetoken eu --labels region=eu --max-uses 25000 --expires 72h --auto-approve)

  # Sites registered with this token wait for approval
  meridian create sitetoken lab --labels region=us,tier=lab --max-uses 3`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			lbl, err := parseLabelList(labels)
			if err != nil {
				return err
			}
			if maxUses < 0 {
				return fmt.Errorf("--max-uses must not be negative")
			}
			ctx, cancel := signalContext(cmd)
			defer cancel()
			c, _, err := f.client()
			if err != nil {
				return err
			}
			tok, err := sites.CreateToken(ctx, c, name, lbl, maxUses, expires, autoApprove)
			if err != nil {
				return err
			}
			if tok.Status.Token == "" {
				return fmt.Errorf("sitetoken/%s was created but the console returned no token", name)
			}
			fmt.Fprintln(f.streams.Out, tok.Status.Token)
			msg := fmt.Sprintf("sitetoken/%s created", name)
			if tok.Status.ExpiresAt != nil {
				msg += "; it expires " + tok.Status.ExpiresAt.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(f.streams.ErrOut, "%s. Store the token now: it is not shown again.\n", msg)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringSliceVar(&labels, "labels", nil, "labels given to every site registered with the token: k=v[,k=v]")
	fl.IntVar(&maxUses, "max-uses", 0, "how many sites may register with the token (0: the console's default)")
	fl.DurationVar(&expires, "expires", 0, "lifetime of the token, e.g. 72h (0: the console's default)")
	fl.BoolVar(&autoApprove, "auto-approve", false, "admit registered sites at once instead of leaving them pending")
	return cmd
}

// parseLabelList parses k=v items (each may itself hold k=v,k=v).
func parseLabelList(items []string) (map[string]string, error) {
	if len(items) == 0 {
		return nil, nil
	}
	out := map[string]string{}
	for _, it := range items {
		for _, kv := range strings.Split(it, ",") {
			if kv = strings.TrimSpace(kv); kv == "" {
				continue
			}
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return nil, fmt.Errorf("label %q: want KEY=VALUE", kv)
			}
			out[k] = v
		}
	}
	return out, nil
}

// newSiteCommand is `meridian site approve|decommission|revoke-token`.
func newSiteCommand(streams IOStreams) *cobra.Command {
	f := &factory{streams: streams}
	cmd := &cobra.Command{
		Use:   "site",
		Short: "Admit, decommission, recommission sites and revoke site tokens",
		Long: `Administer sites. A site appears when a node registers with a
SiteToken; see them with ` + "`meridian get sites -o wide`" + `, set their labels
with ` + "`meridian label site NAME k=v`" + `.`,
		Example: `  meridian site approve station-0001
  meridian site decommission station-0001
  meridian site recommission station-0001 --approve
  meridian site revoke-token eu`,
	}
	f.bindPersistent(cmd, false)
	cmd.AddCommand(
		siteVerb(f, "approve", "Let a pending site receive configuration",
			`  # Admit a site registered with a token without --auto-approve
  meridian site approve station-0001`, "approved",
			func(ctx context.Context, c *client.Client, name string) error {
				_, err := sites.Approve(ctx, c, name)
				return err
			}),
		siteVerb(f, "decommission", "Stop a site at once: its stream is closed and its certificate refused",
			`  # Take a stolen or retired station out of service (the name stays taken)
  meridian site decommission station-0001`, "decommissioned",
			func(ctx context.Context, c *client.Client, name string) error {
				_, err := sites.Decommission(ctx, c, name)
				return err
			}),
	)
	revoke := siteVerb(f, "revoke-token", "Stop a SiteToken from registering more sites",
		`  # Sites already registered keep working
  meridian site revoke-token eu`, "revoked",
		func(ctx context.Context, c *client.Client, name string) error {
			return sites.RevokeToken(ctx, c, name)
		})
	revoke.Use = "revoke-token NAME"
	cmd.AddCommand(revoke, newSiteRecommissionCommand(f))
	return cmd
}

// newSiteRecommissionCommand is `meridian site recommission NAME`.
func newSiteRecommissionCommand(f *factory) *cobra.Command {
	var (
		approve bool
		expires time.Duration
	)
	cmd := &cobra.Command{
		Use:   "recommission NAME",
		Short: "Bring a decommissioned site back: print a one-use token its node registers again with",
		Long: `Bring a decommissioned site back into service under the same name.

The console deletes its record of the decommissioned site and creates a
SiteToken for one registration carrying the site's labels (valid 24h unless
--expires says otherwise). The token is printed once, alone on standard
output. On the site, start the node with it and the same name:

  meridian node --console https://HOST:PORT --token TOKEN --name NAME [--data-dir DIR]

The node registers again (a node that kept its data directory drops the
refused identity by itself) and gets a new certificate with a new serial.
The old certificate never works again: it was revoked at decommissioning
and it predates the new site. With --approve the site receives
configuration as soon as it registers; otherwise it waits as pending until
` + "`meridian site approve NAME`" + `.

Until the node registers, the name is free: any valid SiteToken of the
tenant could register it. Start the node promptly, or revoke the token
(` + "`meridian site revoke-token TOKEN-NAME`" + `) to cancel.
See docs/sites.md.`,
		Example: `  # Bring station-0001 back, admitted at once when it registers
  TOKEN=$(meridian site recommission station-0001 --approve)
  # then on the station:
  meridian node --console https://console:8443 --token "$TOKEN" --name station-0001`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if expires < 0 {
				return fmt.Errorf("--expires must not be negative")
			}
			ctx, cancel := signalContext(cmd)
			defer cancel()
			c, _, err := f.client()
			if err != nil {
				return err
			}
			tok, err := sites.Recommission(ctx, c, name, approve, expires)
			if err != nil {
				return err
			}
			if tok.Status.Token == "" {
				return fmt.Errorf("site %q: sitetoken/%s was created but the console returned no token", name, tok.Metadata.Name)
			}
			fmt.Fprintln(f.streams.Out, tok.Status.Token)
			until := ""
			if tok.Status.ExpiresAt != nil {
				until = " until " + tok.Status.ExpiresAt.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(f.streams.ErrOut, "site/%s recommissioned: sitetoken/%s registers it once%s. On the site run:\n"+
				"  meridian node --console %s --token TOKEN --name %s\nStore the token now: it is not shown again.\n",
				name, tok.Metadata.Name, until, c.Server(), name)
			return nil
		},
	}
	cmd.Flags().BoolVar(&approve, "approve", false, "admit the site as soon as it registers instead of leaving it pending")
	cmd.Flags().DurationVar(&expires, "expires", 0, "how long the token stays usable (default 24h)")
	return cmd
}

// siteVerb is a `meridian site VERB NAME` command that runs run with a
// client and says done.
func siteVerb(f *factory, verb, short, example, done string, run func(ctx context.Context, c *client.Client, name string) error) *cobra.Command {
	kind := "site"
	if verb == "revoke-token" {
		kind = "sitetoken"
	}
	return &cobra.Command{
		Use:     verb + " NAME",
		Short:   short,
		Example: example,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := signalContext(cmd)
			defer cancel()
			c, _, err := f.client()
			if err != nil {
				return err
			}
			if err := run(ctx, c, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(f.streams.Out, "%s/%s %s\n", kind, args[0], done)
			return nil
		},
	}
}
