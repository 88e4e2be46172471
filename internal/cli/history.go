package cli

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/meridian-platform/meridian/client"
)

func newHistoryCommand(streams IOStreams) *cobra.Command {
	f := &factory{streams: streams}
	var output string
	cmd := &cobra.Command{
		Use:   "history KIND NAME",
		Short: "List the previous generations of an object",
		Long: `List the generations of an object that the console keeps, newest first,
with a digest of each spec so that equal specs are easy to spot. Use -o yaml
to see them in full, and ` + "`meridian rollback`" + ` to go back to one.`,
		Example: `  meridian history httploadbalancer shop -n retail
  meridian history op/shop -o yaml`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "" && output != outYAML && output != outJSON {
				return fmt.Errorf("unknown output format %q: use yaml or json", output)
			}
			o, cancel, err := f.oneObject(cmd, "history", args)
			if err != nil {
				return err
			}
			defer cancel()
			l, err := o.c.History(o.ctx, o.ki.Kind, o.ns, o.name)
			if err != nil {
				return err
			}
			if output != "" {
				return printList(streams.Out, output, o.ki, l.Items, printOptions{})
			}
			if len(l.Items) == 0 {
				fmt.Fprintf(streams.ErrOut, "No previous generations of %s.\n", displayName(o.ki, o.name))
				return nil
			}
			var current int64
			if cur, err := o.c.GetRaw(o.ctx, o.ki.Kind, o.ns, o.name); err == nil {
				current = cur.Metadata.Generation
			}
			return printHistory(streams.Out, l.Items, current)
		},
	}
	f.bindPersistent(cmd, true)
	cmd.Flags().StringVarP(&output, "output", "o", "", "output format: yaml or json")
	return cmd
}

// printHistory writes one row per generation, newest first, marking the
// current generation (0: unknown) with "*".
func printHistory(w io.Writer, items []*client.Raw, current int64) error {
	sorted := append([]*client.Raw(nil), items...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Metadata.Generation > sorted[j].Metadata.Generation })
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "CURRENT\tGENERATION\tRESOURCE-VERSION\tSPEC-DIGEST\tLABELS")
	for _, it := range sorted {
		mark := ""
		if current != 0 && it.Metadata.Generation == current {
			mark = "*"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", mark, it.Metadata.Generation, orNone(it.Metadata.ResourceVersion), specDigest(it), orNone(format(labelsAny(it.Metadata.Labels))))
	}
	return tw.Flush()
}

func labelsAny(m map[string]string) any {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// specDigest is a short digest of the canonical JSON of the spec.
func specDigest(r *client.Raw) string {
	spec, ok := r.Fields["spec"]
	if !ok {
		return "-"
	}
	var v any
	if err := json.Unmarshal(spec, &v); err != nil {
		return "-"
	}
	canon, _ := json.Marshal(v) // maps marshal with sorted keys
	sum := sha256.Sum256(canon)
	return hex.EncodeToString(sum[:])[:12]
}

func newRollbackCommand(streams IOStreams) *cobra.Command {
	f := &factory{streams: streams}
	var generation int64
	cmd := &cobra.Command{
		Use:   "rollback KIND NAME --to-generation N",
		Short: "Restore the spec of a previous generation of an object",
		Long: `Restore an object's spec from one of its previous generations (see
` + "`meridian history`" + `). The restore is a new change: it gets a new generation
and is audited like any update.`,
		Example: `  meridian history httploadbalancer shop -n retail
  meridian rollback httploadbalancer shop -n retail --to-generation 3`,
		RunE: func(cmd *cobra.Command, args []string) error {
			o, cancel, err := f.oneObject(cmd, "rollback", args)
			if err != nil {
				return err
			}
			defer cancel()
			if generation <= 0 {
				return fmt.Errorf("--to-generation must be a generation number (see `meridian history %s %s`)", strings.ToLower(o.kindArg), o.name)
			}
			out := &client.Raw{}
			if err := o.c.Rollback(o.ctx, o.ki.Kind, o.ns, o.name, generation, out); err != nil {
				return err
			}
			fmt.Fprintf(streams.Out, "%s rolled back to generation %d (now generation %d)\n", displayName(o.ki, o.name), generation, out.Metadata.Generation)
			return nil
		},
	}
	f.bindPersistent(cmd, true)
	cmd.Flags().Int64Var(&generation, "to-generation", 0, "generation to restore (required)")
	_ = cmd.MarkFlagRequired("to-generation")
	return cmd
}
