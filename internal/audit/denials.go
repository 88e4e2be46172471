package audit

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"
)

// Denial is one denied request, as the API server sees it.
type Denial struct {
	// Tenant whose chain records it. Requests whose tenant is unknown
	// (a bad token, a login to a tenant that does not exist) belong in the
	// system tenant's chain, so that no tenant name is confirmed.
	Tenant    string
	Principal string
	Verb      string
	Kind      string
	Namespace string
	Name      string
	// ClientAddr, Code and Reason of the first denial of a bucket are kept.
	ClientAddr string
	Code       int
	Reason     string
	Time       time.Time
}

// OverflowPrincipal is the principal of the record that counts denials
// that did not fit in the accumulator.
const OverflowPrincipal = "(overflow)"

type denialKey struct {
	tenant, principal string
	minute            int64 // unix minute
}

type denialBucket struct {
	first Denial
	count int
}

// Denials aggregates denied requests per tenant, principal and minute in
// memory and writes one audit record per bucket with its count, so that a
// flood of bad tokens cannot flood the store. Memory is bounded: at most
// MaxKeys buckets; denials of principals beyond that are counted, per
// minute, in one overflow bucket of OverflowTenant. A Denials is safe for
// concurrent use.
type Denials struct {
	maxKeys        int
	overflowTenant string

	mu       sync.Mutex
	buckets  map[denialKey]*denialBucket
	overflow map[int64]int // minute -> count
}

// NewDenials returns an accumulator of at most maxKeys buckets whose
// overflow is recorded in overflowTenant's chain.
func NewDenials(maxKeys int, overflowTenant string) *Denials {
	if maxKeys <= 0 {
		maxKeys = 1
	}
	return &Denials{maxKeys: maxKeys, overflowTenant: overflowTenant,
		buckets: map[denialKey]*denialBucket{}, overflow: map[int64]int{}}
}

func unixMinute(t time.Time) int64 { return t.Unix() / 60 }

// Add counts one denied request.
func (d *Denials) Add(x Denial) {
	if x.Time.IsZero() {
		x.Time = time.Now()
	}
	k := denialKey{x.Tenant, x.Principal, unixMinute(x.Time)}
	d.mu.Lock()
	defer d.mu.Unlock()
	if b, ok := d.buckets[k]; ok {
		b.count++
		return
	}
	if len(d.buckets) >= d.maxKeys || checkTenant(x.Tenant) != nil {
		d.overflow[k.minute]++
		return
	}
	d.buckets[k] = &denialBucket{first: x, count: 1}
}

// Pending returns the number of buckets waiting to be flushed (overflow
// minutes included).
func (d *Denials) Pending() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.buckets) + len(d.overflow)
}

// Appender is what Flush needs of a Log.
type Appender interface {
	Append(ctx context.Context, tenant string, rec Record) (Record, error)
}

type flushItem struct {
	k denialKey
	b denialBucket
}

// Flush writes one record per bucket of a minute that has ended by now (all
// buckets when all is true, e.g. at shutdown) and returns how many records
// it wrote. Buckets that fail to write are kept for the next Flush.
func (d *Denials) Flush(ctx context.Context, log Appender, now time.Time, all bool) (int, error) {
	cur := unixMinute(now)
	var items []flushItem
	d.mu.Lock()
	for k, b := range d.buckets {
		if all || k.minute < cur {
			items = append(items, flushItem{k, *b})
			delete(d.buckets, k)
		}
	}
	for m, n := range d.overflow {
		if all || m < cur {
			items = append(items, flushItem{denialKey{d.overflowTenant, OverflowPrincipal, m}, denialBucket{count: n}})
			delete(d.overflow, m)
		}
	}
	d.mu.Unlock()
	sort.Slice(items, func(i, j int) bool {
		a, b := items[i].k, items[j].k
		if a.minute != b.minute {
			return a.minute < b.minute
		}
		if a.tenant != b.tenant {
			return a.tenant < b.tenant
		}
		return a.principal < b.principal
	})
	written := 0
	var errs []error
	for _, it := range items {
		f := it.b.first
		rec := Record{
			Time:       time.Unix(it.k.minute*60, 0).UTC(),
			Principal:  it.k.principal,
			Verb:       f.Verb,
			Kind:       f.Kind,
			Namespace:  f.Namespace,
			Name:       f.Name,
			ClientAddr: f.ClientAddr,
			Outcome:    OutcomeDenied,
			Code:       f.Code,
			Reason:     f.Reason,
			Count:      it.b.count,
		}
		if it.k.principal == OverflowPrincipal && f.Principal == "" {
			rec.Verb = "*"
			rec.Reason = "denied requests of principals beyond the accumulator's capacity"
		}
		if _, err := log.Append(ctx, it.k.tenant, rec); err != nil {
			errs = append(errs, err)
			d.putBack(it)
			continue
		}
		written++
	}
	if len(errs) > 0 {
		return written, fmt.Errorf("flushing denied requests: %w", errors.Join(errs...))
	}
	return written, nil
}

func (d *Denials) putBack(it flushItem) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if it.k.principal == OverflowPrincipal && it.b.first.Principal == "" {
		d.overflow[it.k.minute] += it.b.count
		return
	}
	if b, ok := d.buckets[it.k]; ok {
		b.count += it.b.count
		return
	}
	if len(d.buckets) >= d.maxKeys {
		d.overflow[it.k.minute] += it.b.count
		return
	}
	b := it.b
	d.buckets[it.k] = &b
}

// Run flushes every interval until ctx ends, then flushes everything left
// with a short grace period. Errors go to onErr when it is not nil.
func (d *Denials) Run(ctx context.Context, log Appender, interval time.Duration, onErr func(error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			_, err := d.Flush(fctx, log, time.Now(), true)
			cancel()
			if err != nil && onErr != nil {
				onErr(err)
			}
			return
		case now := <-t.C:
			if _, err := d.Flush(ctx, log, now, false); err != nil && onErr != nil {
				onErr(err)
			}
		}
	}
}
