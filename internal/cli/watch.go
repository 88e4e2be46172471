package cli

import (
	"context"
	"errors"
	"fmt"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/client"
)

// watchAndPrint prints list, then every change after it until ctx ends.
// Tables get one row per change; YAML and JSON print each changed object.
func watchAndPrint(ctx context.Context, c *client.Client, streams IOStreams, ki v1.KindInfo, ns, selector, output string, opts printOptions, list *client.List) error {
	opts.wide = output == outWide
	var tp *tablePrinter
	printOne := func(obj *client.Raw) error {
		switch output {
		case outTable, outWide:
			if err := tp.row(obj); err != nil {
				return err
			}
			return tp.flush()
		case outYAML:
			fmt.Fprintln(streams.Out, "---")
			return printData(streams.Out, output, obj)
		default:
			return printObject(streams.Out, output, ki, obj, opts)
		}
	}
	if output == outTable || output == outWide {
		tp = newTablePrinter(streams.Out, ki, opts)
		tp.header()
	}
	for _, it := range list.Items {
		if err := printOne(it); err != nil {
			return err
		}
	}
	if tp != nil {
		if err := tp.flush(); err != nil {
			return err
		}
		// Later rows are aligned on their own; keep the header's widths
		// only for the first screen, as kubectl does.
		tp.opts.noHeaders = true
	}
	w, err := c.Watch(ctx, ki.Kind, ns, client.WatchOptions{LabelSelector: selector, ResourceVersion: list.Metadata.ResourceVersion})
	if err != nil {
		return err
	}
	defer w.Stop()
	for ev := range w.Events() {
		switch ev.Type {
		case client.Bookmark:
			continue
		case client.Error:
			return ev.Status
		}
		if err := printOne(ev.Object); err != nil {
			return err
		}
	}
	if err := w.Err(); err != nil {
		return err
	}
	if ctx.Err() != nil && !errors.Is(ctx.Err(), context.Canceled) {
		return ctx.Err()
	}
	return nil
}
