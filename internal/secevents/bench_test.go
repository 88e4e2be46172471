package secevents

import (
	"context"
	"fmt"
	"testing"
	"time"
)

func benchRecords(n int, t0 time.Time) []Record {
	recs := make([]Record, n)
	for i := range recs {
		recs[i] = Record{Time: t0.Add(time.Duration(i) * time.Millisecond), Type: KindWAF, Action: ActionBlocked,
			RequestID: fmt.Sprintf("%032x", i), Namespace: "retail", LoadBalancer: fmt.Sprintf("lb-%d", i%10), Route: "default",
			Site: "paris", Client: "203.0.113.7", Method: "GET", Host: "shop.example", Path: "/api/users", Status: 403,
			Source: "retail/fw", Message: "blocked by rule 942100",
			Rules: []RuleHit{{ID: 942100, Message: "SQL Injection Attack Detected via libinjection", Variable: "ARGS:id", Data: "1' or 1=1"},
				{ID: 949110, Message: "Inbound Anomaly Score Exceeded (Total Score: 5)"}}}
	}
	return recs
}

// BenchmarkStoreAppend: one telemetry batch of 100 events.
func BenchmarkStoreAppend(b *testing.B) {
	s := NewStore(b.TempDir(), StoreOptions{})
	recs := benchRecords(100, time.Now())
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := s.Append("acme", recs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*100)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkStoreListFull: the newest 100 of one load balancer in a tenant
// whose files are full (the default 4 × 8 MiB).
func BenchmarkStoreListFull(b *testing.B) {
	s := NewStore(b.TempDir(), StoreOptions{})
	t0 := time.Now()
	for i := 0; i < 600; i++ {
		if err := s.Append("acme", benchRecords(100, t0.Add(time.Duration(i)*100*time.Millisecond))); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		got, err := s.List(context.Background(), "acme", Filter{LoadBalancer: "retail/lb-3", Limit: 100})
		if err != nil || len(got) != 100 {
			b.Fatalf("%v %d", err, len(got))
		}
	}
}
