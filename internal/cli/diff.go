package cli

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/meridian-platform/meridian/client"
)

func newDiffCommand(streams IOStreams) *cobra.Command {
	f := &factory{streams: streams}
	var files []string
	cmd := &cobra.Command{
		Use:   "diff -f FILE|DIR|-",
		Short: "Show what apply would change (server-side dry run)",
		Long: `Show, as a unified diff, how each object of the files differs between
what the console holds and what ` + "`meridian apply`" + ` would make of it. The
console computes the new state (defaults, validation) in a dry run; nothing
is stored. Exit status: 0 no differences, 1 differences, 2 or more on error.`,
		Example: `  # What would applying this folder change?
  meridian diff -f ./config/

  # Use it in a script
  if ! meridian diff -f shop.yaml >/dev/null; then echo "drift"; fi`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := signalContext(cmd)
			defer cancel()
			c, cctx, err := f.client()
			if err != nil {
				return &ExitError{Code: 2, Err: err}
			}
			objs, err := loadOrdered(f, cctx, files, streams)
			if err != nil {
				return &ExitError{Code: 2, Err: err}
			}
			differ := false
			for _, o := range objs {
				ki := kindInfoFor(o.GetTypeMeta().Kind)
				md := o.GetMetadata()
				live, want, err := previewApply(ctx, c, o)
				if err != nil {
					return &ExitError{Code: 2, Err: fmt.Errorf("%s: %w", displayName(ki, md.Name), err)}
				}
				label := ki.Kind + "." + md.Name
				if md.Namespace != "" {
					label = ki.Kind + "." + md.Namespace + "." + md.Name
				}
				d, err := diffObjects(streams.Out, label, live, want)
				if err != nil {
					return &ExitError{Code: 2, Err: err}
				}
				differ = differ || d
				if carriesSecret(o) {
					fmt.Fprintf(streams.ErrOut, "Note: %s sets secret fields; the console never returns them, so their values are not compared\n", displayName(ki, md.Name))
				}
			}
			if differ {
				return silentExit(1)
			}
			return nil
		},
	}
	f.bindPersistent(cmd, true)
	cmd.Flags().StringArrayVarP(&files, "filename", "f", nil, "file, folder or - (stdin) to compare; repeatable")
	_ = cmd.MarkFlagRequired("filename")
	return cmd
}

// diffObjects writes the unified diff between the live object (nil: does
// not exist) and the wanted one, both without fields that change on
// every write (resourceVersion).
func diffObjects(w io.Writer, label string, live, want *client.Raw) (bool, error) {
	a, err := diffYAML(live)
	if err != nil {
		return false, err
	}
	b, err := diffYAML(want)
	if err != nil {
		return false, err
	}
	nameA, nameB := "live/"+label, "merged/"+label
	if live == nil {
		nameA = "/dev/null"
	}
	return unifiedDiff(w, nameA, nameB, a, b)
}

func diffYAML(obj *client.Raw) (string, error) {
	if obj == nil {
		return "", nil
	}
	m, err := obj.Map()
	if err != nil {
		return "", err
	}
	if md, ok := m["metadata"].(map[string]any); ok {
		delete(md, "resourceVersion")
	}
	y, err := yaml.Marshal(m)
	if err != nil {
		return "", err
	}
	return string(y), nil
}
