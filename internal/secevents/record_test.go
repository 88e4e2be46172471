package secevents

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestAttrsRoundTrip(t *testing.T) {
	e := &Event{Time: time.Date(2026, 11, 26, 1, 2, 3, 4, time.UTC), Kind: KindWAF, Action: ActionBlocked, RequestID: "r1",
		LoadBalancer: "retail/shop", Route: "api", Client: "203.0.113.7:5555", Method: "GET", Host: "shop.example",
		Path: "/q?id=1&token=abc&card=4111111111111111", Status: 403, Source: "retail/fw", Message: "blocked by rule 942100",
		Rules: []RuleHit{{ID: 942100, Message: "SQL injection", Variable: "ARGS:id", Data: "1 or 1=1"}}}
	got, err := FromAttrs(e.Time, e.Message, e.Attrs())
	if err != nil {
		t.Fatal(err)
	}
	if got.Path != "/q?id=1&token=****&card=****************" {
		t.Errorf("path not masked: %q", got.Path)
	}
	got.Path = e.Path
	if fmt.Sprint(got) != fmt.Sprint(*e) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, *e)
	}
}

func TestFromAttrsBoundsAndRejects(t *testing.T) {
	now := time.Now()
	hits := make([]string, 40)
	for i := range hits {
		hits[i] = fmt.Sprintf(`{"id":%d,"variable":"ARGS:password","data":"hunter2","message":%q}`, i+1, strings.Repeat("m", 2000))
	}
	e, err := FromAttrs(now, strings.Repeat("x", 5000), map[string]string{"kind": "waf", "route": strings.Repeat("é", 1000),
		"rules": "[" + strings.Join(hits, ",") + "]"})
	if err != nil {
		t.Fatal(err)
	}
	if len(e.Rules) != maxRules || len(e.Message) > maxField+4 || len(e.Route) > maxField+4 || len(e.Rules[0].Message) > maxField+4 {
		t.Errorf("not bounded: rules=%d msg=%d route=%d", len(e.Rules), len(e.Message), len(e.Route))
	}
	if e.Rules[0].Data != "****" {
		t.Errorf("matched data of a password not masked again: %q", e.Rules[0].Data)
	}
	for _, tt := range []struct {
		attrs map[string]string
		want  string
	}{
		{map[string]string{"action": "blocked"}, "kind"},
		{map[string]string{"kind": "waf", "status": "abc"}, "status"},
		{map[string]string{"kind": "waf", "status": "4030"}, "status"},
		{map[string]string{"kind": "waf", "rules": "{"}, "rules"},
	} {
		if _, err := FromAttrs(now, "", tt.attrs); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("FromAttrs(%v) error = %v, want one naming %q", tt.attrs, err, tt.want)
		}
	}
}

func TestMaskPath(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"/a", "/a"},
		{"/a?", "/a?"},
		{"/a?x=1&API_KEY=zz&session=&n=123456789", "/a?x=1&API_KEY=****&session=&n=*********"},
		{"/login?password=p&user=bob", "/login?password=****&user=bob"},
	} {
		if got := MaskPath(tt.in); got != tt.want {
			t.Errorf("MaskPath(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestFilterMatch(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r := Record{Time: t0, Type: KindWAF, Namespace: "retail", LoadBalancer: "shop", Site: "paris",
		Rules: []RuleHit{{ID: 942100}, {Name: "no-bots"}}}
	for _, tt := range []struct {
		name string
		f    Filter
		want bool
	}{
		{"empty", Filter{}, true},
		{"namespace", Filter{Namespaces: map[string]bool{"retail": true}}, true},
		{"other namespace", Filter{Namespaces: map[string]bool{"hr": true}}, false},
		{"no namespace allowed", Filter{Namespaces: map[string]bool{}}, false},
		{"lb name", Filter{LoadBalancer: "shop"}, true},
		{"lb ns/name", Filter{LoadBalancer: "retail/shop"}, true},
		{"lb other ns", Filter{LoadBalancer: "hr/shop"}, false},
		{"site", Filter{Site: "paris"}, true},
		{"other site", Filter{Site: "oslo"}, false},
		{"type", Filter{Type: KindPolicy}, false},
		{"rule id", Filter{Rule: "942100"}, true},
		{"rule name", Filter{Rule: "no-bots"}, true},
		{"other rule", Filter{Rule: "941100"}, false},
		{"since equal", Filter{Since: t0}, true},
		{"since after", Filter{Since: t0.Add(time.Second)}, false},
		{"until is exclusive", Filter{Until: t0}, false},
		{"until after", Filter{Until: t0.Add(time.Second)}, true},
	} {
		if got := tt.f.Match(&r); got != tt.want {
			t.Errorf("%s: Match = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestWriterForwardsEvenWhenTheLogFails(t *testing.T) {
	w := NewWriter(failWriter{}, WriterOptions{})
	var n atomic.Int32
	w.SetOnEvent(func(*Event) { n.Add(1) })
	w.Emit(&Event{Kind: KindWAF})
	w.Emit(&Event{Kind: KindPolicy})
	_ = w.Close()
	if n.Load() != 2 {
		t.Errorf("forwarded %d events, want 2", n.Load())
	}
}

func rec(ts time.Time, ns, lb string) Record {
	return Record{Time: ts, Type: KindWAF, Action: ActionBlocked, Namespace: ns, LoadBalancer: lb, Site: "s1",
		Rules: []RuleHit{{ID: 942100, Message: "SQL injection"}}}
}

func TestStoreNewestFirstAcrossRestartAndTenants(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	t0 := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	s := NewStore(dir, StoreOptions{})
	// Arrival order differs from event time (a node's buffer arriving late).
	if err := s.Append("acme", []Record{rec(t0.Add(2*time.Second), "retail", "shop"), rec(t0, "retail", "shop")}); err != nil {
		t.Fatal(err)
	}
	if err := s.Append("acme", []Record{rec(t0.Add(time.Second), "hr", "portal")}); err != nil {
		t.Fatal(err)
	}
	if err := s.Append("globex", []Record{rec(t0.Add(3*time.Second), "retail", "shop")}); err != nil {
		t.Fatal(err)
	}
	s = NewStore(dir, StoreOptions{}) // a console restart
	got, err := s.List(ctx, "acme", Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || !got[0].Time.Equal(t0.Add(2*time.Second)) || !got[1].Time.Equal(t0.Add(time.Second)) || !got[2].Time.Equal(t0) {
		t.Fatalf("acme events = %+v", got)
	}
	got, _ = s.List(ctx, "acme", Filter{Limit: 2, Namespaces: map[string]bool{"retail": true}})
	if len(got) != 2 || got[0].Namespace != "retail" || !got[1].Time.Equal(t0) {
		t.Fatalf("filtered = %+v", got)
	}
	got, _ = s.List(ctx, "acme", Filter{Limit: 1})
	if len(got) != 1 || !got[0].Time.Equal(t0.Add(2*time.Second)) {
		t.Fatalf("limit 1 = %+v", got)
	}
	got, _ = s.List(ctx, "globex", Filter{})
	if len(got) != 1 || !got[0].Time.Equal(t0.Add(3*time.Second)) {
		t.Fatalf("globex = %+v", got)
	}
	if got, _ := s.List(ctx, "nobody", Filter{}); len(got) != 0 {
		t.Fatalf("a tenant without events got %+v", got)
	}
	if err := s.Append("../x", []Record{rec(t0, "a", "b")}); err == nil {
		t.Fatal("a tenant name with a path separator was accepted")
	}
}

func TestStoreRotationBoundsDisk(t *testing.T) {
	dir := t.TempDir()
	s := NewStore(dir, StoreOptions{FileBytes: 4 << 10, Files: 3})
	t0 := time.Now().UTC()
	const n = 2000
	for i := 0; i < n; i++ {
		if err := s.Append("acme", []Record{rec(t0.Add(time.Duration(i)*time.Millisecond), "retail", "shop")}); err != nil {
			t.Fatal(err)
		}
	}
	var total int64
	files, _ := filepath.Glob(filepath.Join(dir, "acme", "*"))
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		total += fi.Size()
	}
	if len(files) != 3 || total > 3*(4<<10) {
		t.Fatalf("%d files, %d bytes: not bounded", len(files), total)
	}
	got, err := s.List(context.Background(), "acme", Filter{Limit: MaxListLimit})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) == 0 || len(got) >= n || !got[0].Time.Equal(t0.Add((n-1)*time.Millisecond)) {
		t.Fatalf("after rotation: %d events, newest %v", len(got), got[0].Time)
	}
	// A line cut short by a crash is skipped, the rest still read.
	f, _ := os.OpenFile(filepath.Join(dir, "acme", "events.jsonl"), os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(`{"time":"2026-`)
	f.Close()
	s2 := NewStore(dir, StoreOptions{FileBytes: 4 << 10, Files: 3})
	if err := s2.Append("acme", []Record{rec(t0.Add(time.Hour), "retail", "shop")}); err != nil {
		t.Fatal(err)
	}
	got, err = s2.List(context.Background(), "acme", Filter{Limit: 1})
	if err != nil || len(got) != 1 || !got[0].Time.Equal(t0.Add(time.Hour)) {
		t.Fatalf("after a torn line: %v %+v", err, got)
	}
}

// TestStoreListEqualsBruteForce: the prefilter and the heap never change
// what List answers: the newest Limit records that Filter.Match accepts.
func TestStoreListEqualsBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	s := NewStore(t.TempDir(), StoreOptions{})
	t0 := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	pick := func(xs ...string) string { return xs[rng.IntN(len(xs))] }
	var all []Record
	for b := 0; b < 50; b++ {
		var batch []Record
		for i := 0; i < 40; i++ {
			r := Record{Time: t0.Add(time.Duration(rng.IntN(3600)) * time.Second), Type: pick(KindWAF, KindPolicy, KindRateLimit),
				Action: ActionBlocked, Namespace: pick("retail", "hr"), LoadBalancer: pick("shop", "portal"), Site: pick("paris", "oslo"),
				RequestID: fmt.Sprint(b*100 + i)}
			if rng.IntN(2) == 0 {
				r.Rules = []RuleHit{{ID: 942100 + rng.IntN(3)}}
			} else {
				r.Rules = []RuleHit{{Name: pick("no-admin", "<a&b>")}}
			}
			batch = append(batch, r)
		}
		all = append(all, batch...)
		if err := s.Append("acme", batch); err != nil {
			t.Fatal(err)
		}
	}
	filters := []Filter{
		{}, {Limit: 7}, {LoadBalancer: "shop"}, {LoadBalancer: "hr/portal", Limit: 500}, {Site: "oslo", Type: KindPolicy},
		{Rule: "942101"}, {Rule: "<a&b>", Limit: 1000}, {Namespaces: map[string]bool{"hr": true}}, {Namespaces: map[string]bool{"hr": true, "retail": true}, Limit: 3},
		{Since: t0.Add(30 * time.Minute), Until: t0.Add(40 * time.Minute), Limit: 1000},
	}
	for _, f := range filters {
		got, err := s.List(context.Background(), "acme", f)
		if err != nil {
			t.Fatal(err)
		}
		var want []Record
		for i := range all {
			if f.Match(&all[i]) {
				want = append(want, all[i])
			}
		}
		sort.SliceStable(want, func(i, j int) bool { return want[i].Time.After(want[j].Time) })
		limit := f.Limit
		if limit == 0 {
			limit = defaultListLimit
		}
		want = want[:min(limit, len(want))]
		if len(got) != len(want) {
			t.Fatalf("%+v: %d records, want %d", f, len(got), len(want))
		}
		for i := range got {
			// Equal times may come in any order: compare the times, and
			// that each record matches.
			if !got[i].Time.Equal(want[i].Time) || !f.Match(&got[i]) {
				t.Fatalf("%+v: record %d = %+v, want time %v", f, i, got[i], want[i].Time)
			}
		}
	}
}
