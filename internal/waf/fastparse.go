package waf

import (
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
)

// This file reads the SecLang text Meridian loads into Coraza (the rendered
// directives and the CRS files they include) into a model of each rule:
// enough for the no-match fast path (fastpath.go) to decide which rules
// are bookkeeping (Coraza runs them in a lean instance) and which are
// detection rules (Meridian proves they cannot match, or Coraza runs them).

// slDirective is one directive of the configuration, in load order.
type slDirective struct {
	name string   // SecRule, SecAction, SecMarker, ...
	args []string // unquoted arguments
	raw  string   // the directive's text as loaded (continuations kept)
	dir  string   // directory of the file it came from (for data files)
}

type slAction struct{ key, val string }

type slVar struct {
	name    string // upper case
	key     string // "" : whole collection
	keyRx   bool   // key is /regex/
	count   bool   // &VAR
	exclude bool   // !VAR:key
}

// slRule is one SecRule or SecAction (one link of a chain).
type slRule struct {
	id      int
	phase   int
	vars    []slVar
	op      string // operator name without '@' ("" for SecAction)
	opArg   string
	neg     bool
	tfs     []string // transformations, after the last t:none
	multi   bool     // multiMatch
	actions []slAction
	chain   *slRule // next link
	raw     string  // text of the whole chain (head only)
	dir     string
	marker  string // SecMarker name (op/vars unused)
	isMark  bool
}

func (r *slRule) action(key string) (string, bool) {
	for _, a := range r.actions {
		if a.key == key {
			return a.val, true
		}
	}
	return "", false
}

func (r *slRule) tags() []string {
	var out []string
	for _, a := range r.actions {
		if a.key == "tag" {
			out = append(out, a.val)
		}
	}
	return out
}

// loadDirectives expands the Include directives of text over root.
func loadDirectives(text string, root fs.FS) ([]slDirective, error) {
	var out []slDirective
	if err := appendDirectives(&out, text, ".", root, 0); err != nil {
		return nil, err
	}
	return out, nil
}

func appendDirectives(out *[]slDirective, text, dir string, root fs.FS, depth int) error {
	if depth > 8 {
		return fmt.Errorf("includes nested too deeply")
	}
	lines := strings.Split(text, "\n")
	for i := 0; i < len(lines); i++ {
		line := strings.TrimSpace(lines[i])
		if line == "" || line[0] == '#' {
			continue
		}
		raw := lines[i]
		joined := strings.TrimRight(line, " \t\r")
		for strings.HasSuffix(joined, "\\") && i+1 < len(lines) {
			i++
			raw += "\n" + lines[i]
			joined = joined[:len(joined)-1] + strings.TrimRight(lines[i], " \t\r")
		}
		args, err := splitArgs(joined)
		if err != nil {
			return fmt.Errorf("reading %q: %w", firstLine(joined), err)
		}
		if len(args) == 0 {
			continue
		}
		name := args[0]
		if strings.EqualFold(name, "Include") {
			if len(args) != 2 {
				return fmt.Errorf("reading Include: want one argument")
			}
			matches, err := fs.Glob(root, args[1])
			if err != nil {
				return fmt.Errorf("reading Include %s: %w", args[1], err)
			}
			sort.Strings(matches)
			if len(matches) == 0 {
				return fmt.Errorf("reading Include %s: no file", args[1])
			}
			for _, m := range matches {
				b, err := fs.ReadFile(root, m)
				if err != nil {
					return fmt.Errorf("reading %s: %w", m, err)
				}
				if err := appendDirectives(out, string(b), path.Dir(m), root, depth+1); err != nil {
					return fmt.Errorf("%s: %w", m, err)
				}
			}
			continue
		}
		*out = append(*out, slDirective{name: name, args: args[1:], raw: raw, dir: dir})
	}
	return nil
}

func firstLine(s string) string {
	if len(s) > 60 {
		return s[:60]
	}
	return s
}

// splitArgs splits a directive line into words; double-quoted words lose
// their quotes and the backslash of \" (other escapes are kept).
func splitArgs(s string) ([]string, error) {
	var out []string
	for i := 0; i < len(s); {
		c := s[i]
		if c == ' ' || c == '\t' {
			i++
			continue
		}
		if c == '"' {
			var b strings.Builder
			j := i + 1
			for ; j < len(s); j++ {
				if s[j] == '\\' && j+1 < len(s) && s[j+1] == '"' {
					b.WriteByte('"')
					j++
					continue
				}
				if s[j] == '"' {
					break
				}
				b.WriteByte(s[j])
			}
			if j >= len(s) {
				return nil, fmt.Errorf("unterminated quote")
			}
			out = append(out, b.String())
			i = j + 1
			continue
		}
		j := i
		for j < len(s) && s[j] != ' ' && s[j] != '\t' {
			j++
		}
		out = append(out, s[i:j])
		i = j
	}
	return out, nil
}

// splitActions splits an action list on commas outside single quotes.
func splitActions(s string) []slAction {
	var out []slAction
	inQ := false
	start := 0
	emit := func(part string) {
		part = strings.TrimSpace(part)
		if part == "" {
			return
		}
		k, v, _ := strings.Cut(part, ":")
		k = strings.ToLower(strings.TrimSpace(k))
		v = strings.TrimSpace(v)
		if len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'' {
			v = v[1 : len(v)-1]
		}
		out = append(out, slAction{key: k, val: v})
	}
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '\'':
			inQ = !inQ
		case ',':
			if !inQ {
				emit(s[start:i])
				start = i + 1
			}
		}
	}
	emit(s[start:])
	return out
}

// splitVars parses a SecRule variable list ("ARGS|!ARGS:foo|&TX:x|REQUEST_COOKIES:/re|gex/").
func splitVars(s string) ([]slVar, error) {
	var out []slVar
	for i := 0; i < len(s); {
		v := slVar{}
		for i < len(s) && (s[i] == '!' || s[i] == '&') {
			if s[i] == '!' {
				v.exclude = true
			} else {
				v.count = true
			}
			i++
		}
		j := i
		for j < len(s) && s[j] != ':' && s[j] != '|' {
			j++
		}
		v.name = strings.ToUpper(strings.TrimSpace(s[i:j]))
		if v.name == "" {
			return nil, fmt.Errorf("empty variable in %q", s)
		}
		i = j
		if i < len(s) && s[i] == ':' {
			i++
			// A key regex is /.../ ending at a '|' or at the end.
			k := i + 1
			if i < len(s) && s[i] == '/' {
				for ; k < len(s); k++ {
					if s[k] == '\\' {
						k++
						continue
					}
					if s[k] == '/' && (k+1 == len(s) || s[k+1] == '|') {
						break
					}
				}
			}
			if i < len(s) && s[i] == '/' && k < len(s) && k > i+1 {
				v.key, v.keyRx = s[i+1:k], true
				i = k + 1
			} else {
				k := i
				for k < len(s) && s[k] != '|' {
					k++
				}
				v.key = strings.Trim(s[i:k], "'")
				i = k
			}
		}
		if i < len(s) && s[i] == '|' {
			i++
		}
		out = append(out, v)
	}
	return out, nil
}

// parseRule reads a SecRule's or SecAction's arguments into a link.
func parseRule(d slDirective) (*slRule, error) {
	r := &slRule{raw: d.raw, dir: d.dir}
	var acts string
	switch {
	case strings.EqualFold(d.name, "SecAction"):
		if len(d.args) != 1 {
			return nil, fmt.Errorf("SecAction: want one argument")
		}
		acts = d.args[0]
		r.op = "unconditionalMatch"
	case strings.EqualFold(d.name, "SecRule"):
		if len(d.args) < 2 || len(d.args) > 3 {
			return nil, fmt.Errorf("SecRule: want 2 or 3 arguments, got %d", len(d.args))
		}
		vars, err := splitVars(d.args[0])
		if err != nil {
			return nil, err
		}
		r.vars = vars
		// As Coraza reads it: without '@' the operator is @rx; the name
		// ends at the first space; the argument is trimmed.
		op := d.args[1]
		switch {
		case op == "" || op[0] != '@' && op[0] != '!':
			op = "@rx " + op
		case op == "!":
			op = "!@rx"
		case len(op) > 1 && op[0] == '!' && op[1] != '@':
			op = "!@rx " + op[1:]
		}
		name, arg, _ := strings.Cut(op, " ")
		name = strings.TrimSpace(name)
		switch {
		case strings.HasPrefix(name, "@"):
			name = name[1:]
		case strings.HasPrefix(name, "!@"):
			name, r.neg = name[2:], true
		default:
			return nil, fmt.Errorf("operator %q", d.args[1])
		}
		r.op, r.opArg = name, strings.TrimSpace(arg)
		if len(d.args) == 3 {
			acts = d.args[2]
		}
	default:
		return nil, fmt.Errorf("not a rule: %s", d.name)
	}
	r.actions = splitActions(acts)
	for _, a := range r.actions {
		switch a.key {
		case "id":
			id, err := strconv.Atoi(a.val)
			if err != nil {
				return nil, fmt.Errorf("rule id %q: %w", a.val, err)
			}
			r.id = id
		case "phase":
			switch a.val {
			case "request":
				r.phase = 2
			case "response":
				r.phase = 4
			case "logging":
				r.phase = 5
			default:
				p, err := strconv.Atoi(a.val)
				if err != nil || p < 1 || p > 5 {
					return nil, fmt.Errorf("rule %d: phase %q", r.id, a.val)
				}
				r.phase = p
			}
		case "t":
			if strings.EqualFold(a.val, "none") {
				r.tfs = r.tfs[:0]
			} else {
				r.tfs = append(r.tfs, a.val)
			}
		case "multimatch":
			r.multi = true
		}
	}
	return r, nil
}
