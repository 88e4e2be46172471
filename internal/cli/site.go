package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

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
		Short: "Admit, decommission sites and revoke site tokens",
		Long: `Administer sites. A site appears when a node registers with a
SiteToken; see them with ` + "`meridian get sites -o wide`" + `, set their labels
with ` + "`meridian label site NAME k=v`" + `.`,
		Example: `  meridian site approve station-0001
  meridian site decommission station-0001
  meridian site revoke-token eu`,
	}
	f.bindPersistent(cmd, false)
	cmd.AddCommand(
		siteVerb(f, "approve", "Let a pending site receive configuration",
			`  # Admit a site registered with a token without --auto-approve
  meridian site approve station-0001`, "approved",
			func(cmd *cobra.Command, name string) error {
				ctx, cancel := signalContext(cmd)
				defer cancel()
				c, _, err := f.client()
				if err != nil {
					return err
				}
				_, err = sites.Approve(ctx, c, name)
				return err
			}),
		siteVerb(f, "decommission", "Stop a site at once: its stream is closed and its certificate refused",
			`  # Take a stolen or retired station out of service (the name stays taken)
  meridian site decommission station-0001`, "decommissioned",
			func(cmd *cobra.Command, name string) error {
				ctx, cancel := signalContext(cmd)
				defer cancel()
				c, _, err := f.client()
				if err != nil {
					return err
				}
				_, err = sites.Decommission(ctx, c, name)
				return err
			}),
	)
	revoke := siteVerb(f, "revoke-token", "Stop a SiteToken from registering more sites",
		`  # Sites already registered keep working
  meridian site revoke-token eu`, "revoked",
		func(cmd *cobra.Command, name string) error {
			ctx, cancel := signalContext(cmd)
			defer cancel()
			c, _, err := f.client()
			if err != nil {
				return err
			}
			return sites.RevokeToken(ctx, c, name)
		})
	revoke.Use = "revoke-token NAME"
	cmd.AddCommand(revoke)
	return cmd
}

func siteVerb(f *factory, verb, short, example, done string, run func(*cobra.Command, string) error) *cobra.Command {
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
			if err := run(cmd, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(f.streams.Out, "%s/%s %s\n", kind, args[0], done)
			return nil
		},
	}
}
