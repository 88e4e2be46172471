package rxlit

import (
	"regexp/syntax"
	"strings"
	"unicode/utf8"
)

// Set is a requirement "the input contains one of Lits". With Fold,
// the literals are lower-case ASCII and compared ignoring ASCII case.
type Set struct {
	Lits []string
	Fold bool
}

const maxLiterals = 32

// Required returns literals one of which every match of re
// contains, or nil when there is no such (useful) set.
func Required(re *syntax.Regexp) *Set {
	switch re.Op {
	case syntax.OpLiteral:
		s := string(re.Rune)
		if s == "" || strings.ContainsRune(s, utf8.RuneError) {
			return nil
		}
		if re.Flags&syntax.FoldCase != 0 {
			for _, r := range re.Rune {
				if r >= utf8.RuneSelf {
					return nil // Unicode case folding: not handled
				}
			}
			return &Set{Lits: []string{strings.ToLower(s)}, Fold: true}
		}
		return &Set{Lits: []string{s}}
	case syntax.OpCapture:
		return Required(re.Sub[0])
	case syntax.OpPlus:
		return Required(re.Sub[0])
	case syntax.OpRepeat:
		if re.Min >= 1 {
			return Required(re.Sub[0])
		}
		return nil
	case syntax.OpConcat:
		// Every match contains a match of each part: any part's
		// requirement is the whole's; keep the most selective.
		var best *Set
		for _, sub := range re.Sub {
			if s := Required(sub); s != nil && (best == nil || s.better(best)) {
				best = s
			}
		}
		return best
	case syntax.OpAlternate:
		out := &Set{}
		for i, sub := range re.Sub {
			s := Required(sub)
			if s == nil {
				return nil
			}
			if i == 0 {
				out.Fold = s.Fold
			} else if s.Fold != out.Fold {
				// Mixed: compare everything ignoring case (still sound).
				out.Fold = true
			}
			out.Lits = append(out.Lits, s.Lits...)
		}
		if out.Fold {
			for i, l := range out.Lits {
				out.Lits[i] = strings.ToLower(l)
				if !isASCII(l) {
					return nil
				}
			}
		}
		if len(out.Lits) > maxLiterals {
			return nil
		}
		return out
	}
	// Character classes, any char, empty matches, anchors, stars and
	// quests require no literal.
	return nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// better prefers sets whose shortest literal is longer (fewer chance
// hits), then smaller sets.
func (s *Set) better(o *Set) bool {
	a, b := s.minLen(), o.minLen()
	if a != b {
		return a > b
	}
	return len(s.Lits) < len(o.Lits)
}

func (s *Set) minLen() int {
	m := -1
	for _, l := range s.Lits {
		if m < 0 || len(l) < m {
			m = len(l)
		}
	}
	return m
}

// MayMatch reports whether v contains one of the literals. It is false
// only when no match is possible.
func (s *Set) MayMatch(v string) bool {
	if !s.Fold {
		for _, l := range s.Lits {
			if strings.Contains(v, l) {
				return true
			}
		}
		return false
	}
	if !isASCII(v) {
		return true // Unicode folds (e.g. K, ſ) need the real matcher
	}
	for _, l := range s.Lits {
		if containsFold(v, l) {
			return true
		}
	}
	return false
}

// containsFold reports whether v contains the lower-case ASCII literal l,
// ignoring ASCII case.
func containsFold(v, l string) bool {
	n := len(l)
	if n == 0 {
		return true
	}
	first := l[0]
	upper := first
	if first >= 'a' && first <= 'z' {
		upper = first - 'a' + 'A'
	}
	for i := 0; i+n <= len(v); i++ {
		c := v[i]
		if c != first && c != upper {
			continue
		}
		j := 1
		for ; j < n; j++ {
			c := v[i+j]
			if c >= 'A' && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c != l[j] {
				break
			}
		}
		if j == n {
			return true
		}
	}
	return false
}

// MayMatchBytes is MayMatch for a byte slice (no allocation).
func (s *Set) MayMatchBytes(v []byte) bool {
	if !s.Fold {
		for _, l := range s.Lits {
			for i := 0; i+len(l) <= len(v); i++ {
				if string(v[i:i+len(l)]) == l {
					return true
				}
			}
		}
		return false
	}
	for _, c := range v {
		if c >= utf8.RuneSelf {
			return true
		}
	}
	for _, l := range s.Lits {
		if containsFoldBytes(v, l) {
			return true
		}
	}
	return false
}

func containsFoldBytes(v []byte, l string) bool {
	n := len(l)
	for i := 0; i+n <= len(v); i++ {
		j := 0
		for ; j < n; j++ {
			c := v[i+j]
			if c >= 'A' && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c != l[j] {
				break
			}
		}
		if j == n {
			return true
		}
	}
	return false
}
