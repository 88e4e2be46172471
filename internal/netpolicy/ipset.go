package netpolicy

import (
	"encoding/binary"
	"net/netip"
	"slices"
)

// ipSet is a set of addresses held as sorted, disjoint, non-adjacent
// ranges, one table per family, searched by bisection.
type ipSet struct {
	v4 []range32
	v6 []range128
}

type range32 struct{ lo, hi uint32 }

type u128 struct{ hi, lo uint64 }

func (a u128) less(b u128) bool { return a.hi < b.hi || a.hi == b.hi && a.lo < b.lo }

// next returns a+1 and false, or 0 and true on overflow.
func (a u128) next() (u128, bool) {
	lo := a.lo + 1
	hi := a.hi
	if lo == 0 {
		hi++
		if hi == 0 {
			return u128{}, true
		}
	}
	return u128{hi, lo}, false
}

type range128 struct{ lo, hi u128 }

// newIPSet builds the set of the given prefixes (IPv4-mapped IPv6 prefixes
// must already be unmapped).
func newIPSet(prefixes []netip.Prefix) ipSet {
	var s ipSet
	for _, p := range prefixes {
		p = p.Masked()
		if p.Addr().Is4() {
			b := p.Addr().As4()
			lo := binary.BigEndian.Uint32(b[:])
			span := uint32(0)
			if p.Bits() < 32 {
				span = ^uint32(0) >> p.Bits()
			}
			s.v4 = append(s.v4, range32{lo, lo | span})
			continue
		}
		b := p.Addr().As16()
		lo := u128{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
		hi := lo
		switch bits := p.Bits(); {
		case bits == 0:
			hi = u128{^uint64(0), ^uint64(0)}
		case bits < 64:
			hi = u128{lo.hi | ^uint64(0)>>bits, ^uint64(0)}
		case bits < 128:
			hi = u128{lo.hi, lo.lo | ^uint64(0)>>(bits-64)}
		}
		s.v6 = append(s.v6, range128{lo, hi})
	}
	slices.SortFunc(s.v4, func(a, b range32) int {
		switch {
		case a.lo < b.lo:
			return -1
		case a.lo > b.lo:
			return 1
		}
		return 0
	})
	out4 := s.v4[:0]
	for _, r := range s.v4 {
		if n := len(out4); n > 0 && (out4[n-1].hi == ^uint32(0) || r.lo <= out4[n-1].hi+1) {
			out4[n-1].hi = max(out4[n-1].hi, r.hi)
			continue
		}
		out4 = append(out4, r)
	}
	s.v4 = slices.Clip(out4)
	slices.SortFunc(s.v6, func(a, b range128) int {
		switch {
		case a.lo.less(b.lo):
			return -1
		case b.lo.less(a.lo):
			return 1
		}
		return 0
	})
	out6 := s.v6[:0]
	for _, r := range s.v6 {
		if n := len(out6); n > 0 {
			last := &out6[n-1]
			nx, overflow := last.hi.next()
			if overflow || !nx.less(r.lo) {
				if last.hi.less(r.hi) {
					last.hi = r.hi
				}
				continue
			}
		}
		out6 = append(out6, r)
	}
	s.v6 = slices.Clip(out6)
	return s
}

// empty reports whether the set holds no address.
func (s *ipSet) empty() bool { return len(s.v4) == 0 && len(s.v6) == 0 }

// contains reports whether a (already unmapped) is in the set.
func (s *ipSet) contains(a netip.Addr) bool {
	if a.Is4() {
		b := a.As4()
		x := binary.BigEndian.Uint32(b[:])
		rs := s.v4
		// Find the first range starting after x; the one before it is
		// the only candidate.
		lo, hi := 0, len(rs)
		for lo < hi {
			m := int(uint(lo+hi) >> 1)
			if rs[m].lo <= x {
				lo = m + 1
			} else {
				hi = m
			}
		}
		return lo > 0 && x <= rs[lo-1].hi
	}
	if !a.Is6() {
		return false
	}
	b := a.As16()
	x := u128{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
	rs := s.v6
	lo, hi := 0, len(rs)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if !x.less(rs[m].lo) {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo > 0 && !rs[lo-1].hi.less(x)
}
