package cli

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/client"
)

// describeAuditLimit is how many recent audit records describe shows.
const describeAuditLimit = 10

// describeAuditWindow is how many records of the object describe reads to
// find the most recent ones (the console's maximum page).
const describeAuditWindow = 1000

func newDescribeCommand(streams IOStreams) *cobra.Command {
	f := &factory{streams: streams}
	cmd := &cobra.Command{
		Use:   "describe KIND NAME",
		Short: "Show an object in detail: metadata, spec, status, rollout, recent changes",
		Long: `Show one object for people: its metadata, its spec, its status
(conditions, rollout across sites, errors) and the recent audit records
about it (when the caller may read the audit log).`,
		Example: `  # Describe a load balancer
  meridian describe httploadbalancer shop -n retail

  # KIND/NAME works too
  meridian describe op/shop`,
		RunE: func(cmd *cobra.Command, args []string) error {
			o, cancel, err := f.oneObject(cmd, "describe", args)
			if err != nil {
				return err
			}
			defer cancel()
			obj, err := o.c.GetRaw(o.ctx, o.ki.Kind, o.ns, o.name)
			if err != nil {
				return err
			}
			records, auditErr := recentAudit(o.ctx, o.c, o.ki, obj)
			if err := describeObject(streams.Out, o.ki, obj, records, auditErr, time.Now()); err != nil {
				return err
			}
			return describeTelemetry(o.ctx, streams.Out, o.c, o.ki, o.ns, o.name, time.Now())
		},
	}
	f.bindPersistent(cmd, true)
	return cmd
}

func recentAudit(ctx context.Context, c *client.Client, ki v1.KindInfo, obj *client.Raw) ([]client.AuditRecord, error) {
	// The console lists oldest first: fetch a window and keep its tail.
	l, err := c.AuditRecords(ctx, client.AuditFilter{Kind: ki.Kind, Namespace: obj.Metadata.Namespace, Name: obj.Metadata.Name, Limit: describeAuditWindow})
	if err != nil {
		return nil, err
	}
	items := l.Items
	if len(items) > describeAuditLimit {
		items = items[len(items)-describeAuditLimit:]
	}
	return items, nil
}

// describeObject writes the human-readable description of obj.
func describeObject(w io.Writer, ki v1.KindInfo, obj *client.Raw, records []client.AuditRecord, auditErr error, now time.Time) error {
	m, err := obj.Map()
	if err != nil {
		return err
	}
	md := obj.Metadata
	const keyWidth = 18
	row := func(k, v string) { fmt.Fprintf(w, "%-*s%s\n", keyWidth, k+":", v) }
	row("Name", md.Name)
	if ki.Scope == v1.ScopeNamespaced {
		row("Namespace", md.Namespace)
	}
	row("Kind", ki.Kind)
	if md.Tenant != "" {
		row("Tenant", md.Tenant)
	}
	row("Labels", kvLines(md.Labels, strings.Repeat(" ", keyWidth)))
	row("Annotations", kvLines(md.Annotations, strings.Repeat(" ", keyWidth)))
	if md.UID != "" {
		row("UID", md.UID)
	}
	if md.Generation != 0 {
		row("Generation", fmt.Sprint(md.Generation))
	}
	if md.ResourceVersion != "" {
		row("Resource Version", md.ResourceVersion)
	}
	if md.CreationTimestamp != nil {
		row("Created", fmt.Sprintf("%s (%s ago)", md.CreationTimestamp.UTC().Format(time.RFC3339), humanDuration(now.Sub(*md.CreationTimestamp))))
	}
	for _, field := range sortedFieldNames(m) {
		if field == "status" {
			continue
		}
		fmt.Fprintf(w, "%s:\n", titleCase(field))
		writeIndentedYAML(w, m[field], "  ")
	}
	describeStatus(w, m, now)
	fmt.Fprintln(w, "Recent Changes:")
	switch {
	case auditErr != nil && client.IsForbidden(auditErr):
		fmt.Fprintln(w, "  <not permitted to read the audit log>")
	case auditErr != nil:
		fmt.Fprintf(w, "  <audit log unavailable: %v>\n", firstLine(auditErr.Error()))
	case len(records) == 0:
		fmt.Fprintln(w, "  <none>")
	default:
		atw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
		fmt.Fprintln(atw, "  TIME\tPRINCIPAL\tVERB\tRESULT")
		for _, r := range records {
			fmt.Fprintf(atw, "  %s\t%s\t%s\t%s\n", auditTime(r, now), auditPrincipal(r), r.String("verb"), auditResult(r))
		}
		if err := atw.Flush(); err != nil {
			return err
		}
	}
	return nil
}

func describeStatus(w io.Writer, m map[string]any, now time.Time) {
	st, _ := m["status"].(map[string]any)
	fmt.Fprintln(w, "Status:")
	if len(st) == 0 {
		fmt.Fprintln(w, "  <none>")
		return
	}
	if og := format(st["observedGeneration"]); og != "" {
		fmt.Fprintf(w, "  Observed Generation: %s\n", og)
	}
	if r := format(st["rollout"]); r != "" {
		fmt.Fprintf(w, "  Rollout: %s\n", r)
	}
	if conds, ok := st["conditions"].([]any); ok && len(conds) > 0 {
		fmt.Fprintln(w, "  Conditions:")
		tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "    TYPE\tSTATUS\tREASON\tAGE\tMESSAGE")
		for _, c := range conds {
			cm, _ := c.(map[string]any)
			agev := "<unknown>"
			if ts, err := time.Parse(time.RFC3339Nano, format(cm["lastTransitionTime"])); err == nil && !ts.IsZero() && ts.Year() > 1 {
				agev = humanDuration(now.Sub(ts))
			}
			fmt.Fprintf(tw, "    %s\t%s\t%s\t%s\t%s\n", format(cm["type"]), format(cm["status"]), format(cm["reason"]), agev, format(cm["message"]))
		}
		tw.Flush()
	}
	if errs, ok := st["errors"].([]any); ok && len(errs) > 0 {
		fmt.Fprintln(w, "  Errors:")
		for _, e := range errs {
			fmt.Fprintf(w, "    - %s\n", format(e))
		}
	}
	rest := map[string]any{}
	for k, v := range st {
		switch k {
		case "observedGeneration", "rollout", "conditions", "errors":
			continue
		}
		rest[k] = v
	}
	if len(rest) > 0 {
		writeIndentedYAML(w, rest, "  ")
	}
}

func writeIndentedYAML(w io.Writer, v any, indent string) {
	if v == nil {
		fmt.Fprintf(w, "%s<none>\n", indent)
		return
	}
	y, err := yaml.Marshal(v)
	if err != nil {
		fmt.Fprintf(w, "%s<%v>\n", indent, err)
		return
	}
	for _, line := range strings.Split(strings.TrimRight(string(y), "\n"), "\n") {
		fmt.Fprintf(w, "%s%s\n", indent, line)
	}
}

// sortedFieldNames lists the top-level fields other than the envelope,
// spec first.
func sortedFieldNames(m map[string]any) []string {
	var names []string
	for k := range m {
		switch k {
		case "apiVersion", "kind", "metadata":
			continue
		}
		names = append(names, k)
	}
	sort.Slice(names, func(i, j int) bool {
		if (names[i] == "spec") != (names[j] == "spec") {
			return names[i] == "spec"
		}
		return names[i] < names[j]
	})
	return names
}

func titleCase(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func kvLines(m map[string]string, indent string) string {
	if len(m) == 0 {
		return "<none>"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m[k]
	}
	return strings.Join(parts, "\n"+indent)
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}
