package cli

import (
	"errors"
	"fmt"
	"slices"

	"github.com/spf13/cobra"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/client"
)

func newDeleteCommand(streams IOStreams) *cobra.Command {
	f := &factory{streams: streams}
	var (
		files           []string
		cascade, dryRun bool
		ignoreNotFound  bool
	)
	cmd := &cobra.Command{
		Use:   "delete (KIND NAME... | -f FILE|DIR|-)",
		Short: "Delete objects by name or by file",
		Long: `Delete objects named on the command line or listed in files.

The console refuses to delete an object that others refer to, and names
them. A namespace is deleted only when empty, unless --cascade is given.
Objects from files are deleted in the reverse of the order apply uses.`,
		Example: `  # Delete one origin pool
  meridian delete originpool shop -n retail

  # Delete what a folder created (referrers first)
  meridian delete -f ./config/

  # Delete a namespace with everything in it
  meridian delete namespace retail --cascade`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(files) > 0 && len(args) > 0 {
				return errors.New("give either KIND NAME... or -f, not both")
			}
			var ki v1.KindInfo
			var names []string
			if len(files) == 0 {
				kindArg, n, err := splitKindName(args)
				if err != nil {
					return err
				}
				if len(n) == 0 {
					return errors.New("give the names of the objects to delete")
				}
				if ki, err = resolveKind(kindArg); err != nil {
					return err
				}
				names = n
			}
			ctx, cancel := signalContext(cmd)
			defer cancel()
			c, cctx, err := f.client()
			if err != nil {
				return err
			}
			type target struct {
				ki   v1.KindInfo
				ns   string
				name string
			}
			var targets []target
			if len(files) > 0 {
				objs, err := loadOrdered(f, cctx, files, streams)
				if err != nil {
					return err
				}
				slices.Reverse(objs)
				for _, o := range objs {
					md := o.GetMetadata()
					targets = append(targets, target{kindInfoFor(o.GetTypeMeta().Kind), md.Namespace, md.Name})
				}
			} else {
				ns := f.nsFor(ki, cctx)
				for _, n := range names {
					targets = append(targets, target{ki, ns, n})
				}
			}
			opts := []client.Option{client.DryRunIf(dryRun)}
			if cascade {
				opts = append(opts, client.Cascade())
			}
			failed := 0
			for _, t := range targets {
				name := displayName(t.ki, t.name)
				err := c.Delete(ctx, t.ki.Kind, t.ns, t.name, opts...)
				if err != nil && !(ignoreNotFound && client.IsNotFound(err)) {
					failed++
					ReportError(streams.ErrOut, fmt.Errorf("%s: %w", name, err))
					continue
				}
				if err != nil {
					continue
				}
				suffix := ""
				if dryRun {
					suffix = " (dry run)"
				}
				fmt.Fprintf(streams.Out, "%s deleted%s\n", name, suffix)
			}
			if failed > 0 {
				return silentExit(1)
			}
			return nil
		},
	}
	f.bindPersistent(cmd, true)
	fl := cmd.Flags()
	fl.StringArrayVarP(&files, "filename", "f", nil, "file, folder or - (stdin) listing the objects to delete; repeatable")
	fl.BoolVar(&cascade, "cascade", false, "delete a namespace together with everything in it")
	fl.BoolVar(&dryRun, "dry-run", false, "check on the console without deleting")
	fl.BoolVar(&ignoreNotFound, "ignore-not-found", false, "do not fail for objects that do not exist")
	return cmd
}
