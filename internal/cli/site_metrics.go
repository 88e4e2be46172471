package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/client"
	"github.com/meridian-platform/meridian/internal/sites"
)

// describeEventLimit is how many recent node events describe site shows.
const describeEventLimit = 10

// newTopCommand is `meridian top KIND NAME`.
func newTopCommand(streams IOStreams) *cobra.Command {
	f := &factory{streams: streams}
	var output string
	cmd := &cobra.Command{
		Use:   "top KIND NAME",
		Short: "Show the latest counters nodes report: per site for a load balancer, per object for a site",
		Long: `Show the counters that nodes report to the console over telemetry
(every 10 seconds by default), as the console holds them in memory (empty
after a console restart until the nodes report again).

  top httploadbalancer NAME   one row per site the load balancer runs on:
                              requests, requests by status class (2xx..5xx),
                              connections open on its listeners (CONNS),
                              request and response body bytes
  top tcploadbalancer NAME    one row per site: sessions, open connections
  top site NAME               one row per load balancer of your tenant on
                              the site, then the node-wide counters

CONNS counts the connections open on the load balancer's listeners; load
balancers of one tenant that share a listener show the same number. On a
shared site a tenant sees only its own load balancers' counters (and no
CONNS on a port it shares with another tenant); the site's owner alone sees
node-wide counters. REST: GET /api/v1/namespaces/NS/httploadbalancers/NAME/metrics
and GET /api/v1/sites/NAME/telemetry (both need "get" on the kind).
` + "`meridian describe`" + ` shows the same figures under Metrics / Telemetry.`,
		Example: `  # Requests per site of a load balancer
  meridian top httploadbalancer shop -n retail

  # What a site's node reports, as JSON
  meridian top site station-0001 -o json`,
		RunE: func(cmd *cobra.Command, args []string) error {
			switch output {
			case "", "json", "yaml":
			default:
				return fmt.Errorf("--output %q: want json or yaml (or nothing for a table)", output)
			}
			o, cancel, err := f.oneObject(cmd, "top", args)
			if err != nil {
				return err
			}
			defer cancel()
			var v any
			switch o.ki.Kind {
			case "Site":
				v, err = sites.GetSiteTelemetry(o.ctx, o.c, o.name)
			case "HTTPLoadBalancer", "TCPLoadBalancer":
				v, err = sites.GetObjectMetrics(o.ctx, o.c, o.ki.Kind, o.ns, o.name)
			default:
				return fmt.Errorf("top shows sites, httploadbalancers and tcploadbalancers, not %s", o.ki.Plural)
			}
			if err != nil {
				return err
			}
			if output != "" {
				return writeStructured(streams.Out, output, v)
			}
			now := time.Now()
			switch t := v.(type) {
			case *sites.SiteTelemetry:
				return writeSiteTelemetry(streams.Out, t, "", now)
			case *sites.ObjectMetrics:
				return writeObjectMetrics(streams.Out, t, "", now)
			}
			return nil
		},
	}
	f.bindPersistent(cmd, true)
	cmd.Flags().StringVarP(&output, "output", "o", "", "output format: json or yaml (default: a table)")
	cmd.ValidArgsFunction = completeKinds
	return cmd
}

func writeStructured(w io.Writer, format string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if format == "yaml" {
		if b, err = yaml.JSONToYAML(b); err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// describeTelemetry appends what nodes report about obj to describe's
// output: a site's telemetry, a load balancer's per-site metrics. A
// console that cannot answer (older, or the caller may not) is said so in
// one line.
func describeTelemetry(ctx context.Context, w io.Writer, c *client.Client, ki v1.KindInfo, ns, name string, now time.Time) error {
	switch ki.Kind {
	case "Site":
		fmt.Fprintln(w, "Telemetry:")
		t, err := sites.GetSiteTelemetry(ctx, c, name)
		if err != nil {
			fmt.Fprintf(w, "  <unavailable: %s>\n", firstLine(err.Error()))
			return nil
		}
		return writeSiteTelemetry(w, t, "  ", now)
	case "HTTPLoadBalancer", "TCPLoadBalancer":
		fmt.Fprintln(w, "Metrics:")
		m, err := sites.GetObjectMetrics(ctx, c, ki.Kind, ns, name)
		if err != nil {
			fmt.Fprintf(w, "  <unavailable: %s>\n", firstLine(err.Error()))
			return nil
		}
		return writeObjectMetrics(w, m, "  ", now)
	}
	return nil
}

func lastSeen(t *time.Time, now time.Time) string {
	if t == nil {
		return "<never>"
	}
	return humanDuration(now.Sub(*t)) + " ago"
}

func num(c map[string]float64, name string) string {
	v, ok := c[name]
	if !ok {
		return "-"
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

// lbColumns are the counters shown per row for load balancers.
var (
	httpColumns = []struct{ head, name string }{
		{"REQUESTS", "requests_total"}, {"2XX", "requests_2xx"}, {"3XX", "requests_3xx"}, {"4XX", "requests_4xx"},
		{"5XX", "requests_5xx"}, {"CONNS", "listener_connections"}, {"BYTES-IN", "request_bytes_total"},
		{"BYTES-OUT", "response_body_bytes_total"},
	}
	tcpColumns = []struct{ head, name string }{{"SESSIONS", "sessions_total"}, {"CONNS", "listener_connections"}}
)

func columnsFor(kind string) []struct{ head, name string } {
	if kind == "TCPLoadBalancer" {
		return tcpColumns
	}
	return httpColumns
}

func writeObjectMetrics(w io.Writer, m *sites.ObjectMetrics, indent string, now time.Time) error {
	if len(m.Sites) == 0 {
		fmt.Fprintf(w, "%s<no site has reported counters for this object yet>\n", indent)
		return nil
	}
	cols := columnsFor(m.Object.Kind)
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	heads := []string{"SITE", "ONLINE"}
	for _, c := range cols {
		heads = append(heads, c.head)
	}
	heads = append(heads, "LAST REPORT")
	fmt.Fprintln(tw, indent+strings.Join(heads, "\t"))
	row := func(site, online string, c map[string]float64, seen string) {
		cells := []string{site, online}
		for _, col := range cols {
			cells = append(cells, num(c, col.name))
		}
		cells = append(cells, seen)
		fmt.Fprintln(tw, indent+strings.Join(cells, "\t"))
	}
	for _, s := range m.Sites {
		site := s.Site
		if s.Owner != "" {
			site = s.Owner + "/" + s.Site
		}
		row(site, strconv.FormatBool(s.Online), s.Counters, lastSeen(s.LastSeen, now))
	}
	if len(m.Sites) > 1 {
		row("TOTAL", "", m.Total, "")
	}
	return tw.Flush()
}

func writeSiteTelemetry(w io.Writer, t *sites.SiteTelemetry, indent string, now time.Time) error {
	fmt.Fprintf(w, "%sOnline: %t, last report: %s\n", indent, t.Online, lastSeen(t.LastSeen, now))
	if len(t.Objects) == 0 {
		fmt.Fprintf(w, "%sObjects: <no counters reported for your objects on this site>\n", indent)
	} else {
		fmt.Fprintf(w, "%sObjects:\n", indent)
		tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
		heads := []string{"KIND", "NAME"}
		for _, c := range httpColumns {
			heads = append(heads, c.head)
		}
		heads = append(heads, "SESSIONS")
		fmt.Fprintln(tw, indent+"  "+strings.Join(heads, "\t"))
		for _, o := range t.Objects {
			cells := []string{o.Kind, o.Namespace + "/" + o.Name}
			for _, c := range httpColumns {
				cells = append(cells, num(o.Counters, c.name))
			}
			cells = append(cells, num(o.Counters, "sessions_total"))
			fmt.Fprintln(tw, indent+"  "+strings.Join(cells, "\t"))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(t.Counters) > 0 {
		fmt.Fprintf(w, "%sNode Counters:\n", indent)
		for _, k := range sites.SortedCounterNames(t.Counters) {
			fmt.Fprintf(w, "%s  %s: %s\n", indent, k, num(t.Counters, k))
		}
	}
	if len(t.Events) > 0 || t.DroppedEvents > 0 {
		evs := t.Events
		if len(evs) > describeEventLimit {
			evs = evs[len(evs)-describeEventLimit:]
		}
		fmt.Fprintf(w, "%sRecent Events (%d dropped):\n", indent, t.DroppedEvents)
		for _, ev := range evs {
			fmt.Fprintf(w, "%s  %s  %s  %s\n", indent, ev.Time.UTC().Format(time.RFC3339), ev.Type, ev.Message)
		}
	}
	return nil
}
