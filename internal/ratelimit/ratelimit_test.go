package ratelimit

import (
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	v1 "github.com/meridian-platform/meridian/api/v1"
)

var t0 = time.Unix(1_700_000_000, 0)

func TestLimitOf(t *testing.T) {
	tests := []struct {
		spec v1.RateLimiterSpec
		want Limit
	}{
		{v1.RateLimiterSpec{Rate: 10}, Limit{100 * time.Millisecond, 10}},
		{v1.RateLimiterSpec{Rate: 60, Burst: 5, Per: "minute"}, Limit{time.Second, 5}},
		{v1.RateLimiterSpec{Rate: 2, Per: "hour"}, Limit{30 * time.Minute, 2}},
	}
	for _, tt := range tests {
		got, err := LimitOf(tt.spec)
		if err != nil || got != tt.want {
			t.Errorf("LimitOf(%+v) = %+v, %v; want %+v", tt.spec, got, err, tt.want)
		}
	}
	if _, err := LimitOf(v1.RateLimiterSpec{Rate: 0}); err == nil {
		t.Error("rate 0 accepted")
	}
	if _, err := LimitOf(v1.RateLimiterSpec{Rate: 1, Per: "fortnight"}); err == nil {
		t.Error("bad period accepted")
	}
}

func TestTokenBucket(t *testing.T) {
	s := NewStore(0)
	l := Limit{Interval: 100 * time.Millisecond, Burst: 3}
	k := []byte("198.51.100.7")
	for i := 0; i < 3; i++ {
		if ok, _ := s.Take(k, l, t0); !ok {
			t.Fatalf("request %d of the burst refused", i)
		}
	}
	ok, retry := s.Take(k, l, t0)
	if ok || retry != 100*time.Millisecond {
		t.Fatalf("4th request: ok=%v retry=%v", ok, retry)
	}
	if ok, retry := s.Take(k, l, t0.Add(40*time.Millisecond)); ok || retry != 60*time.Millisecond {
		t.Fatalf("after 40ms: ok=%v retry=%v", ok, retry)
	}
	if ok, _ := s.Take(k, l, t0.Add(100*time.Millisecond)); !ok {
		t.Fatal("token not refilled after one interval")
	}
	if ok, _ := s.Take([]byte("other"), l, t0); !ok {
		t.Fatal("keys share a bucket")
	}
	// Long idle: the bucket is full again, but never more than burst.
	later := t0.Add(time.Hour)
	n := 0
	for {
		if ok, _ := s.Take(k, l, later); !ok {
			break
		}
		n++
	}
	if n != 3 {
		t.Errorf("after idling, %d requests passed, want burst 3", n)
	}
	st := s.Stats()
	if st.Keys != 2 || st.Limited != 3 || st.Allowed != 8 {
		t.Errorf("stats %+v", st)
	}
}

func TestBoundedMemoryAndSweep(t *testing.T) {
	s := NewStore(numShards * 2) // two buckets per shard
	l := Limit{Interval: time.Second, Burst: 1}
	for i := 0; i < 10000; i++ {
		s.Take([]byte(strconv.Itoa(i)), l, t0)
	}
	st := s.Stats()
	if st.Keys > numShards*2 {
		t.Fatalf("%d buckets kept, limit %d", st.Keys, numShards*2)
	}
	if st.Evictions == 0 {
		t.Error("evictions of non-full buckets not counted")
	}
	if n := s.Sweep(t0.Add(time.Second)); n != st.Keys || s.Stats().Keys != 0 {
		t.Errorf("sweep dropped %d of %d, %d left", n, st.Keys, s.Stats().Keys)
	}
	// Sweeping keeps buckets that are not full.
	s.Take([]byte("a"), l, t0)
	if s.Sweep(t0.Add(500*time.Millisecond)) != 0 {
		t.Error("sweep dropped a bucket still refilling")
	}
}

func TestRegistryKeepsStateAcrossCompiles(t *testing.T) {
	reg := NewRegistry(0)
	rl := &v1.RateLimiter{Spec: v1.RateLimiterSpec{Rate: 1, Burst: 1, Per: "minute"}}
	rl.Metadata.Namespace, rl.Metadata.Name = "retail", "per-client"
	a, err := Compile(rl, reg)
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := a.Take([]byte("k"), t0); !ok {
		t.Fatal("first request refused")
	}
	b, err := Compile(rl, reg) // a configuration push
	if err != nil {
		t.Fatal(err)
	}
	if ok, retry := b.Take([]byte("k"), t0.Add(time.Second)); ok || retry != 59*time.Second {
		t.Fatalf("bucket reset by recompilation: ok=%v retry=%v", ok, retry)
	}
	if b.Key.Type != v1.RateKeyClientIP {
		t.Errorf("default key %+v", b.Key)
	}
	preg := prometheus.NewPedanticRegistry()
	preg.MustRegister(reg)
	if mfs, err := preg.Gather(); err != nil || len(mfs) != 3 {
		t.Errorf("gathered %d families, %v", len(mfs), err)
	}
	reg.Retain(map[string]bool{})
	c, _ := Compile(rl, reg)
	if ok, _ := c.Take([]byte("k"), t0.Add(time.Second)); !ok {
		t.Error("removed limiter kept its state")
	}
	bad := &v1.RateLimiter{Spec: v1.RateLimiterSpec{Rate: 5, Key: v1.RateLimitKey{Type: "header"}}}
	if _, err := Compile(bad, reg); err == nil {
		t.Error("header key without name accepted")
	}
}

func TestConcurrentTakes(t *testing.T) {
	s := NewStore(0)
	l := Limit{Interval: time.Hour, Burst: 100}
	var wg sync.WaitGroup
	var mu sync.Mutex
	passed := 0
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				if ok, _ := s.Take([]byte("shared"), l, t0); ok {
					mu.Lock()
					passed++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if passed != 100 {
		t.Errorf("%d passed, want exactly the burst of 100", passed)
	}
}

func TestTakeDoesNotAllocate(t *testing.T) {
	s := NewStore(0)
	l := Limit{Interval: time.Millisecond, Burst: 10}
	k := []byte("203.0.113.9")
	s.Take(k, l, t0)
	if n := testing.AllocsPerRun(1000, func() { s.Take(k, l, t0) }); n != 0 {
		t.Errorf("%.1f allocations per take", n)
	}
}

func BenchmarkTake(b *testing.B) {
	s := NewStore(0)
	l := Limit{Interval: time.Microsecond, Burst: 1000}
	keys := make([][]byte, 1024)
	for i := range keys {
		keys[i] = []byte("10.0." + strconv.Itoa(i/256) + "." + strconv.Itoa(i%256))
	}
	now := time.Now()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		s.Take(keys[i&1023], l, now)
		i++
	}
}
