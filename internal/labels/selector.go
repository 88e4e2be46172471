package labels

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Operator is the relation a Requirement checks.
type Operator string

// Operators of label selector requirements.
const (
	Equals       Operator = "="
	NotEquals    Operator = "!="
	In           Operator = "in"
	NotIn        Operator = "notin"
	Exists       Operator = "exists"
	DoesNotExist Operator = "!"
)

// Requirement is one condition of a selector: a key, an operator and the
// values it compares with (one for Equals and NotEquals, one or more for In
// and NotIn, none for Exists and DoesNotExist).
type Requirement struct {
	Key      string
	Operator Operator
	Values   []string
}

// NewRequirement checks and returns a requirement. Values of In and NotIn
// are sorted and de-duplicated.
func NewRequirement(key string, op Operator, values []string) (Requirement, error) {
	if err := ValidateKey(key); err != nil {
		return Requirement{}, err
	}
	switch op {
	case Equals, NotEquals:
		if len(values) != 1 {
			return Requirement{}, fmt.Errorf("label selector on %q: operator %q needs exactly one value, got %d", key, op, len(values))
		}
	case In, NotIn:
		if len(values) == 0 {
			return Requirement{}, fmt.Errorf("label selector on %q: operator %q needs at least one value", key, op)
		}
	case Exists, DoesNotExist:
		if len(values) != 0 {
			return Requirement{}, fmt.Errorf("label selector on %q: operator %q takes no values, got %d", key, op, len(values))
		}
	default:
		return Requirement{}, fmt.Errorf("label selector on %q: unknown operator %q", key, op)
	}
	for _, v := range values {
		if err := ValidateValue(v); err != nil {
			return Requirement{}, fmt.Errorf("label selector on %q: %w", key, err)
		}
	}
	vals := slices.Clone(values)
	if op == In || op == NotIn {
		sort.Strings(vals)
		vals = slices.Compact(vals)
	}
	return Requirement{Key: key, Operator: op, Values: vals}, nil
}

// Matches reports whether the labels satisfy the requirement.
func (r Requirement) Matches(set map[string]string) bool {
	v, ok := set[r.Key]
	switch r.Operator {
	case Equals:
		return ok && v == r.Values[0]
	case NotEquals:
		return !ok || v != r.Values[0]
	case In:
		return ok && slices.Contains(r.Values, v)
	case NotIn:
		return !ok || !slices.Contains(r.Values, v)
	case Exists:
		return ok
	case DoesNotExist:
		return !ok
	}
	return false
}

// String writes the requirement in selector syntax.
func (r Requirement) String() string {
	switch r.Operator {
	case Equals, NotEquals:
		return r.Key + string(r.Operator) + r.Values[0]
	case In, NotIn:
		return r.Key + " " + string(r.Operator) + " (" + strings.Join(r.Values, ",") + ")"
	case Exists:
		return r.Key
	case DoesNotExist:
		return "!" + r.Key
	}
	return ""
}

// Selector is a conjunction of requirements. The zero Selector matches
// every label set. A Selector is immutable.
type Selector struct {
	reqs []Requirement
}

// NewSelector returns a selector of all the given requirements, kept in a
// canonical order.
func NewSelector(reqs ...Requirement) Selector {
	rs := make([]Requirement, len(reqs))
	for i, r := range reqs {
		rs[i] = Requirement{Key: r.Key, Operator: r.Operator, Values: slices.Clone(r.Values)}
	}
	sort.SliceStable(rs, func(i, j int) bool {
		if rs[i].Key != rs[j].Key {
			return rs[i].Key < rs[j].Key
		}
		return rs[i].Operator < rs[j].Operator
	})
	return Selector{reqs: rs}
}

// FromSet returns a selector requiring every key of set to have its value.
func FromSet(set map[string]string) (Selector, error) {
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	reqs := make([]Requirement, 0, len(keys))
	for _, k := range keys {
		r, err := NewRequirement(k, Equals, []string{set[k]})
		if err != nil {
			return Selector{}, err
		}
		reqs = append(reqs, r)
	}
	return NewSelector(reqs...), nil
}

// Matches reports whether the labels satisfy every requirement.
func (s Selector) Matches(set map[string]string) bool {
	for _, r := range s.reqs {
		if !r.Matches(set) {
			return false
		}
	}
	return true
}

// Empty reports whether the selector has no requirements (matches all).
func (s Selector) Empty() bool { return len(s.reqs) == 0 }

// Requirements returns a copy of the selector's requirements.
func (s Selector) Requirements() []Requirement {
	out := make([]Requirement, len(s.reqs))
	for i, r := range s.reqs {
		out[i] = Requirement{Key: r.Key, Operator: r.Operator, Values: slices.Clone(r.Values)}
	}
	return out
}

// Add returns a selector with the requirements of s and more.
func (s Selector) Add(reqs ...Requirement) Selector {
	return NewSelector(append(s.Requirements(), reqs...)...)
}

// String writes the selector in the syntax Parse reads.
func (s Selector) String() string {
	parts := make([]string, len(s.reqs))
	for i, r := range s.reqs {
		parts[i] = r.String()
	}
	return strings.Join(parts, ",")
}
