package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/meridian-platform/meridian/client"
)

// securityEventNames are the names `meridian get` accepts for security
// events (not an object kind: records the sites report).
var securityEventNames = []string{"securityevents", "securityevent", "secevents", "secevent", "sev"}

// securityEventsResourceRow is the api-resources row of security events
// (records the sites report, listed read-only; not an object kind).
const securityEventsResourceRow = "securityevents\tsecevents,sev\tSecurityEvent\tNamespaced (read-only)"

// isSecurityEvents reports whether a KIND argument names security events.
func isSecurityEvents(kind string) bool {
	for _, n := range securityEventNames {
		if strings.EqualFold(kind, n) {
			return true
		}
	}
	return strings.EqualFold(kind, "SecurityEvent")
}

// eventPollInterval is how often --watch asks for new events.
const eventPollInterval = 2 * time.Second

// eventFlags are the filters of a security event query.
type eventFlags struct {
	lb, site, rule, typ, since, until string
	limit                             int
}

func (e *eventFlags) bind(fl *pflag.FlagSet) {
	fl.StringVar(&e.lb, "lb", "", "security events: only this load balancer (NAME or NAMESPACE/NAME)")
	fl.StringVar(&e.site, "site", "", "security events: only events from this site")
	fl.StringVar(&e.rule, "rule", "", "security events: only events where this rule matched (WAF rule id or policy rule name)")
	fl.StringVar(&e.typ, "type", "", "security events: only this type (waf, policy, ratelimit, authn, network)")
	fl.StringVar(&e.since, "since", "", "security events: only newer than a duration (1h, 30m) or an RFC 3339 time")
	fl.StringVar(&e.until, "until", "", "security events: only older than a duration or an RFC 3339 time")
	fl.IntVar(&e.limit, "limit", 100, "security events: at most this many, newest first (the console caps it at 5000)")
}

func (e *eventFlags) filter(ns string, now time.Time) (client.SecurityEventFilter, error) {
	f := client.SecurityEventFilter{Namespace: ns, LoadBalancer: e.lb, Site: e.site, Rule: e.rule, Type: e.typ, Limit: e.limit}
	var err error
	if f.Since, err = parseSince(e.since, now); err != nil {
		return f, fmt.Errorf("--since: %w", err)
	}
	if f.Until, err = parseSince(e.until, now); err != nil {
		return f, fmt.Errorf("--until: %w", err)
	}
	if e.limit < 0 {
		return f, errors.New("--limit must not be negative")
	}
	return f, nil
}

// eventsRun is one security event query as the CLI asked for it.
type eventsRun struct {
	flags         eventFlags
	output        string
	allNamespaces bool
	noHeaders     bool
	watch         bool
}

func (r *eventsRun) run(cmd *cobra.Command, f *factory) error {
	switch r.output {
	case outTable, outWide, outJSON, outYAML:
	default:
		return fmt.Errorf("unknown output format %q: use wide, json or yaml", r.output)
	}
	if r.watch && (r.output == outJSON || r.output == outYAML) {
		return errors.New("--watch prints a table: drop -o json/yaml")
	}
	ctx, cancel := signalContext(cmd)
	defer cancel()
	c, cctx, err := f.client()
	if err != nil {
		return err
	}
	ns := f.ns(cctx)
	if r.allNamespaces {
		ns = ""
	}
	filter, err := r.flags.filter(ns, time.Now())
	if err != nil {
		return err
	}
	l, err := c.SecurityEvents(ctx, filter)
	if err != nil {
		return err
	}
	out, errOut := f.streams.Out, f.streams.ErrOut
	if r.output == outJSON || r.output == outYAML {
		items := l.Items
		if items == nil {
			items = []client.SecurityEvent{}
		}
		return printData(out, r.output, map[string]any{"apiVersion": l.APIVersion, "kind": "SecurityEventList", "items": items})
	}
	if len(l.Items) == 0 && !r.watch {
		if ns != "" {
			fmt.Fprintf(errOut, "No security events found in namespace %s.\n", ns)
		} else {
			fmt.Fprintln(errOut, "No security events found.")
		}
		return nil
	}
	p := &eventPrinter{w: out, wide: r.output == outWide, allNamespaces: r.allNamespaces, headers: !r.noHeaders}
	if err := p.print(l.Items); err != nil {
		return err
	}
	if !r.watch {
		return nil
	}
	return watchEvents(ctx, c, filter, l.Items, p)
}

// watchEvents polls for events newer than the newest shown and prints them
// (oldest first) until ctx ends.
func watchEvents(ctx context.Context, c *client.Client, filter client.SecurityEventFilter, shown []client.SecurityEvent, p *eventPrinter) error {
	seen := map[string]bool{}
	var newest time.Time
	note := func(e client.SecurityEvent) {
		if e.Time.After(newest) {
			newest = e.Time
			clear(seen)
		}
		if e.Time.Equal(newest) {
			seen[eventKey(e)] = true
		}
	}
	for i := len(shown) - 1; i >= 0; i-- {
		note(shown[i])
	}
	t := time.NewTicker(eventPollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		f := filter
		if !newest.IsZero() {
			f.Since = newest
		}
		l, err := c.SecurityEvents(ctx, f)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		var fresh []client.SecurityEvent
		for i := len(l.Items) - 1; i >= 0; i-- {
			e := l.Items[i]
			if e.Time.Equal(newest) && seen[eventKey(e)] {
				continue
			}
			fresh = append(fresh, e)
			note(e)
		}
		// print expects newest first, like the console answers.
		for i, j := 0, len(fresh)-1; i < j; i, j = i+1, j-1 {
			fresh[i], fresh[j] = fresh[j], fresh[i]
		}
		if err := p.print(fresh); err != nil {
			return err
		}
	}
}

func eventKey(e client.SecurityEvent) string {
	return e.Time.String() + "|" + e.RequestID + "|" + e.Type + "|" + e.Action + "|" + e.Site + "|" + e.Source + "|" + eventRules(e)
}

// eventPrinter prints security events as a table, newest first; the header
// once.
type eventPrinter struct {
	w                    io.Writer
	wide, allNamespaces  bool
	headers, headersDone bool
}

func (p *eventPrinter) print(items []client.SecurityEvent) error {
	if len(items) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(p.w, 0, 8, 2, ' ', 0)
	if p.headers && !p.headersDone {
		h := "TIME\tTYPE\tACTION\tLB\tROUTE\tSITE\tCLIENT\tRULES\tMESSAGE"
		if p.wide {
			h += "\tSTATUS\tREQUEST-ID\tREQUEST\tSOURCE"
		}
		fmt.Fprintln(tw, h)
		p.headersDone = true
	}
	for _, e := range items {
		lb := e.LoadBalancer
		if p.allNamespaces && e.Namespace != "" {
			lb = e.Namespace + "/" + lb
		}
		msg := e.Message
		if msg == "" && len(e.Rules) > 0 {
			msg = e.Rules[0].Message
		}
		cols := []string{e.Time.UTC().Format(time.RFC3339), e.Type, e.Action, orNone(lb), orNone(e.Route), orNone(e.Site),
			orNone(e.Client), orNone(eventRules(e))}
		if p.wide {
			cols = append(cols, orNone(cell(msg, 0)), orNone(statusText(e.Status)), orNone(e.RequestID),
				orNone(cell(strings.TrimSpace(e.Method+" "+e.Host+e.Path), 0)), orNone(e.Source))
		} else {
			cols = append(cols, orNone(cell(msg, 60)))
		}
		fmt.Fprintln(tw, strings.Join(cols, "\t"))
	}
	return tw.Flush()
}

// eventRules lists the matched rules: ids for WAF rules, names otherwise;
// at most five, then "+N".
func eventRules(e client.SecurityEvent) string {
	var names []string
	for i, h := range e.Rules {
		if i == 5 {
			names = append(names, "+"+strconv.Itoa(len(e.Rules)-5))
			break
		}
		if h.ID != 0 {
			names = append(names, strconv.Itoa(h.ID))
		} else {
			names = append(names, h.Name)
		}
	}
	return strings.Join(names, ",")
}

func statusText(s int) string {
	if s == 0 {
		return ""
	}
	return strconv.Itoa(s)
}

// cell makes s fit one table cell: tabs and newlines become spaces, and
// with max > 0 it is cut to max runes.
func cell(s string, max int) string {
	s = strings.Map(func(r rune) rune {
		if r == '\t' || r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, s)
	if max > 0 {
		if rs := []rune(s); len(rs) > max {
			return string(rs[:max-1]) + "…"
		}
	}
	return s
}

// newEventsCommand returns `meridian events` (the same as `meridian get
// securityevents`).
func newEventsCommand(streams IOStreams) *cobra.Command {
	f := &factory{streams: streams}
	r := &eventsRun{}
	cmd := &cobra.Command{
		Use:     "events",
		Aliases: []string{"securityevents", "secevents", "sev"},
		Short:   "List security events reported by the sites (WAF, policy, rate limit, authentication)",
		Long: `List the security events the sites reported to the console, newest first:
WAF blocks and detections, service-policy denials (and dryRun would-be
denials, action "detected"), rate-limit hits, authentication failures and
connections refused by NetworkPolicies, each attributed to a load balancer
(or NetworkPolicy) of the tenant. Events of -n (default:
the context's namespace, else "default"), or of every namespace with -A.
The same as 'meridian get securityevents'.`,
		Example: `  # The newest events of the namespace
  meridian events -n retail

  # WAF blocks of one load balancer during the last hour, every namespace
  meridian events -A --lb retail/shop --type waf --since 1h

  # Where did CRS rule 942100 match, with request details
  meridian get securityevents -A --rule 942100 -o wide

  # Follow new events
  meridian events -A --watch`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return r.run(cmd, f) },
	}
	f.bindPersistent(cmd, true)
	fl := cmd.Flags()
	r.flags.bind(fl)
	fl.StringVarP(&r.output, "output", "o", "", "output format: wide, json or yaml")
	fl.BoolVarP(&r.allNamespaces, "all-namespaces", "A", false, "events of every namespace")
	fl.BoolVarP(&r.watch, "watch", "w", false, "after listing, print new events as they arrive (polls every 2s)")
	fl.BoolVar(&r.noHeaders, "no-headers", false, "omit the table header")
	return cmd
}

// eventFlagNames are the flags `meridian get` has for security events only.
var eventFlagNames = []string{"lb", "site", "rule", "type", "since", "until", "limit"}

// eventFlagsUnused rejects the security event filters on a get of objects.
func eventFlagsUnused(cmd *cobra.Command) error {
	for _, n := range eventFlagNames {
		if cmd.Flags().Changed(n) {
			return fmt.Errorf("--%s filters security events only ('meridian get securityevents')", n)
		}
	}
	return nil
}
