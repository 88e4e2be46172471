package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/client"
)

// rbacVerbs are the verbs RBAC knows.
var rbacVerbs = []string{"get", "list", "watch", "create", "update", "patch", "delete", "*"}

func newAuthCommand(streams IOStreams) *cobra.Command {
	f := &factory{streams: streams}
	cmd := &cobra.Command{
		Use:   "auth",
		Short: "Inspect authorization: who am I, may I do this",
		Example: `  meridian auth whoami
  meridian auth can-i create originpools -n retail`,
	}
	f.bindPersistent(cmd, true)
	cmd.AddCommand(newCanICommand(f), newWhoAmICommand(f))
	return cmd
}

func newCanICommand(f *factory) *cobra.Command {
	var quiet bool
	cmd := &cobra.Command{
		Use:   "can-i VERB KIND",
		Short: "Ask whether the current credentials may do VERB on KIND",
		Long: `Ask the console whether the current credentials may do VERB (get, list,
watch, create, update, patch, delete or *) on KIND ("*" for every kind,
"auditrecords" for the audit log) in -n. Prints yes or no; the exit status
is 0 for yes and 1 for no.`,
		Example: `  meridian auth can-i create originpools -n retail
  meridian auth can-i delete namespace
  meridian auth can-i '*' '*' -n retail
  meridian auth can-i list auditrecords`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			verb := strings.ToLower(args[0])
			if !contains(rbacVerbs, verb) {
				return fmt.Errorf("unknown verb %q: use one of %s", args[0], strings.Join(rbacVerbs, ", "))
			}
			kind, namespaced := "*", true
			switch {
			case args[1] == "*":
			case isNonObjectKind(args[1]) != "":
				kind, namespaced = isNonObjectKind(args[1]), f.namespace != ""
			default:
				ki, err := resolveKind(args[1])
				if err != nil {
					return err
				}
				kind, namespaced = ki.Kind, ki.Scope == v1.ScopeNamespaced
			}
			ctx, cancel := signalContext(cmd)
			defer cancel()
			c, cctx, err := f.client()
			if err != nil {
				return err
			}
			req := client.AccessReviewRequest{Verb: verb, Kind: kind}
			if namespaced {
				req.Namespace = f.ns(cctx)
			}
			res, err := c.AccessReview(ctx, req)
			if err != nil {
				return err
			}
			if !quiet {
				if res.Allowed {
					fmt.Fprintln(f.streams.Out, "yes")
				} else {
					fmt.Fprintln(f.streams.Out, "no")
					if res.Reason != "" {
						fmt.Fprintf(f.streams.ErrOut, "(%s)\n", res.Reason)
					}
				}
			}
			if !res.Allowed {
				return silentExit(1)
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print nothing; answer through the exit status only")
	return cmd
}

func newWhoAmICommand(f *factory) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "whoami",
		Short: "Show the principal behind the current credentials",
		Example: `  meridian auth whoami
  meridian auth whoami -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "" && output != outJSON && output != outYAML {
				return fmt.Errorf("unknown output format %q: use yaml or json", output)
			}
			ctx, cancel := signalContext(cmd)
			defer cancel()
			c, _, err := f.client()
			if err != nil {
				return err
			}
			who, err := c.WhoAmI(ctx)
			if err != nil {
				return err
			}
			if output != "" {
				return printData(f.streams.Out, output, who)
			}
			roles := strings.Join(who.Roles, ", ")
			if roles == "" {
				roles = "<none>"
			}
			fmt.Fprintf(f.streams.Out, "Tenant:  %s\nName:    %s\nKind:    %s\nRoles:   %s\n", who.Tenant, who.Name, who.Kind, roles)
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "output format: yaml or json")
	return cmd
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// isNonObjectKind resolves the RBAC kinds that are not objects
// ("auditrecords" -> "AuditRecord"); "" when name is none of them.
func isNonObjectKind(name string) string {
	for _, k := range v1.NonObjectKinds() {
		low := strings.ToLower(k)
		if strings.EqualFold(name, k) || strings.EqualFold(name, low+"s") {
			return k
		}
	}
	return ""
}
