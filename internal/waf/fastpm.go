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
	// outs[state]: the indexes of the phrases that end in the state (only
	// for scanners, newLitScanner).
	outs [][]int32
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
func newPMDFA(phrases []string) *pmDFA { return buildPM(phrases, false) }

// newLitScanner builds the automaton of the phrases that also reports which
// of them occur (scan).
func newLitScanner(phrases []string) *pmDFA { return buildPM(phrases, true) }

func buildPM(phrases []string, outs bool) *pmDFA {
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
	if outs {
		d.outs = [][]int32{nil}
	}
	for pi, p := range phrases {
		s := int32(0)
		for i := 0; i < len(p); i++ {
			k := int(s)*n + int(d.class[p[i]])
			if d.next[k] < 0 {
				if len(d.output)*n >= pmMaxCells {
					return nil
				}
				d.next[k] = int32(len(d.output))
				d.output = append(d.output, false)
				if outs {
					d.outs = append(d.outs, nil)
				}
				for j := 0; j < n; j++ {
					d.next = append(d.next, -1)
				}
			}
			s = d.next[k]
		}
		d.output[s] = true
		if outs {
			d.outs[s] = append(d.outs[s], int32(pi))
		}
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
			if outs {
				d.outs[s] = append(d.outs[s][:len(d.outs[s]):len(d.outs[s])], d.outs[fail[s]]...)
			}
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

// scan sets in bits the index of every phrase that occurs in v.
func (d *pmDFA) scan(v string, bits []uint64) {
	s, n := int32(0), d.n
	for i := 0; i < len(v); i++ {
		s = d.next[s*n+int32(d.class[v[i]])]
		if d.output[s] {
			for _, id := range d.outs[s] {
				bits[id>>6] |= 1 << (id & 63)
			}
		}
	}
}

// The combined literal scan. rxlit gives many @rx operators a set of
// literals one of which every match contains. Rather than running each
// operator's automaton over a value, the fast path scans each transformed
// value once for the literals of all of them (ASCII case ignored: a
// superset for case-sensitive literals) and runs an operator only when one
// of its literals occurs.

// litScanMin is the length from which a value is scanned; litShareMin the
// length from which equal values share a scan.
const (
	litScanMin  = 1
	litShareMin = 1
)

// litPrefilter is an @rx operator's literal requirement in the scan.
type litPrefilter struct {
	ids  []int32
	fold bool // case-insensitive literals: a non-ASCII value needs the operator (Unicode folds)
}

// buildLitScan numbers the literals of the @rx operators of the checks and
// builds the scanner.
func (p *fpProgram) buildLitScan() {
	ids := map[string]int32{}
	var lits []string
	for _, flows := range p.flows {
		for _, f := range flows {
			if f.check == nil {
				continue
			}
			for _, l := range f.check.links {
				o := &l.op
				if o.kind != "rx" || o.rx == nil || o.rx.pre == nil || o.dyn || o.mac != nil || o.lits != nil {
					continue
				}
				lp := &litPrefilter{fold: o.rx.pre.Fold}
				for _, lit := range o.rx.pre.Lits {
					k := lowerASCII(lit)
					id, ok := ids[k]
					if !ok {
						id = int32(len(lits))
						ids[k] = id
						lits = append(lits, k)
					}
					lp.ids = append(lp.ids, id)
				}
				o.lits = lp
			}
		}
	}
	if len(lits) == 0 {
		return
	}
	p.litScan = newLitScanner(lits)
	p.litWords = (len(lits) + 63) / 64
	if p.litScan == nil { // too large: the operators decide alone
		for _, flows := range p.flows {
			for _, f := range flows {
				if f.check != nil {
					for _, l := range f.check.links {
						l.op.lits = nil
					}
				}
			}
		}
	}
}

func lowerASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		b[i] = foldASCII(c)
	}
	return string(b)
}

// litsAbsent reports whether none of the operator's literals occurs in
// the value (info index k): the operator certainly does not match.
func (e *fpEval) litsAbsent(k int32, lp *litPrefilter) bool {
	vi := &e.infos.ents[k-1]
	if lp.fold && !vi.ascii {
		return false
	}
	bits := e.litsOf(k)
	for _, id := range lp.ids {
		if bits[id>>6]&(1<<(id&63)) != 0 {
			return false
		}
	}
	return true
}

func isASCIIString(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
