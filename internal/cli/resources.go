package cli

import (
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	v1 "github.com/meridian-platform/meridian/api/v1"
)

func newAPIResourcesCommand(streams IOStreams) *cobra.Command {
	return &cobra.Command{
		Use:     "api-resources",
		Short:   "List the kinds and the names the CLI accepts for them",
		Example: `  meridian api-resources`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			kinds := v1.Kinds()
			sort.Slice(kinds, func(i, j int) bool { return kinds[i].Plural < kinds[j].Plural })
			tw := tabwriter.NewWriter(streams.Out, 0, 8, 3, ' ', 0)
			fmt.Fprintln(tw, "NAME\tSHORTNAMES\tKIND\tSCOPE")
			for _, k := range kinds {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", k.Plural, strings.Join(k.ShortNames, ","), k.Kind, scopeName(k.Scope))
			}
			fmt.Fprintln(tw, securityEventsResourceRow)
			return tw.Flush()
		},
	}
}

func scopeName(s v1.Scope) string {
	switch s {
	case v1.ScopeNamespaced:
		return "Namespaced"
	case v1.ScopeTenant:
		return "Tenant"
	case v1.ScopeSystem:
		return "System"
	}
	return "?"
}

// completeKinds offers kind names (plurals) for the first argument of a verb.
func completeKinds(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var out []string
	for _, k := range v1.Kinds() {
		if strings.HasPrefix(k.Plural, strings.ToLower(toComplete)) {
			out = append(out, k.Plural)
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}
