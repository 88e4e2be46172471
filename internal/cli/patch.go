package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/meridian-platform/meridian/client"
)

func newPatchCommand(streams IOStreams) *cobra.Command {
	f := &factory{streams: streams}
	var patch, output string
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "patch KIND NAME -p PATCH",
		Short: "Change fields of an object with a JSON merge patch",
		Long: `Change fields of one object with a JSON merge patch (RFC 7386), given as
JSON or YAML: fields present are set, fields set to null are removed, lists
are replaced whole. The console validates the result like any update.`,
		Example: `  # Switch a pool's algorithm
  meridian patch originpool shop -n retail -p '{"spec":{"loadBalancing":"leastRequest"}}'

  # YAML works too; null removes a field
  meridian patch hlb shop -p 'spec: {appFirewall: null}'

  # See the result without storing it
  meridian patch op shop -p '{"spec":{"loadBalancing":"maglev"}}' --dry-run -o yaml`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "" && output != outYAML && output != outJSON && output != outName {
				return fmt.Errorf("unknown output format %q: use yaml, json or name", output)
			}
			body, err := patchJSON(patch)
			if err != nil {
				return err
			}
			o, cancel, err := f.oneObject(cmd, "patch", args)
			if err != nil {
				return err
			}
			defer cancel()
			ki, name := o.ki, o.name
			out := &client.Raw{}
			if err := o.c.Patch(o.ctx, ki.Kind, o.ns, name, body, out, client.DryRunIf(dryRun)); err != nil {
				return fmt.Errorf("%s: %w", displayName(ki, name), err)
			}
			if output == outYAML || output == outJSON {
				return printData(streams.Out, output, out)
			}
			suffix := ""
			if dryRun {
				suffix = " (dry run)"
			}
			if output == outName {
				fmt.Fprintln(streams.Out, displayName(ki, name))
				return nil
			}
			fmt.Fprintf(streams.Out, "%s patched%s\n", displayName(ki, name), suffix)
			return nil
		},
	}
	f.bindPersistent(cmd, true)
	fl := cmd.Flags()
	fl.StringVarP(&patch, "patch", "p", "", "the merge patch, JSON or YAML (required)")
	fl.StringVarP(&output, "output", "o", "", "print the patched object: yaml, json or name")
	fl.BoolVar(&dryRun, "dry-run", false, "validate on the console without storing")
	_ = cmd.MarkFlagRequired("patch")
	return cmd
}

// patchJSON turns a JSON or YAML patch into JSON; it must be an object.
func patchJSON(p string) ([]byte, error) {
	data, err := yaml.YAMLToJSON([]byte(p))
	if err != nil {
		return nil, fmt.Errorf("reading the patch: %w", err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil || m == nil {
		return nil, errors.New("the patch must be a JSON or YAML object, e.g. '{\"spec\":{...}}'")
	}
	return data, nil
}

func newLabelCommand(streams IOStreams) *cobra.Command {
	f := &factory{streams: streams}
	var overwrite, dryRun bool
	cmd := &cobra.Command{
		Use:   "label KIND NAME KEY=VALUE... KEY-...",
		Short: "Add, change or remove labels of an object",
		Long: `Set labels (KEY=VALUE) and remove them (KEY-) on one object. Changing
the value of an existing label needs --overwrite.`,
		Example: `  # Label a site's pool for selection
  meridian label originpool shop tier=web -n retail

  # Change a value and remove a label
  meridian label op shop tier=api canary- --overwrite

  # Move a site into the virtual sites that select rack=r7 (site admins only)
  meridian label site station-0001 rack=r7 maintenance-`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) < 2 {
				return errors.New("give KIND NAME and at least one KEY=VALUE or KEY-")
			}
			kindArg, names, err := splitKindName(args[:1])
			if err != nil {
				return err
			}
			rest := args[1:]
			if len(names) == 0 {
				names, rest = []string{args[1]}, args[2:]
			}
			ki, err := resolveKind(kindArg)
			if err != nil {
				return err
			}
			if len(rest) == 0 {
				return errors.New("give at least one KEY=VALUE or KEY-")
			}
			set, remove, err := parseLabelArgs(rest)
			if err != nil {
				return err
			}
			ctx, cancel := signalContext(cmd)
			defer cancel()
			c, cctx, err := f.client()
			if err != nil {
				return err
			}
			ns := f.nsFor(ki, cctx)
			name := displayName(ki, names[0])
			cur, err := c.GetRaw(ctx, ki.Kind, ns, names[0])
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			labels := map[string]any{}
			for k, v := range set {
				if old, ok := cur.Metadata.Labels[k]; ok && old != v && !overwrite {
					return fmt.Errorf("%s already has label %s=%s: use --overwrite to change it", name, k, old)
				}
				labels[k] = v
			}
			for _, k := range remove {
				labels[k] = nil
			}
			// resourceVersion makes the patch fail (409) if someone changed
			// the labels since they were read.
			body, _ := json.Marshal(map[string]any{"metadata": map[string]any{"labels": labels, "resourceVersion": cur.Metadata.ResourceVersion}})
			if err := c.Patch(ctx, ki.Kind, ns, names[0], body, nil, client.DryRunIf(dryRun)); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			suffix := ""
			if dryRun {
				suffix = " (dry run)"
			}
			fmt.Fprintf(streams.Out, "%s labeled%s\n", name, suffix)
			return nil
		},
	}
	f.bindPersistent(cmd, true)
	cmd.Flags().BoolVar(&overwrite, "overwrite", false, "allow changing the value of an existing label")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "validate on the console without storing")
	return cmd
}

// parseLabelArgs splits KEY=VALUE and KEY- arguments.
func parseLabelArgs(args []string) (map[string]string, []string, error) {
	set := map[string]string{}
	var remove []string
	for _, a := range args {
		if k, v, ok := strings.Cut(a, "="); ok {
			if k == "" {
				return nil, nil, fmt.Errorf("label %q has no key", a)
			}
			set[k] = v
			continue
		}
		if k, ok := strings.CutSuffix(a, "-"); ok && k != "" {
			remove = append(remove, k)
			continue
		}
		return nil, nil, fmt.Errorf("%q is neither KEY=VALUE nor KEY-", a)
	}
	for _, k := range remove {
		if _, ok := set[k]; ok {
			return nil, nil, fmt.Errorf("label %q is both set and removed", k)
		}
	}
	return set, remove, nil
}
