package labels

import "fmt"

// MaxSelectorLength bounds the selectors Parse accepts.
const MaxSelectorLength = 8192

// ParseError says where a selector does not parse.
type ParseError struct {
	// Input is the selector being parsed.
	Input string
	// Pos is the 0-based byte offset of the fault.
	Pos int
	// Msg says what is wrong.
	Msg string
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("label selector %q: at byte %d: %s", e.Input, e.Pos, e.Msg)
}

type tokKind int

const (
	tokEOF tokKind = iota
	tokIdent
	tokEq    // = or ==
	tokNotEq // !=
	tokNot   // !
	tokOpen  // (
	tokClose // )
	tokComma // ,
)

type token struct {
	kind tokKind
	text string
	pos  int
}

func (t token) describe() string {
	if t.kind == tokEOF {
		return "end of selector"
	}
	return fmt.Sprintf("%q", t.text)
}

type parser struct {
	in   string
	pos  int
	peek *token
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func isSpecial(c byte) bool {
	return isSpace(c) || c == ',' || c == '=' || c == '!' || c == '(' || c == ')'
}

func (p *parser) next() token {
	if p.peek != nil {
		t := *p.peek
		p.peek = nil
		return t
	}
	for p.pos < len(p.in) && isSpace(p.in[p.pos]) {
		p.pos++
	}
	start := p.pos
	if p.pos >= len(p.in) {
		return token{kind: tokEOF, pos: start}
	}
	c := p.in[p.pos]
	switch c {
	case ',':
		p.pos++
		return token{tokComma, ",", start}
	case '(':
		p.pos++
		return token{tokOpen, "(", start}
	case ')':
		p.pos++
		return token{tokClose, ")", start}
	case '=':
		p.pos++
		if p.pos < len(p.in) && p.in[p.pos] == '=' {
			p.pos++
			return token{tokEq, "==", start}
		}
		return token{tokEq, "=", start}
	case '!':
		p.pos++
		if p.pos < len(p.in) && p.in[p.pos] == '=' {
			p.pos++
			return token{tokNotEq, "!=", start}
		}
		return token{tokNot, "!", start}
	}
	for p.pos < len(p.in) && !isSpecial(p.in[p.pos]) {
		p.pos++
	}
	return token{tokIdent, p.in[start:p.pos], start}
}

func (p *parser) lookahead() token {
	if p.peek == nil {
		t := p.next()
		p.peek = &t
	}
	return *p.peek
}

func (p *parser) fail(pos int, format string, args ...any) error {
	return &ParseError{Input: p.in, Pos: pos, Msg: fmt.Sprintf(format, args...)}
}

// Parse reads a label selector: comma-separated requirements, each one of
// `key=value`, `key==value`, `key!=value`, `key in (v1,v2)`,
// `key notin (v1,v2)`, `key` (exists) or `!key` (does not exist). The empty
// string selects everything. Errors are *ParseError naming the byte offset.
func Parse(s string) (Selector, error) {
	if len(s) > MaxSelectorLength {
		return Selector{}, &ParseError{Input: s[:64] + "...", Pos: MaxSelectorLength, Msg: fmt.Sprintf("selector longer than %d bytes", MaxSelectorLength)}
	}
	p := &parser{in: s}
	var reqs []Requirement
	if p.lookahead().kind == tokEOF {
		return Selector{}, nil
	}
	for {
		r, err := p.requirement()
		if err != nil {
			return Selector{}, err
		}
		reqs = append(reqs, r)
		t := p.next()
		switch t.kind {
		case tokEOF:
			return NewSelector(reqs...), nil
		case tokComma:
			continue
		default:
			return Selector{}, p.fail(t.pos, "expected ',' or end of selector, found %s", t.describe())
		}
	}
}

func (p *parser) key() (token, error) {
	t := p.next()
	if t.kind != tokIdent {
		return t, p.fail(t.pos, "expected a label key, found %s", t.describe())
	}
	if err := ValidateKey(t.text); err != nil {
		return t, p.fail(t.pos, "%v", err)
	}
	return t, nil
}

func (p *parser) requirement() (Requirement, error) {
	if p.lookahead().kind == tokNot {
		p.next()
		k, err := p.key()
		if err != nil {
			return Requirement{}, err
		}
		return Requirement{Key: k.text, Operator: DoesNotExist}, nil
	}
	k, err := p.key()
	if err != nil {
		return Requirement{}, err
	}
	op := p.lookahead()
	switch op.kind {
	case tokEOF, tokComma:
		return Requirement{Key: k.text, Operator: Exists}, nil
	case tokEq, tokNotEq:
		p.next()
		v := ""
		if t := p.lookahead(); t.kind == tokIdent {
			p.next()
			if err := ValidateValue(t.text); err != nil {
				return Requirement{}, p.fail(t.pos, "%v", err)
			}
			v = t.text
		}
		o := Equals
		if op.kind == tokNotEq {
			o = NotEquals
		}
		return Requirement{Key: k.text, Operator: o, Values: []string{v}}, nil
	case tokIdent:
		if op.text != string(In) && op.text != string(NotIn) {
			break
		}
		p.next()
		vals, err := p.values()
		if err != nil {
			return Requirement{}, err
		}
		return NewRequirement(k.text, Operator(op.text), vals)
	}
	return Requirement{}, p.fail(op.pos, "expected an operator (=, ==, !=, in, notin), ',' or end of selector after key %q, found %s", k.text, op.describe())
}

// values reads "(v1,v2,...)"; an empty slot is the empty value.
func (p *parser) values() ([]string, error) {
	t := p.next()
	if t.kind != tokOpen {
		return nil, p.fail(t.pos, "expected '(', found %s", t.describe())
	}
	var vals []string
	for {
		v := ""
		t = p.next()
		if t.kind == tokIdent {
			if err := ValidateValue(t.text); err != nil {
				return nil, p.fail(t.pos, "%v", err)
			}
			v = t.text
			t = p.next()
		}
		vals = append(vals, v)
		switch t.kind {
		case tokComma:
			continue
		case tokClose:
			return vals, nil
		default:
			return nil, p.fail(t.pos, "expected a value, ',' or ')', found %s", t.describe())
		}
	}
}
