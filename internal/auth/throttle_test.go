package auth

import (
	"fmt"
	"testing"
	"time"
)

func TestThrottle(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	th := NewThrottle(100*time.Millisecond, time.Second, 3)
	if d := th.Wait("acme/alice", now); d != 0 {
		t.Fatalf("fresh key waits %v", d)
	}
	want := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for i, w := range want {
		if d := th.Failure("acme/alice", now); d != w*time.Millisecond && !(w == 1000 && d == time.Second) {
			t.Fatalf("failure %d: delay %v, want %vms", i+1, d, w)
		}
	}
	if d := th.Wait("acme/alice", now.Add(400*time.Millisecond)); d != 600*time.Millisecond {
		t.Fatalf("Wait = %v, want 600ms", d)
	}
	if d := th.Wait("acme/alice", now.Add(time.Second)); d != 0 {
		t.Fatalf("Wait after the delay = %v", d)
	}
	// Forgotten after 2·max without failures.
	later := now.Add(3 * time.Second)
	if d := th.Failure("acme/alice", later); d != 100*time.Millisecond {
		t.Fatalf("after a quiet period: %v", d)
	}
	th.Success("acme/alice")
	if d := th.Wait("acme/alice", later); d != 0 {
		t.Fatalf("after success: %v", d)
	}
	// Bounded memory under a flood of distinct keys.
	for i := 0; i < 100; i++ {
		th.Failure(fmt.Sprint("203.0.113.", i), later)
	}
	if th.Len() > 3 {
		t.Fatalf("tracking %d keys, capacity 3", th.Len())
	}
}
