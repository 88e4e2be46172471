package config

import "bytes"

// Request is the part of a request that routing looks at. Both HTTP engines
// provide it without copying.
type Request interface {
	Method() []byte
	// Path is the normalized, decoded path without query.
	Path() []byte
	// Header returns the first value of a header and whether it is present.
	Header(name string) ([]byte, bool)
	// Query returns the first value of a query parameter and whether it is
	// present.
	Query(name string) ([]byte, bool)
}

// VHost returns the virtual host serving a Host header value (with or
// without port), or nil.
func (l *HTTPListener) VHost(host []byte) *VHost {
	host = stripPort(host)
	var buf [256]byte
	if len(host) <= len(buf) {
		b := buf[:len(host)]
		for i, c := range host {
			if c >= 'A' && c <= 'Z' {
				c += 'a' - 'A'
			}
			b[i] = c
		}
		if len(b) > 0 && b[len(b)-1] == '.' {
			b = b[:len(b)-1]
		}
		if vh := l.exact[string(b)]; vh != nil {
			return vh
		}
		for _, w := range l.wildcard {
			if len(b) > len(w.suffix) && string(b[len(b)-len(w.suffix):]) == w.suffix {
				return w.vh
			}
		}
	}
	return l.any
}

// VHosts returns every virtual host of the listener (for admin output).
func (l *HTTPListener) VHosts() []*VHost {
	seen := map[*VHost]bool{}
	var out []*VHost
	add := func(v *VHost) {
		if v != nil && !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	for _, v := range l.exact {
		add(v)
	}
	for _, w := range l.wildcard {
		add(w.vh)
	}
	add(l.any)
	return out
}

func stripPort(h []byte) []byte {
	if len(h) > 0 && h[0] == '[' {
		if i := bytes.IndexByte(h, ']'); i > 0 {
			return h[1:i]
		}
		return h
	}
	if i := bytes.LastIndexByte(h, ':'); i >= 0 {
		return h[:i]
	}
	return h
}

// Match returns the first route matching r, the default route, or nil.
func (vh *VHost) Match(r Request) *Route {
	for _, rt := range vh.Routes {
		if rt.Matches(r) {
			return rt
		}
	}
	return vh.Default
}

// Matches reports whether r satisfies every condition of the route.
func (rt *Route) Matches(r Request) bool {
	p := r.Path()
	switch rt.PathKind {
	case PathExact:
		if string(p) != rt.PathValue {
			return false
		}
	case PathPrefix:
		if !pathHasPrefix(p, rt.PathValue) {
			return false
		}
	case PathRegex:
		if !rt.PathRe.Match(p) {
			return false
		}
	}
	if len(rt.Methods) > 0 {
		m := r.Method()
		ok := false
		for _, want := range rt.Methods {
			if string(m) == want {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	for i := range rt.Headers {
		v, present := r.Header(rt.Headers[i].Name)
		if !rt.Headers[i].matches(v, present) {
			return false
		}
	}
	for i := range rt.Query {
		v, present := r.Query(rt.Query[i].Name)
		if !rt.Query[i].matches(v, present) {
			return false
		}
	}
	return true
}

// pathHasPrefix matches prefix on segment boundaries when the prefix does
// not end in "/": "/api" matches "/api", "/api/x" but not "/apix".
func pathHasPrefix(p []byte, prefix string) bool {
	if len(p) < len(prefix) || string(p[:len(prefix)]) != prefix {
		return false
	}
	if len(p) == len(prefix) || prefix == "" || prefix[len(prefix)-1] == '/' {
		return true
	}
	return p[len(prefix)] == '/'
}

func (m *ValueMatch) matches(v []byte, present bool) bool {
	var ok bool
	switch {
	case m.Present:
		ok = present
	case !present:
		ok = false
	case m.Exact != "":
		ok = string(v) == m.Exact
	case m.Prefix != "":
		ok = len(v) >= len(m.Prefix) && string(v[:len(m.Prefix)]) == m.Prefix
	case m.Regex != nil:
		ok = m.Regex.Match(v)
	}
	return ok != m.Invert
}
