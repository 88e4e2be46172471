package cli

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/client"
)

func newCreateCommand(streams IOStreams) *cobra.Command {
	f := &factory{streams: streams}
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Create an API token, a namespace or a site token",
		Example: `  meridian create namespace retail
  meridian create token ci --expires 720h --role devops -n retail
  meridian create sitetoken eu --labels region=eu --max-uses 25000 --expires 72h --auto-approve`,
	}
	f.bindPersistent(cmd, true)
	cmd.AddCommand(newCreateTokenCommand(f), newCreateNamespaceCommand(f), newCreateSiteTokenCommand(f))
	return cmd
}

func newCreateTokenCommand(f *factory) *cobra.Command {
	var (
		expires       time.Duration
		description   string
		role          string
		allNamespaces bool
		dryRun        bool
	)
	cmd := &cobra.Command{
		Use:   "token NAME",
		Short: "Create an API token and print it (once: it cannot be read again)",
		Long: `Create an API token. The console stores only its hash: the token is
printed once, now, on standard output (and nothing else is, so it can be
captured with $(...)). With --role the token is also bound to that role in
-n (or in every namespace of the tenant with -A) by a RoleBinding named
token-NAME-ROLE.`,
		Example: `  # A token for CI that may deploy into namespace retail for 30 days
  TOKEN=$(meridian create token ci --expires 720h --role devops -n retail)

  # A token without any role yet (bind it later with a RoleBinding)
  meridian create token monitoring --description "read-only scraper"`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			ctx, cancel := signalContext(cmd)
			defer cancel()
			c, cctx, err := f.client()
			if err != nil {
				return err
			}
			spec := map[string]any{}
			if expires > 0 {
				spec["expires"] = expires.String()
			}
			if description != "" {
				spec["description"] = description
			}
			tok, err := rawObject("APIToken", "", name, spec)
			if err != nil {
				return err
			}
			var binding *client.Raw
			if role != "" {
				bspec := map[string]any{
					"role":     role,
					"subjects": []map[string]string{{"kind": "APIToken", "name": name}},
				}
				if !allNamespaces {
					bspec["namespaces"] = []string{f.ns(cctx)}
				}
				if binding, err = rawObject("RoleBinding", "", "token-"+name+"-"+role, bspec); err != nil {
					return err
				}
				// Check the binding first, so that a bad role does not
				// leave a token without its binding.
				probe, _ := client.ToRaw(binding)
				if err := c.Create(ctx, probe, client.DryRun()); err != nil && !client.IsInvalid(err) {
					return fmt.Errorf("rolebinding/%s: %w", binding.Metadata.Name, err)
				}
			}
			if err := c.Create(ctx, tok, client.DryRunIf(dryRun)); err != nil {
				return err
			}
			if binding != nil && !dryRun {
				if err := c.Create(ctx, binding); err != nil {
					return fmt.Errorf("the token was created but binding it failed: rolebinding/%s: %w", binding.Metadata.Name, err)
				}
			}
			if dryRun {
				fmt.Fprintf(f.streams.ErrOut, "apitoken/%s created (dry run)\n", name)
				return nil
			}
			var st struct {
				Token     string     `json:"token"`
				ExpiresAt *time.Time `json:"expiresAt"`
			}
			if raw, ok := tok.Fields["status"]; ok {
				_ = json.Unmarshal(raw, &st)
			}
			if st.Token == "" {
				return fmt.Errorf("apitoken/%s was created but the console returned no token", name)
			}
			fmt.Fprintln(f.streams.Out, st.Token)
			msg := fmt.Sprintf("apitoken/%s created", name)
			if st.ExpiresAt != nil {
				msg += "; it expires " + st.ExpiresAt.UTC().Format(time.RFC3339)
			}
			if binding != nil {
				msg += fmt.Sprintf("; bound to role %s by rolebinding/%s", role, binding.Metadata.Name)
			}
			fmt.Fprintf(f.streams.ErrOut, "%s. Store the token now: it is not shown again.\n", msg)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.DurationVar(&expires, "expires", 0, "lifetime of the token, e.g. 720h (default: the console's)")
	fl.StringVar(&description, "description", "", "what the token is for")
	fl.StringVar(&role, "role", "", "bind the token to this role (built-in or custom) in -n")
	fl.BoolVarP(&allNamespaces, "all-namespaces", "A", false, "with --role: bind in every namespace of the tenant")
	fl.BoolVar(&dryRun, "dry-run", false, "check on the console without creating")
	return cmd
}

func newCreateNamespaceCommand(f *factory) *cobra.Command {
	var displayName, description string
	var dryRun bool
	cmd := &cobra.Command{
		Use:     "namespace NAME",
		Aliases: []string{"ns"},
		Short:   "Create a namespace",
		Example: `  meridian create namespace retail --display-name "Retail shops"`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := signalContext(cmd)
			defer cancel()
			c, _, err := f.client()
			if err != nil {
				return err
			}
			spec := map[string]any{}
			if displayName != "" {
				spec["displayName"] = displayName
			}
			if description != "" {
				spec["description"] = description
			}
			obj, err := rawObject("Namespace", "", args[0], spec)
			if err != nil {
				return err
			}
			if err := c.Create(ctx, obj, client.DryRunIf(dryRun)); err != nil {
				return err
			}
			suffix := ""
			if dryRun {
				suffix = " (dry run)"
			}
			fmt.Fprintf(f.streams.Out, "namespace/%s created%s\n", args[0], suffix)
			return nil
		},
	}
	cmd.Flags().StringVar(&displayName, "display-name", "", "name shown in the web console")
	cmd.Flags().StringVar(&description, "description", "", "what the namespace is for")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "check on the console without creating")
	return cmd
}

// rawObject builds an object of kind with the given spec.
func rawObject(kind, namespace, name string, spec map[string]any) (*client.Raw, error) {
	data, err := json.Marshal(spec)
	if err != nil {
		return nil, err
	}
	r := &client.Raw{Fields: map[string]json.RawMessage{"spec": data}}
	r.APIVersion, r.Kind = v1.APIVersion, kind
	r.Metadata.Name, r.Metadata.Namespace = name, namespace
	return r, nil
}
