package auth

import (
	"sync"
	"time"
)

// Throttle slows down guessing: after the n-th consecutive failure of a key
// (say "acme/alice" and, separately, the client's IP) the key must wait
// base·2^(n-1), capped at max, before its next attempt. A key's failures
// are forgotten after a success or after 2·max without failures. Memory is
// bounded: at most capacity keys are tracked; when full, forgotten keys are
// dropped first, then arbitrary ones. A Throttle is safe for concurrent use.
type Throttle struct {
	base, max time.Duration
	capacity  int

	mu sync.Mutex
	m  map[string]*throttleEntry
}

type throttleEntry struct {
	failures int
	last     time.Time // time of the last failure
	until    time.Time // no attempt before this
}

// NewThrottle returns a Throttle; non-positive arguments get defaults
// (base 250 ms, max 30 s, capacity 10,000).
func NewThrottle(base, max time.Duration, capacity int) *Throttle {
	if base <= 0 {
		base = 250 * time.Millisecond
	}
	if max < base {
		max = 30 * time.Second
	}
	if capacity <= 0 {
		capacity = 10000
	}
	return &Throttle{base: base, max: max, capacity: capacity, m: map[string]*throttleEntry{}}
}

func (t *Throttle) expired(e *throttleEntry, now time.Time) bool {
	return now.Sub(e.last) > 2*t.max
}

// Wait returns how long key must still wait before its next attempt (0:
// it may go now). A caller answers 429 with Retry-After, or sleeps.
func (t *Throttle) Wait(key string, now time.Time) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.m[key]
	if !ok || t.expired(e, now) || !now.Before(e.until) {
		return 0
	}
	return e.until.Sub(now)
}

// Failure records a failed attempt of key and returns the delay now
// imposed on it.
func (t *Throttle) Failure(key string, now time.Time) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.m[key]
	if ok && t.expired(e, now) {
		e.failures = 0
	}
	if !ok {
		if len(t.m) >= t.capacity {
			t.evict(now)
		}
		e = &throttleEntry{}
		t.m[key] = e
	}
	e.failures++
	d := t.base
	for i := 1; i < e.failures && d < t.max; i++ {
		d *= 2
	}
	d = min(d, t.max)
	e.last, e.until = now, now.Add(d)
	return d
}

// Success forgets key's failures.
func (t *Throttle) Success(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.m, key)
}

// Len returns the number of keys tracked.
func (t *Throttle) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.m)
}

func (t *Throttle) evict(now time.Time) {
	for k, e := range t.m {
		if t.expired(e, now) {
			delete(t.m, k)
		}
	}
	for k := range t.m {
		if len(t.m) < t.capacity {
			return
		}
		delete(t.m, k)
	}
}
