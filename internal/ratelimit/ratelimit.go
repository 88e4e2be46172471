package ratelimit

import (
	"fmt"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	v1 "github.com/meridian-platform/meridian/api/v1"
)

// A bucket is kept as its theoretical arrival time (GCRA): the moment at
// which the bucket will be full again. A bucket whose TAT has passed is
// full, so dropping it loses nothing; idle buckets are evicted for free.

type bucket struct {
	key        string
	tat        int64 // unix nanoseconds
	prev, next *bucket
}

type shard struct {
	mu   sync.Mutex
	m    map[string]*bucket
	head bucket // sentinel: head.next is the most recently used
	n    int
}

// Store holds the buckets of one RateLimiter. It is safe for concurrent use.
type Store struct {
	shards    []shard
	seed      maphash.Seed
	perShard  int
	evictions atomic.Uint64 // buckets dropped before they were full
	allowed   atomic.Uint64
	limited   atomic.Uint64
}

// DefaultMaxKeys bounds the buckets of one store.
const DefaultMaxKeys = 1 << 20

const numShards = 64

// NewStore returns a store that keeps at most maxKeys buckets (0: default).
func NewStore(maxKeys int) *Store {
	if maxKeys <= 0 {
		maxKeys = DefaultMaxKeys
	}
	per := (maxKeys + numShards - 1) / numShards
	s := &Store{shards: make([]shard, numShards), seed: maphash.MakeSeed(), perShard: per}
	for i := range s.shards {
		sh := &s.shards[i]
		sh.m = make(map[string]*bucket)
		sh.head.next, sh.head.prev = &sh.head, &sh.head
	}
	return s
}

// Stats are a store's counters.
type Stats struct {
	Keys                        int
	Allowed, Limited, Evictions uint64
}

// Stats returns the counters and the number of buckets held.
func (s *Store) Stats() Stats {
	st := Stats{Allowed: s.allowed.Load(), Limited: s.limited.Load(), Evictions: s.evictions.Load()}
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		st.Keys += sh.n
		sh.mu.Unlock()
	}
	return st
}

// Limit is a compiled rate: Burst requests at once, refilled one per
// Interval.
type Limit struct {
	Interval time.Duration
	Burst    int
}

// LimitOf compiles a RateLimiter spec (defaults applied to a copy).
func LimitOf(spec v1.RateLimiterSpec) (Limit, error) {
	r := v1.RateLimiter{Spec: spec}
	r.Default()
	if errs := r.Validate(); len(errs) > 0 {
		return Limit{}, errs
	}
	per := time.Second
	switch r.Spec.Per {
	case v1.RatePerMinute:
		per = time.Minute
	case v1.RatePerHour:
		per = time.Hour
	}
	iv := per / time.Duration(r.Spec.Rate)
	if iv <= 0 {
		iv = 1
	}
	return Limit{Interval: iv, Burst: r.Spec.Burst}, nil
}

// Take takes one token from key's bucket at time now. It returns whether
// the request may pass and, when it may not, how long until a token is
// available. Take does not allocate for a key it has seen.
func (s *Store) Take(key []byte, l Limit, now time.Time) (ok bool, retryAfter time.Duration) {
	sh := &s.shards[maphash.Bytes(s.seed, key)%numShards]
	t := now.UnixNano()
	iv := int64(l.Interval)
	burst := int64(l.Burst) * iv
	sh.mu.Lock()
	b := sh.m[string(key)]
	if b == nil {
		b = s.insert(sh, key, t)
	} else {
		// move to front
		b.prev.next, b.next.prev = b.next, b.prev
		b.next, b.prev = sh.head.next, &sh.head
		sh.head.next.prev = b
		sh.head.next = b
	}
	tat := max(b.tat, t)
	newTat := tat + iv
	if allowAt := newTat - burst; t < allowAt {
		sh.mu.Unlock()
		s.limited.Add(1)
		return false, time.Duration(allowAt - t)
	}
	b.tat = newTat
	sh.mu.Unlock()
	s.allowed.Add(1)
	return true, 0
}

func (s *Store) insert(sh *shard, key []byte, now int64) *bucket {
	var b *bucket
	if sh.n >= s.perShard {
		// Reuse the least recently used bucket.
		b = sh.head.prev
		b.prev.next, b.next.prev = b.next, b.prev
		delete(sh.m, b.key)
		if b.tat > now {
			s.evictions.Add(1)
		}
		*b = bucket{}
	} else {
		b = &bucket{}
		sh.n++
	}
	b.key = string(key)
	sh.m[b.key] = b
	b.next, b.prev = sh.head.next, &sh.head
	sh.head.next.prev = b
	sh.head.next = b
	return b
}

// Sweep drops the buckets that are full again (their TAT has passed):
// this loses nothing and keeps memory proportional to the active keys.
func (s *Store) Sweep(now time.Time) (dropped int) {
	t := now.UnixNano()
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		for b := sh.head.prev; b != &sh.head; {
			prev := b.prev
			if b.tat <= t {
				b.prev.next, b.next.prev = b.next, b.prev
				delete(sh.m, b.key)
				sh.n--
				dropped++
			}
			b = prev
		}
		sh.mu.Unlock()
	}
	return dropped
}

// Registry keeps one store per RateLimiter identity ("namespace/name"), so
// that recompiling a configuration keeps the buckets.
type Registry struct {
	mu      sync.Mutex
	stores  map[string]*Store
	maxKeys int
}

// NewRegistry returns a registry whose stores keep at most maxKeys buckets
// each (0: DefaultMaxKeys).
func NewRegistry(maxKeys int) *Registry {
	return &Registry{stores: map[string]*Store{}, maxKeys: maxKeys}
}

// Store returns the store of a RateLimiter, creating it on first use.
func (r *Registry) Store(id string) *Store {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.stores[id]
	if s == nil {
		s = NewStore(r.maxKeys)
		r.stores[id] = s
	}
	return s
}

// Retain drops the stores of RateLimiters not in ids (call after a
// configuration push).
func (r *Registry) Retain(ids map[string]bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id := range r.stores {
		if !ids[id] {
			delete(r.stores, id)
		}
	}
}

// Sweep sweeps every store.
func (r *Registry) Sweep(now time.Time) int {
	r.mu.Lock()
	stores := make([]*Store, 0, len(r.stores))
	for _, s := range r.stores {
		stores = append(stores, s)
	}
	r.mu.Unlock()
	n := 0
	for _, s := range stores {
		n += s.Sweep(now)
	}
	return n
}

// Limiter is one compiled RateLimiter bound to its store.
type Limiter struct {
	ID    string
	Limit Limit
	Key   v1.RateLimitKey
	Store *Store
}

// Compile compiles a RateLimiter and binds it to its store in reg.
func Compile(rl *v1.RateLimiter, reg *Registry) (*Limiter, error) {
	id := rl.Metadata.Namespace + "/" + rl.Metadata.Name
	l, err := LimitOf(rl.Spec)
	if err != nil {
		return nil, fmt.Errorf("compiling RateLimiter %s: %w", id, err)
	}
	c := *rl
	c.Default()
	return &Limiter{ID: id, Limit: l, Key: c.Spec.Key, Store: reg.Store(id)}, nil
}

// Take takes a token for key now.
func (l *Limiter) Take(key []byte, now time.Time) (bool, time.Duration) {
	return l.Store.Take(key, l.Limit, now)
}
