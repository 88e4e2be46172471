package waf

// pmDFA answers whether any of a set of phrases occurs in a value, ASCII
// case-insensitively, as the fast path's @pm/@pmFromFile checks ask: an
// Aho-Corasick automaton made a full DFA over the byte classes of the
// phrases, so a value is one table step per byte and no allocation (the
// aho-corasick package's iterator allocates several objects per call).
type pmDFA struct {
	class  [256]uint8 // input byte (ASCII case folded) -> class; 0: in no phrase
	n      int32      // classes
	next   []int32    // state*n + class -> state
	output []bool     // a phrase ends in the state
}

// pmMaxCells bounds the transition table (states × classes); larger sets
// keep the aho-corasick package.
const pmMaxCells = 1 << 22

func foldASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// newPMDFA builds the automaton of the phrases; nil when a phrase is empty
// or the table would be too large.
func newPMDFA(phrases []string) *pmDFA {
	d := &pmDFA{n: 1}
	for _, p := range phrases {
		if p == "" {
			return nil
		}
		for i := 0; i < len(p); i++ {
			c := foldASCII(p[i])
			if d.class[c] == 0 {
				d.class[c] = uint8(d.n)
				d.n++
			}
		}
	}
	for c := 'A'; c <= 'Z'; c++ {
		d.class[c] = d.class[c+'a'-'A']
	}
	// The trie: goto edges in the table, -1 for none yet.
	n := int(d.n)
	d.next = make([]int32, n)
	d.output = []bool{false}
	for i := range d.next {
		d.next[i] = -1
	}
	for _, p := range phrases {
		s := int32(0)
		for i := 0; i < len(p); i++ {
			k := int(s)*n + int(d.class[p[i]])
			if d.next[k] < 0 {
				if len(d.output)*n >= pmMaxCells {
					return nil
				}
				d.next[k] = int32(len(d.output))
				d.output = append(d.output, false)
				for j := 0; j < n; j++ {
					d.next = append(d.next, -1)
				}
			}
			s = d.next[k]
		}
		d.output[s] = true
	}
	// Failure links in breadth-first order turn the trie into a DFA: a
	// missing edge goes where the failure state's edge goes.
	fail := make([]int32, len(d.output))
	queue := make([]int32, 0, len(d.output))
	for c := 0; c < n; c++ {
		if t := d.next[c]; t < 0 {
			d.next[c] = 0
		} else {
			fail[t] = 0
			queue = append(queue, t)
		}
	}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		if d.output[fail[s]] {
			d.output[s] = true
		}
		for c := 0; c < n; c++ {
			k := int(s)*n + c
			f := d.next[int(fail[s])*n+c]
			if t := d.next[k]; t < 0 {
				d.next[k] = f
			} else {
				fail[t] = f
				queue = append(queue, t)
			}
		}
	}
	return d
}

// match reports whether a phrase occurs in v.
func (d *pmDFA) match(v string) bool {
	s, n := int32(0), d.n
	for i := 0; i < len(v); i++ {
		s = d.next[s*n+int32(d.class[v[i]])]
		if d.output[s] {
			return true
		}
	}
	return false
}
