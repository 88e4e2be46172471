package waf

import (
	"fmt"
	"math/bits"
	"slices"
	"strings"
	"sync"
	"testing"

	v1 "github.com/meridian-platform/meridian/api/v1"
)

// withoutValCache returns the same WAF (same compiled fast path) whose
// transactions do not use the verdict cache.
func (w *WAF) withoutValCache() *WAF {
	c := *w
	c.noValCache = true
	return &c
}

type vcOutcome struct {
	diffOutcome
	fellBackAt int
}

func vcRun(w *WAF, r fpRequest) vcOutcome {
	tx, v, hits := runTx(w, r)
	o := vcOutcome{diffOutcome: diffOutcome{hits: IDs(hits), fast: tx.Fast()}, fellBackAt: tx.FellBackAt()}
	if v != nil {
		o.verdict = fmt.Sprintf("%d by %d", v.Status, v.RuleID)
	}
	return o
}

// TestValCacheDifferential: with the verdict cache, every request has the
// outcome it has without it, and falls back to Coraza at the same rule,
// on its first sighting (no entry), the second (entries made, bits set)
// and the third (bits read), with the cache warmed by all the requests
// before it. A CRS attack request after benign ones with the same header
// values must still be found.
func TestValCacheDifferential(t *testing.T) {
	w := mustWAF(t, v1.AppFirewallSpec{})
	if w.fp == nil || w.fp.vc == nil {
		t.Fatalf("no verdict cache (fast path: %s)", w.fpWhy)
	}
	ref := w.withoutValCache()
	reqs := benignRequests()
	crs := crsRequests(t)
	step := diffEvery(5)
	for i := 0; i < len(crs); i += step {
		reqs = append(reqs, crs[i])
	}
	// Benign requests again after the attacks: entries made by attack
	// requests' values must not change benign outcomes either.
	reqs = append(reqs, benignRequests()[:40]...)
	fast := 0
	for _, r := range reqs {
		want := vcRun(ref, r)
		for round := range 3 {
			got := vcRun(w, r)
			if got.verdict != want.verdict || !slices.Equal(got.hits, want.hits) || got.fast != want.fast || got.fellBackAt != want.fellBackAt {
				t.Errorf("%s round %d: with the cache %q %v fast=%v fell back at %d; without %q %v fast=%v at %d",
					r.name, round, got.verdict, got.hits, got.fast, got.fellBackAt, want.verdict, want.hits, want.fast, want.fellBackAt)
			}
			if got.fast {
				fast++
			}
		}
	}
	// The benign GET's User-Agent was proved not to match links.
	ua := ""
	for _, h := range benignGET().headers {
		if h[0] == "User-Agent" {
			ua = h[1]
		}
	}
	v := w.fp.vc.lookup(ua)
	n := 0
	if v != nil {
		for i := range v.no {
			n += bits.OnesCount64(v.no[i].Load())
		}
	}
	if n == 0 {
		t.Errorf("the cache holds no proof for the benign User-Agent")
	}
	t.Logf("%d requests × 3, %d decided by the fast path alone; %d links proved not to match the User-Agent", len(reqs), fast, n)
}

func TestValCacheLookup(t *testing.T) {
	c := newValCache(130)
	if c.words != 3 {
		t.Fatalf("words = %d, want 3", c.words)
	}
	if v := c.lookup("alice"); v != nil {
		t.Fatalf("first sighting made an entry")
	}
	v := c.lookup("alice")
	if v == nil || v.s != "alice" {
		t.Fatalf("second sighting: %v", v)
	}
	if v.known(129) {
		t.Fatalf("a new entry knows link 129")
	}
	v.prove(129)
	v.prove(3)
	if !v.known(129) || !v.known(3) || v.known(4) || v.known(128) {
		t.Fatalf("bits after prove(129), prove(3): %v %v %v %v", v.known(129), v.known(3), v.known(4), v.known(128))
	}
	if w := c.lookup("alice"); w != v {
		t.Fatalf("third sighting: another entry")
	}
	// The entry is the content's, not the string's memory.
	b := []byte("xalice")
	if w := c.lookup(string(b[1:])); w != v {
		t.Fatalf("equal content, other memory: another entry")
	}
	long := strings.Repeat("a", valCacheMaxLen+1)
	c.lookup(long)
	if c.lookup(long) != nil {
		t.Fatalf("a value over %d bytes got an entry", valCacheMaxLen)
	}
	var nilV *valVerdict
	if nilV.known(1) {
		t.Fatalf("no entry knows something")
	}
	nilV.prove(1) // no entry: nothing to record, no panic
	// Many values: every entry found is the value's own (evictions
	// replace, never mix).
	for i := range 20000 {
		s := fmt.Sprintf("value-%d", i)
		c.lookup(s)
		if e := c.lookup(s); e != nil && e.s != s {
			t.Fatalf("lookup(%q) gave the entry of %q", s, e.s)
		}
	}
	if allKnown(nil, 1) != true {
		t.Fatalf("allKnown of no values")
	}
}

// TestValCacheConcurrent: lookups and proofs from many goroutines (run
// under -race by make test).
func TestValCacheConcurrent(t *testing.T) {
	c := newValCache(256)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				s := fmt.Sprintf("v%d", i%300)
				if v := c.lookup(s); v != nil {
					if v.s != s {
						t.Errorf("lookup(%q) gave %q", s, v.s)
						return
					}
					v.prove(int32((i + g) % 256))
					_ = v.known(int32(i % 256))
				}
			}
		}()
	}
	wg.Wait()
}
