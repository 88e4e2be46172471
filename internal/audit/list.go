package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/meridian-platform/meridian/internal/store"
)

// Filter selects records for List. Empty fields match everything.
type Filter struct {
	Principal string
	Verb      string
	Kind      string
	Namespace string
	Name      string
	Outcome   Outcome
	// Since and Until bound Record.Time (Since inclusive, Until exclusive).
	Since, Until time.Time
	// Limit bounds the records returned: 0 means DefaultListLimit, and it
	// is capped at MaxListLimit.
	Limit int
	// After starts after this sequence number (the Next of a previous page).
	After uint64
}

// List limits.
const (
	DefaultListLimit = 100
	MaxListLimit     = 1000
)

// ListResult is one page of records, oldest first.
type ListResult struct {
	Items []Record
	// More is true when records may remain; pass Next as Filter.After.
	More bool
	Next uint64
}

func (f *Filter) match(r *Record) bool {
	return (f.Principal == "" || r.Principal == f.Principal) &&
		(f.Verb == "" || r.Verb == f.Verb) &&
		(f.Kind == "" || r.Kind == f.Kind) &&
		(f.Namespace == "" || r.Namespace == f.Namespace) &&
		(f.Name == "" || r.Name == f.Name) &&
		(f.Outcome == "" || r.Outcome == f.Outcome) &&
		(f.Since.IsZero() || !r.Time.Before(f.Since)) &&
		(f.Until.IsZero() || r.Time.Before(f.Until))
}

// List returns a tenant's records that match f, oldest first, read at one
// store revision. It decodes records without verifying them (see Verify).
func (l *Log) List(ctx context.Context, tenant string, f Filter) (ListResult, error) {
	if err := checkTenant(tenant); err != nil {
		return ListResult{}, err
	}
	limit := f.Limit
	if limit <= 0 {
		limit = DefaultListLimit
	}
	limit = min(limit, MaxListLimit)
	var out ListResult
	opts := store.ListOptions{Limit: 500}
	if f.After > 0 {
		opts.After = l.RecordKey(tenant, f.After)
	}
	for {
		res, err := l.st.List(ctx, l.recordPrefix(tenant), opts)
		if err != nil {
			return ListResult{}, fmt.Errorf("listing audit records of tenant %q: %w", tenant, err)
		}
		for i, kv := range res.Items {
			var r Record
			if err := json.Unmarshal(kv.Value, &r); err != nil {
				return ListResult{}, fmt.Errorf("listing audit records of tenant %q: decoding %s: %w", tenant, kv.Key, err)
			}
			if !f.Until.IsZero() && !r.Time.Before(f.Until) && r.Time.Sub(f.Until) > time.Hour {
				// Records are appended in time order (give or take clock
				// steps between consoles): far past Until, stop.
				return out, nil
			}
			if !f.match(&r) {
				continue
			}
			out.Items = append(out.Items, r)
			if len(out.Items) == limit {
				out.Next = r.Seq
				out.More = i < len(res.Items)-1 || res.More
				return out, nil
			}
		}
		if !res.More || len(res.Items) == 0 {
			return out, nil
		}
		opts.After, opts.Revision = res.Items[len(res.Items)-1].Key, res.Revision
	}
}
