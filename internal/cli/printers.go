package cli

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"sigs.k8s.io/yaml"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/client"
)

// Output formats of -o.
const (
	outTable = ""
	outWide  = "wide"
	outYAML  = "yaml"
	outJSON  = "json"
	outName  = "name"
)

func checkOutput(o string) error {
	switch o {
	case outTable, outWide, outYAML, outJSON, outName:
		return nil
	}
	return fmt.Errorf("unknown output format %q: use yaml, json, wide or name", o)
}

// printOptions shape a table.
type printOptions struct {
	wide          bool
	allNamespaces bool
	noHeaders     bool
	now           time.Time
}

// column is one kind-specific column of the wide table.
type column struct {
	header string
	value  func(m map[string]any) string
}

// tablePrinter writes kubectl-like tables.
type tablePrinter struct {
	ki   v1.KindInfo
	opts printOptions
	tw   *tabwriter.Writer
	cols []column
}

func newTablePrinter(w io.Writer, ki v1.KindInfo, opts printOptions) *tablePrinter {
	if opts.now.IsZero() {
		opts.now = time.Now()
	}
	p := &tablePrinter{ki: ki, opts: opts, tw: tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)}
	if opts.wide {
		p.cols = wideColumns(ki.Kind)
		if ki.Scope == v1.ScopeNamespaced {
			// Namespaced kinds are what sites run: show where they stand.
			p.cols = append(p.cols, column{"ROLLOUT", func(m map[string]any) string { return str(m, "status", "rollout") }})
		}
	}
	return p
}

func (p *tablePrinter) header() {
	if p.opts.noHeaders {
		return
	}
	var h []string
	if p.opts.allNamespaces && p.ki.Scope == v1.ScopeNamespaced {
		h = append(h, "NAMESPACE")
	}
	h = append(h, "NAME")
	for _, c := range p.cols {
		h = append(h, c.header)
	}
	h = append(h, "AGE")
	fmt.Fprintln(p.tw, strings.Join(h, "\t"))
}

func (p *tablePrinter) row(obj *client.Raw) error {
	m, err := obj.Map()
	if err != nil {
		return err
	}
	var r []string
	if p.opts.allNamespaces && p.ki.Scope == v1.ScopeNamespaced {
		r = append(r, obj.Metadata.Namespace)
	}
	r = append(r, obj.Metadata.Name)
	for _, c := range p.cols {
		v := c.value(m)
		if v == "" {
			v = "<none>"
		}
		r = append(r, v)
	}
	r = append(r, age(obj.Metadata.CreationTimestamp, p.opts.now))
	fmt.Fprintln(p.tw, strings.Join(r, "\t"))
	return nil
}

func (p *tablePrinter) flush() error { return p.tw.Flush() }

// printList prints objects of one kind in format out.
func printList(w io.Writer, out string, ki v1.KindInfo, items []*client.Raw, opts printOptions) error {
	switch out {
	case outTable, outWide:
		if len(items) == 0 {
			return nil
		}
		opts.wide = out == outWide
		p := newTablePrinter(w, ki, opts)
		p.header()
		for _, it := range items {
			if err := p.row(it); err != nil {
				return err
			}
		}
		return p.flush()
	case outName:
		for _, it := range items {
			fmt.Fprintln(w, displayName(ki, it.Metadata.Name))
		}
		return nil
	case outYAML, outJSON:
		list := map[string]any{"apiVersion": v1.APIVersion, "kind": "List", "items": items}
		if items == nil {
			list["items"] = []any{}
		}
		return printData(w, out, list)
	}
	return checkOutput(out)
}

// printObject prints one object (any format; tables get one row).
func printObject(w io.Writer, out string, ki v1.KindInfo, obj *client.Raw, opts printOptions) error {
	switch out {
	case outYAML, outJSON:
		return printData(w, out, obj)
	}
	return printList(w, out, ki, []*client.Raw{obj}, opts)
}

// printData writes v as indented JSON or as YAML.
func printData(w io.Writer, out string, v any) error {
	data, err := json.MarshalIndent(v, "", "    ")
	if err != nil {
		return err
	}
	if out == outJSON {
		_, err = fmt.Fprintf(w, "%s\n", data)
		return err
	}
	y, err := yaml.JSONToYAML(data)
	if err != nil {
		return err
	}
	_, err = w.Write(y)
	return err
}

// age prints how long ago t was, kubectl style ("45s", "12m", "5h", "3d").
func age(t *time.Time, now time.Time) string {
	if t == nil || t.IsZero() {
		return "<unknown>"
	}
	return humanDuration(now.Sub(*t))
}

func humanDuration(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	switch {
	case d < 2*time.Minute:
		return strconv.Itoa(int(d/time.Second)) + "s"
	case d < 2*time.Hour:
		return strconv.Itoa(int(d/time.Minute)) + "m"
	case d < 48*time.Hour:
		return strconv.Itoa(int(d/time.Hour)) + "h"
	case d < 730*24*time.Hour:
		return strconv.Itoa(int(d/(24*time.Hour))) + "d"
	}
	return strconv.Itoa(int(d/(365*24*time.Hour))) + "y"
}

// get walks m along keys.
func get(m map[string]any, keys ...string) any {
	var cur any = m
	for _, k := range keys {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = mm[k]
	}
	return cur
}

// str formats the value at keys (strings, numbers, booleans, string lists).
func str(m map[string]any, keys ...string) string {
	return format(get(m, keys...))
}

func format(v any) string {
	switch t := v.(type) {
	case nil:
		return ""
	case string:
		return t
	case float64:
		return strconv.FormatFloat(t, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(t)
	case []any:
		parts := make([]string, 0, len(t))
		for _, x := range t {
			if s := format(x); s != "" {
				parts = append(parts, s)
			}
		}
		return truncList(parts)
	case map[string]any:
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, 0, len(keys))
		for _, k := range keys {
			parts = append(parts, k+"="+format(t[k]))
		}
		return strings.Join(parts, ",")
	}
	return fmt.Sprint(v)
}

// truncList joins at most 3 items and says how many more there are.
func truncList(parts []string) string {
	if len(parts) <= 3 {
		return strings.Join(parts, ",")
	}
	return strings.Join(parts[:3], ",") + fmt.Sprintf(" + %d more", len(parts)-3)
}

// pluck formats field of every element of the list at keys.
func pluck(m map[string]any, field string, keys ...string) string {
	list, _ := get(m, keys...).([]any)
	parts := make([]string, 0, len(list))
	for _, it := range list {
		if im, ok := it.(map[string]any); ok {
			if s := format(im[field]); s != "" {
				parts = append(parts, s)
			}
		}
	}
	return truncList(parts)
}

// count returns the length of the list at keys.
func count(m map[string]any, keys ...string) string {
	switch t := get(m, keys...).(type) {
	case []any:
		return strconv.Itoa(len(t))
	case map[string]any:
		return strconv.Itoa(len(t))
	}
	return "0"
}

// first returns the first non-empty value among the paths.
func first(m map[string]any, paths ...[]string) string {
	for _, p := range paths {
		if s := str(m, p...); s != "" {
			return s
		}
	}
	return ""
}

// wideColumns are the kind-specific columns of `get -o wide`.
func wideColumns(kind string) []column {
	switch kind {
	case "OriginPool":
		return []column{
			{"ENDPOINTS", func(m map[string]any) string { return pluck(m, "address", "spec", "endpoints") }},
			{"ALGORITHM", func(m map[string]any) string { return str(m, "spec", "loadBalancing") }},
			{"HEALTHCHECK", func(m map[string]any) string {
				if s := str(m, "spec", "healthCheckRef"); s != "" {
					return s
				}
				if get(m, "spec", "healthCheck") != nil {
					return "inline"
				}
				return ""
			}},
		}
	case "HealthCheck":
		return []column{
			{"TYPE", func(m map[string]any) string {
				for _, t := range []string{"http", "tcp", "grpc"} {
					if get(m, "spec", t) != nil {
						return t
					}
				}
				return ""
			}},
			{"INTERVAL", func(m map[string]any) string { return str(m, "spec", "interval") }},
		}
	case "HTTPLoadBalancer":
		return []column{
			{"DOMAINS", func(m map[string]any) string { return str(m, "spec", "domains") }},
			{"PORTS", func(m map[string]any) string { return pluck(m, "port", "spec", "listeners") }},
			{"DEFAULT-POOL", func(m map[string]any) string { return str(m, "spec", "defaultPool") }},
			{"ROUTES", func(m map[string]any) string { return count(m, "spec", "routes") }},
			{"VIRTUAL-SITE", func(m map[string]any) string { return str(m, "spec", "sites", "virtualSite") }},
		}
	case "TCPLoadBalancer":
		return []column{
			{"PORTS", func(m map[string]any) string { return pluck(m, "port", "spec", "listeners") }},
			{"POOL", func(m map[string]any) string { return str(m, "spec", "pool") }},
			{"VIRTUAL-SITE", func(m map[string]any) string { return str(m, "spec", "sites", "virtualSite") }},
		}
	case "AppFirewall":
		return []column{
			{"MODE", func(m map[string]any) string { return str(m, "spec", "mode") }},
			{"PARANOIA", func(m map[string]any) string { return str(m, "spec", "paranoiaLevel") }},
		}
	case "ServicePolicy":
		return []column{
			{"MODE", func(m map[string]any) string { return str(m, "spec", "mode") }},
			{"RULES", func(m map[string]any) string { return count(m, "spec", "rules") }},
			{"DEFAULT", func(m map[string]any) string { return str(m, "spec", "defaultAction") }},
		}
	case "NetworkPolicy":
		return []column{
			{"MODE", func(m map[string]any) string { return str(m, "spec", "mode") }},
			{"RULES", func(m map[string]any) string { return count(m, "spec", "ingress") }},
			{"DEFAULT", func(m map[string]any) string { return str(m, "spec", "defaultAction") }},
			{"LISTENER-PORTS", func(m map[string]any) string { return str(m, "spec", "listenerPorts") }},
			{"VIRTUAL-SITE", func(m map[string]any) string { return str(m, "spec", "sites", "virtualSite") }},
		}
	case "SecurityBinding":
		return []column{
			{"FIREWALL", func(m map[string]any) string { return str(m, "spec", "appFirewall") }},
			{"POLICIES", func(m map[string]any) string { return str(m, "spec", "servicePolicies") }},
			{"RATE-LIMITER", func(m map[string]any) string { return str(m, "spec", "rateLimiter") }},
		}
	case "RateLimiter":
		return []column{
			{"RATE", func(m map[string]any) string {
				r := str(m, "spec", "rate")
				if per := str(m, "spec", "per"); r != "" && per != "" {
					r += "/" + per
				}
				return r
			}},
			{"BURST", func(m map[string]any) string { return str(m, "spec", "burst") }},
		}
	case "Certificate":
		return []column{
			{"DNS-NAMES", func(m map[string]any) string {
				if c := leafCert(str(m, "spec", "certificate")); c != nil {
					return truncList(c.DNSNames)
				}
				return ""
			}},
			{"NOT-AFTER", func(m map[string]any) string {
				if c := leafCert(str(m, "spec", "certificate")); c != nil {
					return c.NotAfter.UTC().Format(time.RFC3339)
				}
				return ""
			}},
			{"KEY", func(m map[string]any) string {
				if str(m, "spec", "privateKey") != "" {
					return "set"
				}
				return "unset"
			}},
		}
	case "Role":
		return []column{
			{"RULES", func(m map[string]any) string { return count(m, "spec", "rules") }},
		}
	case "RoleBinding":
		return []column{
			{"ROLE", func(m map[string]any) string {
				return first(m, []string{"spec", "role"}, []string{"spec", "roleRef", "name"}, []string{"spec", "roleRef"})
			}},
			{"NAMESPACES", func(m map[string]any) string {
				return first(m, []string{"spec", "namespaces"}, []string{"spec", "namespace"})
			}},
			{"SUBJECTS", func(m map[string]any) string { return pluck(m, "name", "spec", "subjects") }},
		}
	case "APIToken":
		return []column{
			{"EXPIRES", func(m map[string]any) string {
				return first(m, []string{"status", "expiresAt"}, []string{"spec", "expiresAt"}, []string{"spec", "expires"})
			}},
		}
	case "User":
		return []column{
			{"DISPLAY-NAME", func(m map[string]any) string { return str(m, "spec", "displayName") }},
			{"DISABLED", func(m map[string]any) string { return boolStr(m, "spec", "disabled") }},
		}
	case "VirtualSite":
		return []column{
			{"SELECTOR", func(m map[string]any) string { return str(m, "spec", "selector", "matchLabels") }},
		}
	case "SiteToken":
		return []column{
			{"EXPIRES", func(m map[string]any) string {
				return first(m, []string{"status", "expiresAt"}, []string{"spec", "expires"})
			}},
			{"USES", func(m map[string]any) string { return orZero(str(m, "status", "uses")) }},
			{"MAX-USES", func(m map[string]any) string { return str(m, "spec", "maxUses") }},
			{"AUTO-APPROVE", func(m map[string]any) string { return boolStr(m, "spec", "autoApprove") }},
		}
	case "Site":
		return []column{
			{"STATE", func(m map[string]any) string { return str(m, "status", "state") }},
			{"ONLINE", func(m map[string]any) string { return boolStr(m, "status", "online") }},
			{"LAST-SEEN", func(m map[string]any) string { return str(m, "status", "lastSeen") }},
			{"NODE-VERSION", func(m map[string]any) string { return str(m, "status", "nodeVersion") }},
			{"CAPABILITY", func(m map[string]any) string { return str(m, "status", "capabilityVersion") }},
			{"APPLIED", func(m map[string]any) string { return str(m, "status", "appliedVersion") }},
			{"ERRORS", func(m map[string]any) string { return count(m, "status", "errors") }},
			{"LABELS", func(m map[string]any) string { return str(m, "metadata", "labels") }},
		}
	}
	return nil
}

// boolStr prints a boolean field, false when absent (omitempty).
func boolStr(m map[string]any, keys ...string) string {
	if b, ok := get(m, keys...).(bool); ok && b {
		return "true"
	}
	return "false"
}

func orZero(s string) string {
	if s == "" {
		return "0"
	}
	return s
}

// leafCert parses the first certificate of a PEM bundle (nil if none).
func leafCert(pemData string) *x509.Certificate {
	rest := []byte(pemData)
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return nil
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil
		}
		return c
	}
}
