package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/meridian-platform/meridian/client"
)

func newAuditCommand(streams IOStreams) *cobra.Command {
	f := &factory{streams: streams}
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Read and verify the tenant's audit log",
		Example: `  meridian audit log --kind OriginPool -n retail --since 1h
  meridian audit verify`,
	}
	f.bindPersistent(cmd, false)
	cmd.AddCommand(newAuditLogCommand(f), newAuditVerifyCommand(f))
	return cmd
}

func newAuditLogCommand(f *factory) *cobra.Command {
	var (
		filter       client.AuditFilter
		since, until string
		output, ns   string
	)
	cmd := &cobra.Command{
		Use:   "log",
		Short: "List audit records: who did what, when, from where",
		Long: `List the tenant's audit records, oldest first: every write, login and
token creation, and denied requests (aggregated per principal and minute).
Narrow the window with --since/--until and the filters; --limit bounds the
number of records (the console caps it at 1000).`,
		Example: `  # The last 50 records
  meridian audit log --limit 50

  # What alice changed in namespace retail during the last day
  meridian audit log --principal alice -n retail --since 24h

  # Every deletion of an origin pool since a date, as JSON
  meridian audit log --verb delete --kind op --since 2026-01-01T00:00:00Z -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "" && output != outJSON && output != outYAML && output != outWide {
				return fmt.Errorf("unknown output format %q: use yaml, json or wide", output)
			}
			now := time.Now()
			var err error
			if filter.Since, err = parseSince(since, now); err != nil {
				return fmt.Errorf("--since: %w", err)
			}
			if filter.Until, err = parseSince(until, now); err != nil {
				return fmt.Errorf("--until: %w", err)
			}
			if filter.Kind != "" {
				ki, err := resolveKind(filter.Kind)
				if err != nil {
					return err
				}
				filter.Kind = ki.Kind
			}
			filter.Namespace = ns
			ctx, cancel := signalContext(cmd)
			defer cancel()
			c, _, err := f.client()
			if err != nil {
				return err
			}
			l, err := c.AuditRecords(ctx, filter)
			if err != nil {
				return err
			}
			if output == outJSON || output == outYAML {
				items := l.Items
				if items == nil {
					items = []client.AuditRecord{}
				}
				return printData(f.streams.Out, output, map[string]any{"kind": "AuditRecordList", "items": items})
			}
			if len(l.Items) == 0 {
				fmt.Fprintln(f.streams.ErrOut, "No audit records found.")
				return nil
			}
			return printAuditTable(f.streams.Out, l.Items, output == outWide, now)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&filter.Principal, "principal", "", "only records of this user or token")
	fl.StringVar(&filter.Verb, "verb", "", "only this verb (create, update, patch, delete, login, ...)")
	fl.StringVar(&filter.Kind, "kind", "", "only this kind (any kind name form)")
	fl.StringVarP(&ns, "namespace", "n", "", "only this namespace (default: every namespace)")
	fl.StringVar(&filter.Name, "name", "", "only objects with this name")
	fl.StringVar(&since, "since", "", "only records newer than a duration (1h, 30m) or an RFC 3339 time")
	fl.StringVar(&until, "until", "", "only records older than a duration or an RFC 3339 time")
	fl.IntVar(&filter.Limit, "limit", 100, "at most this many records (0: the console's default)")
	fl.StringVarP(&output, "output", "o", "", "output format: json, yaml or wide (digests, client address)")
	return cmd
}

// parseSince accepts "" (none), a duration back from now, or RFC 3339.
func parseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("duration %q must not be negative", s)
		}
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither a duration (1h) nor an RFC 3339 time (2026-01-02T15:04:05Z)", s)
	}
	return t, nil
}

func printAuditTable(w interface{ Write([]byte) (int, error) }, items []client.AuditRecord, wide bool, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	h := "SEQ\tTIME\tPRINCIPAL\tVERB\tKIND\tNAMESPACE\tNAME\tRESULT"
	if wide {
		h += "\tCLIENT\tBEFORE\tAFTER\tREASON"
	}
	fmt.Fprintln(tw, h)
	for _, r := range items {
		cols := []string{
			orNone(r.String("seq")), auditTime(r, now), orNone(auditPrincipal(r)), orNone(r.String("verb")),
			orNone(r.String("kind")), orNone(r.String("namespace")), orNone(r.String("name")), orNone(auditResult(r)),
		}
		if wide {
			cols = append(cols, orNone(r.String("clientAddr", "clientAddress", "client", "sourceIP", "remoteAddr")),
				orNone(short(r.String("beforeDigest", "before"))), orNone(short(r.String("afterDigest", "after"))), orNone(r.String("reason")))
		}
		fmt.Fprintln(tw, strings.Join(cols, "\t"))
	}
	return tw.Flush()
}

func orNone(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// short abbreviates a digest ("hmac-sha256:0123abcd...") to 12 hex digits.
func short(s string) string {
	if i := strings.LastIndexByte(s, ':'); i >= 0 {
		s = s[i+1:]
	}
	if len(s) > 12 {
		return s[:12]
	}
	return s
}

func auditTime(r client.AuditRecord, now time.Time) string {
	s := r.String("time", "timestamp", "ts")
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return orNone(s)
	}
	return t.UTC().Format(time.RFC3339)
}

func auditPrincipal(r client.AuditRecord) string {
	return r.String("principal", "user", "actor")
}

// auditResult summarises the outcome: the HTTP code, "denied", or the
// number of aggregated denials.
func auditResult(r client.AuditRecord) string {
	res := r.String("result", "outcome", "decision")
	if code := r.String("code", "status"); code != "" {
		if res == "" {
			res = code
		} else {
			res += " (" + code + ")"
		}
	}
	if n := r.String("count"); n != "" && n != "1" && n != "0" {
		res += " x" + n
	}
	return res
}

func newAuditVerifyCommand(f *factory) *cobra.Command {
	return &cobra.Command{
		Use:   "verify",
		Short: "Check the tenant's audit hash chain and signed checkpoints",
		Long: `Ask the console to check the tenant's audit chain: every record's hash
link, the signed checkpoints and the tail. Prints OK, or the first bad
record (altered, removed, reordered or cut off) and exits 1.`,
		Example: `  meridian audit verify`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := signalContext(cmd)
			defer cancel()
			c, _, err := f.client()
			if err != nil {
				return err
			}
			res, err := c.AuditVerify(ctx)
			if err != nil {
				return err
			}
			if res.OK {
				fmt.Fprintf(f.streams.Out, "OK: %d records, %d checkpoints verified\n", res.Records, res.Checkpoints)
				return nil
			}
			if res.FirstBad != nil {
				fmt.Fprintf(f.streams.Out, "BAD: record %d: %s\n", res.FirstBad.Seq, res.FirstBad.Reason)
			} else {
				fmt.Fprintln(f.streams.Out, "BAD: the console reported a broken chain without naming a record")
			}
			return silentExit(1)
		},
	}
}
