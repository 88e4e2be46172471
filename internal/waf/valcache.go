package waf

import (
	"hash/maphash"
	"strings"
	"sync/atomic"

	"github.com/corazawaf/coraza/v3/types"
)

// The verdict cache: what the checks proved about a value, kept across
// transactions.
//
// Whether a link (its transformations, then its operator) can match a
// value depends on nothing but the value when the operator's argument is
// a constant (no macro, no chain value): transformations and operators are
// pure functions. Most of a request's values recur from one request to
// the next (the User-Agent, Accept, Host and other header values, header
// names, paths, common argument names and values), and each is checked
// against a few hundred links per request. The cache remembers, per value,
// the links that were proved not to match it; a later transaction holding
// the same value skips the transformations and operators of those links.
//
// Only "certainly no match" is remembered, only from a computation, and
// an entry is found by its full content (the hash picks the set, the
// string decides): a hit says what computing again would say. "May
// match" is never cached, so a request that falls back to Coraza does so
// at the same rule as without the cache. TestValCacheDifferential holds
// every outcome and fallback point to the uncached fast path's.
//
// Bounds: valCacheSets sets of two entries per compiled configuration,
// values up to valCacheMaxLen bytes; a value gets an entry on its second
// sighting (a doorkeeper table of hashes), so values seen once (request
// ids, tokens) cost no allocation and evict nothing. Lookups and updates
// take no lock: entries are immutable but for their bits, which are set
// with atomic ORs; an evicted entry still held by a transaction stays
// valid.

const (
	valCacheSets   = 2048 // sets of 2 entries
	valCacheDoor   = 4096 // doorkeeper slots
	valCacheMaxLen = 512
)

type valCache struct {
	seed  maphash.Seed
	ways  [2 * valCacheSets]atomic.Pointer[valVerdict]
	door  [valCacheDoor]atomic.Uint64
	words int // bit words per entry
}

// valVerdict is one value's entry: bit i of no is set once link i (fpLink.vc)
// was proved not to match the value.
type valVerdict struct {
	s  string
	no []atomic.Uint64
}

func newValCache(links int) *valCache {
	if links == 0 {
		return nil
	}
	return &valCache{seed: maphash.MakeSeed(), words: (links + 63) / 64}
}

// lookup returns s's entry, creating it on the second sighting; nil: none
// (yet), or s is too long to keep.
func (c *valCache) lookup(s string) *valVerdict {
	if len(s) > valCacheMaxLen {
		return nil
	}
	h := maphash.String(c.seed, s)
	i := int(h&(valCacheSets-1)) * 2
	a, b := c.ways[i].Load(), c.ways[i+1].Load()
	if a != nil && a.s == s {
		return a
	}
	if b != nil && b.s == s {
		return b
	}
	d := &c.door[(h>>32)&(valCacheDoor-1)]
	if k := h | 1; d.Load() != k {
		d.Store(k)
		return nil
	}
	v := &valVerdict{s: strings.Clone(s), no: make([]atomic.Uint64, c.words)}
	switch {
	case a == nil:
	case b == nil:
		i++
	default:
		i += int(h>>31) & 1
	}
	c.ways[i].Store(v)
	return v
}

// known reports whether link bit is proved not to match the value.
func (v *valVerdict) known(bit int32) bool {
	return v != nil && v.no[bit>>6].Load()&(1<<(bit&63)) != 0
}

// prove records that link bit does not match the value.
func (v *valVerdict) prove(bit int32) {
	if v == nil {
		return
	}
	w, m := &v.no[bit>>6], uint64(1)<<(bit&63)
	if w.Load()&m == 0 {
		w.Or(m)
	}
}

// verdicts returns the cache entries of a slot's values (parallel to ms),
// looked up once per slot for as long as the slot's values hold; nil when
// the transaction uses no cache.
func (e *fpEval) verdicts(slot int, ms []types.MatchData) []*valVerdict {
	if e.vc == nil {
		return nil
	}
	if e.vvHave[slot] {
		return e.vv[slot]
	}
	from := len(e.vvBuf)
	for _, md := range ms {
		e.vvBuf = append(e.vvBuf, e.vc.lookup(md.Value()))
	}
	out := e.vvBuf[from:len(e.vvBuf):len(e.vvBuf)]
	e.vv[slot], e.vvHave[slot] = out, true
	return out
}

// allKnown reports whether every value's entry proves link bit no match.
func allKnown(vvs []*valVerdict, bit int32) bool {
	for _, v := range vvs {
		if !v.known(bit) {
			return false
		}
	}
	return true
}
