package audit

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/meridian-platform/meridian/internal/store"
	"github.com/meridian-platform/meridian/internal/store/backendtest"
)

func TestDenialsAggregate(t *testing.T) {
	ctx := context.Background()
	st := backendtest.Bolt(t)
	l := newLog(t, st, Options{})
	d := NewDenials(4, "system")
	t0 := time.Date(2026, 3, 1, 12, 0, 10, 0, time.UTC)

	// A flood: 1,000 bad tokens from one principal, some from others, and
	// many distinct principals beyond the capacity.
	for i := 0; i < 1000; i++ {
		d.Add(Denial{Tenant: "system", Principal: "anonymous", Verb: "get", Kind: "OriginPool", ClientAddr: "203.0.113.9", Code: 401, Reason: "invalid token", Time: t0})
	}
	for i := 0; i < 5; i++ {
		d.Add(Denial{Tenant: "acme", Principal: "User/alice", Verb: "delete", Kind: "Site", Code: 403, Time: t0.Add(time.Duration(i) * time.Second)})
	}
	d.Add(Denial{Tenant: "acme", Principal: "User/alice", Verb: "delete", Kind: "Site", Code: 403, Time: t0.Add(time.Minute)}) // next minute
	for i := 0; i < 500; i++ {
		d.Add(Denial{Tenant: "acme", Principal: fmt.Sprint("User/u", i), Verb: "get", Kind: "User", Code: 403, Time: t0})
	}
	if p := d.Pending(); p > 4+2 {
		t.Fatalf("%d buckets pending, capacity is 4 (+ overflow minutes)", p)
	}

	// During the minute nothing is flushed; after it, the ended minute is.
	if n, err := d.Flush(ctx, l, t0.Add(20*time.Second), false); err != nil || n != 0 {
		t.Fatalf("flush during the minute: %d %v", n, err)
	}
	n, err := d.Flush(ctx, l, t0.Add(time.Minute), false)
	if err != nil {
		t.Fatal(err)
	}
	sys, _ := l.List(ctx, "system", Filter{})
	acme, _ := l.List(ctx, "acme", Filter{})
	if n != len(sys.Items)+len(acme.Items) {
		t.Fatalf("flushed %d, stored %d+%d", n, len(sys.Items), len(acme.Items))
	}
	total := 0
	var anon *Record
	for i, r := range append(sys.Items, acme.Items...) {
		if r.Outcome != OutcomeDenied || r.Count < 1 || r.Time.Second() != 0 {
			t.Fatalf("record %+v", r)
		}
		total += r.Count
		if r.Principal == "anonymous" {
			anon = &append(sys.Items, acme.Items...)[i]
		}
	}
	if total != 1000+5+500 {
		t.Fatalf("counted %d denials, want 1505", total)
	}
	if anon == nil || anon.Count != 1000 || anon.Reason != "invalid token" || anon.ClientAddr != "203.0.113.9" {
		t.Fatalf("anonymous bucket %+v", anon)
	}
	if len(sys.Items)+len(acme.Items) > 5 {
		t.Fatalf("%d records for one minute with capacity 4", len(sys.Items)+len(acme.Items))
	}
	var overflow int
	for _, r := range sys.Items {
		if r.Principal == OverflowPrincipal {
			overflow += r.Count
		}
	}
	if overflow == 0 {
		t.Fatal("no overflow record")
	}
	// The next minute's bucket waits; a final flush writes it.
	if d.Pending() != 1 {
		t.Fatalf("pending %d, want 1", d.Pending())
	}
	if n, err := d.Flush(ctx, l, t0.Add(time.Minute), true); err != nil || n != 1 {
		t.Fatalf("final flush: %d %v", n, err)
	}
	for _, tn := range []string{"system", "acme"} {
		if rep, err := l.Verify(ctx, tn); err != nil || !rep.OK {
			t.Fatalf("%s: %+v %v", tn, rep, err)
		}
	}
}

type failingAppender struct{ fail bool }

func (f *failingAppender) Append(ctx context.Context, tenant string, rec Record) (Record, error) {
	if f.fail {
		return Record{}, &store.ConflictError{Key: "x"}
	}
	return rec, nil
}

func TestDenialsKeptOnFailure(t *testing.T) {
	ctx := context.Background()
	d := NewDenials(10, "system")
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	d.Add(Denial{Tenant: "acme", Principal: "User/a", Time: t0})
	d.Add(Denial{Tenant: "acme", Principal: "User/a", Time: t0})
	app := &failingAppender{fail: true}
	if _, err := d.Flush(ctx, app, t0.Add(time.Hour), false); err == nil {
		t.Fatal("flush to a failing log succeeded")
	}
	if d.Pending() != 1 {
		t.Fatalf("pending %d after a failed flush, want 1", d.Pending())
	}
	app.fail = false
	if n, err := d.Flush(ctx, app, t0.Add(time.Hour), false); err != nil || n != 1 {
		t.Fatalf("retry: %d %v", n, err)
	}
}

func TestDenialsRun(t *testing.T) {
	st := backendtest.Bolt(t)
	l := newLog(t, st, Options{})
	d := NewDenials(10, "system")
	d.Add(Denial{Tenant: "acme", Principal: "User/a", Verb: "get", Kind: "Site", Time: time.Now()})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx, l, time.Hour, func(err error) { t.Error(err) }); close(done) }()
	cancel()
	<-done
	res, err := l.List(context.Background(), "acme", Filter{})
	if err != nil || len(res.Items) != 1 || res.Items[0].Count != 1 {
		t.Fatalf("after Run stopped: %+v %v", res, err)
	}
}
