package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/meridian-platform/meridian/client"
)

// listPageSize is the page size the CLI asks for when listing everything.
const listPageSize = 500

func newGetCommand(streams IOStreams) *cobra.Command {
	f := &factory{streams: streams}
	var (
		output, selector string
		allNamespaces    bool
		watch, noHeaders bool
		events           eventFlags
	)
	cmd := &cobra.Command{
		Use:   "get KIND [NAME...]",
		Short: "Show one or many objects",
		Long: `Show objects of one kind as a table, YAML, JSON or names.

KIND is a kind's name, plural, singular or short name (` + "`meridian api-resources`" + `).
Objects are listed in -n (default: the context's namespace, else "default"),
or in every namespace with -A.`,
		Example: `  # List origin pools in the context's namespace
  meridian get originpools

  # Short names work, as do KIND/NAME pairs
  meridian get op shop -n retail
  meridian get originpool/shop -o yaml

  # Every namespace, selected by labels, with kind-specific columns
  meridian get httploadbalancers -A -l 'app=shop,tier in (web,api)' -o wide

  # Watch changes as they happen
  meridian get op --watch

  # Security events the sites reported (also: meridian events)
  meridian get securityevents -A --lb retail/shop --since 1h`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			kindArg, names, err := splitKindName(args)
			if err != nil {
				return err
			}
			if isSecurityEvents(kindArg) {
				if len(names) > 0 || selector != "" {
					return errors.New("security events have no names or labels: filter with --lb, --site, --rule, --type, --since")
				}
				return (&eventsRun{flags: events, output: output, allNamespaces: allNamespaces, noHeaders: noHeaders, watch: watch}).run(cmd, f)
			}
			if err := eventFlagsUnused(cmd); err != nil {
				return err
			}
			ki, err := resolveKind(kindArg)
			if err != nil {
				return err
			}
			if len(names) > 0 && (selector != "" || allNamespaces) {
				return errors.New("a name cannot be combined with -l or -A")
			}
			if len(names) > 0 && watch {
				return errors.New("--watch lists a kind: drop the name or use -l")
			}
			ctx, cancel := signalContext(cmd)
			defer cancel()
			c, cctx, err := f.client()
			if err != nil {
				return err
			}
			ns := f.nsFor(ki, cctx)
			if allNamespaces {
				ns = ""
			}
			opts := printOptions{allNamespaces: allNamespaces, noHeaders: noHeaders}
			if len(names) > 0 {
				var items []*client.Raw
				failed := 0
				for _, n := range names {
					obj, err := c.GetRaw(ctx, ki.Kind, ns, n)
					if err != nil {
						failed++
						ReportError(streams.ErrOut, fmt.Errorf("%s: %w", displayName(ki, n), err))
						continue
					}
					items = append(items, obj)
				}
				switch {
				case len(names) == 1 && len(items) == 1:
					err = printObject(streams.Out, output, ki, items[0], opts)
				case len(items) > 0:
					err = printList(streams.Out, output, ki, items, opts)
				}
				if err != nil {
					return err
				}
				if failed > 0 {
					return silentExit(1)
				}
				return nil
			}
			list, err := c.List(ctx, ki.Kind, ns, client.ListOptions{LabelSelector: selector, Limit: listPageSize, AllPages: true})
			if err != nil {
				return err
			}
			if len(list.Items) == 0 && !watch && (output == outTable || output == outWide) {
				if ns != "" {
					fmt.Fprintf(streams.ErrOut, "No %s found in namespace %s.\n", ki.Plural, ns)
				} else {
					fmt.Fprintf(streams.ErrOut, "No %s found.\n", ki.Plural)
				}
				return nil
			}
			if !watch {
				return printList(streams.Out, output, ki, list.Items, opts)
			}
			return watchAndPrint(ctx, c, streams, ki, ns, selector, output, opts, list)
		},
	}
	f.bindPersistent(cmd, true)
	fl := cmd.Flags()
	fl.StringVarP(&output, "output", "o", "", "output format: yaml, json, wide or name")
	fl.StringVarP(&selector, "selector", "l", "", "label selector, e.g. 'app=shop,tier in (web,api),!canary'")
	fl.BoolVarP(&allNamespaces, "all-namespaces", "A", false, "list across every namespace")
	fl.BoolVarP(&watch, "watch", "w", false, "after listing, print changes as they happen")
	fl.BoolVar(&noHeaders, "no-headers", false, "omit table headers")
	events.bind(fl)
	return cmd
}
