//go:build linux

package evloop

import "bytes"

// rewriteHead applies rw to the request head b (as appendRequestHead wrote
// it) of the request whose path and query are path and query, and
// returns it.
func (l *loop) rewriteHead(b []byte, rw *Rewrite, path, query []byte) []byte {
	eol := bytes.IndexByte(b, '\n') - 1 // the request line ends at eol (CRLF)
	if eol < 0 || b[eol] != '\r' {
		return b
	}
	sp1 := bytes.IndexByte(b[:eol], ' ')
	sp2 := bytes.LastIndexByte(b[:eol], ' ')
	if sp1 < 0 || sp2 <= sp1 {
		return b
	}
	s := l.scratch[:0]
	s = append(s, b[:sp1+1]...)
	// The target is built again from the path and the query (an empty
	// query loses its "?").
	if rw.Path != "" && path != nil {
		at := len(s)
		s = append(s, rw.Path...)
		if rw.Strip >= 0 && rw.Strip <= len(path) {
			s = append(s, path[rw.Strip:]...)
		}
		if len(s)-at > 1 && s[at] == '/' && s[at+1] == '/' {
			s = append(s[:at], s[at+1:]...)
		}
	} else {
		s = append(s, path...)
	}
	if len(query) > 0 {
		s = append(s, '?')
		s = append(s, query...)
	}
	s = append(s, b[sp2:eol+2]...)
	rest := b[eol+2:]
	var set uint64 // the Set fields already written (the first 64)
	for len(rest) > 0 {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			s = append(s, rest...)
			break
		}
		line := rest[:i+1]
		rest = rest[i+1:]
		colon := bytes.IndexByte(line, ':')
		if colon < 0 {
			// The empty line that ends the head: the fields to add go
			// before it.
			for k, f := range rw.Set {
				if k >= 64 || set&(1<<k) == 0 {
					s = appendField(s, f.Name, f.Value)
				}
			}
			for _, f := range rw.Add {
				s = appendField(s, f.Name, f.Value)
			}
			s = append(s, line...)
			continue
		}
		name := line[:colon]
		if rw.Host != "" && len(name) == 4 && equalFoldString(name, "host") {
			s = appendField(s, "Host", rw.Host)
			continue
		}
		if namedIn(name, rw.Remove) {
			continue
		}
		replaced := false
		for k, f := range rw.Set {
			if k < 64 && set&(1<<k) == 0 && len(f.Name) == len(name) && equalFoldString(name, f.Name) {
				set |= 1 << k
				s = append(s, name...)
				s = append(s, ": "...)
				s = append(s, f.Value...)
				s = append(s, '\r', '\n')
				replaced = true
				break
			}
		}
		if !replaced {
			s = append(s, line...)
		}
	}
	l.scratch = s[:0]
	return append(b[:0], s...)
}

func appendField(b []byte, name, value string) []byte {
	b = append(b, name...)
	b = append(b, ": "...)
	b = append(b, value...)
	return append(b, '\r', '\n')
}

func namedIn(name []byte, names []string) bool {
	for _, n := range names {
		if len(n) == len(name) && equalFoldString(name, n) {
			return true
		}
	}
	return false
}
