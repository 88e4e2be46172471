package waf

import (
	"html"
	"path/filepath"
	"strconv"
	"strings"
	"unicode"
)

// Transformations of the fast path. Each returns ok=false when it cannot
// tell the exact output of Coraza's transformation of the same name for this
// input (then the rule is "unknown" and Coraza decides). Those implemented
// in full follow the ModSecurity reference semantics that Coraza documents;
// the others are exact only on inputs they leave unchanged, which is
// checked by the characters that trigger them.

var tfNames = map[string]func(string) (string, bool){
	"lowercase":          func(s string) (string, bool) { return strings.ToLower(s), true },
	"uppercase":          func(s string) (string, bool) { return strings.ToUpper(s), true },
	"urlDecode":          func(s string) (string, bool) { return tfURLDecode(s, false) },
	"urlDecodeUni":       func(s string) (string, bool) { return tfURLDecode(s, true) },
	"htmlEntityDecode":   func(s string) (string, bool) { return html.UnescapeString(s), true },
	"jsDecode":           tfJSDecode,
	"cssDecode":          identityWithout("\\"),
	"escapeSeqDecode":    identityWithout("\\"),
	"removeNulls":        func(s string) (string, bool) { return strings.ReplaceAll(s, "\x00", ""), true },
	"replaceNulls":       func(s string) (string, bool) { return strings.ReplaceAll(s, "\x00", " "), true },
	"removeWhitespace":   tfRemoveWhitespace,
	"compressWhitespace": tfCompressWhitespace,
	"cmdLine":            tfCmdLine,
	"replaceComments":    tfReplaceComments,
	"removeComments":     tfRemoveComments,
	"removeCommentsChar": identityWithoutAny("/*-#"),
	"normalisePath":      tfNormalisePath,
	"normalizePath":      tfNormalisePath,
	"normalisePathWin":   tfNormalisePathWin,
	"normalizePathWin":   tfNormalisePathWin,
	"utf8toUnicode":      tfUTF8ToUnicode,
	"base64Decode":       tfBase64Decode,
	"length":             func(s string) (string, bool) { return strconv.Itoa(len(s)), true },
	"trim":               func(s string) (string, bool) { return strings.Trim(s, tfSpaces), true },
	"trimLeft":           func(s string) (string, bool) { return strings.TrimLeft(s, tfSpaces), true },
	"trimRight":          func(s string) (string, bool) { return strings.TrimRight(s, tfSpaces), true },
}

const tfSpaces = " \t\n\r\f\v"

// tfID numbers the transformations (the key of their shared results).
var tfID = func() map[string]int32 {
	m := make(map[string]int32, len(tfNames))
	for name := range tfNames {
		m[name] = int32(len(m))
	}
	return m
}()

// tfTriggers lists, per transformation, the bytes without which it
// returns its input unchanged (and ok): a value holding none of them skips
// the call; high adds every byte from 0x80. Transformations not listed
// always run. TestTfTriggers holds each list to its function.
var tfTriggers = map[string]struct {
	bytes string
	high  bool
}{
	"lowercase":          {tfUpper, true},
	"uppercase":          {strings.ToLower(tfUpper), true},
	"urlDecode":          {"%+", false},
	"urlDecodeUni":       {"%+", false},
	"htmlEntityDecode":   {"&", false},
	"jsDecode":           {`\`, false},
	"cssDecode":          {`\`, false},
	"escapeSeqDecode":    {`\`, false},
	"removeNulls":        {"\x00", false},
	"replaceNulls":       {"\x00", false},
	"removeWhitespace":   {tfSpaces, true},
	"compressWhitespace": {tfSpaces, true},
	"cmdLine":            {`"'\^,; ` + "\t\r\n" + tfUpper, false},
	"replaceComments":    {"/", false},
	"removeComments":     {"/<-#", false},
	"removeCommentsChar": {"/*-#", false},
	"normalisePath":      {"/.", false},
	"normalizePath":      {"/.", false},
	"normalisePathWin":   {`/.\: `, false},
	"normalizePathWin":   {`/.\: `, false},
	"utf8toUnicode":      {"", true},
	"trim":               {tfSpaces, false},
	"trimLeft":           {tfSpaces, false},
	"trimRight":          {tfSpaces, false},
}

const tfUpper = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

// tfTrigger is tfTriggers by tfID (every byte for the others).
var tfTrigger = func() []byteSet {
	out := make([]byteSet, len(tfID))
	for name, id := range tfID {
		t, ok := tfTriggers[name]
		if !ok {
			out[id] = byteSet{^uint64(0), ^uint64(0), ^uint64(0), ^uint64(0)}
			continue
		}
		for i := 0; i < len(t.bytes); i++ {
			out[id].add(t.bytes[i])
		}
		if t.high {
			out[id][2], out[id][3] = ^uint64(0), ^uint64(0)
		}
	}
	return out
}()

func tfApply(name, s string) (string, bool) {
	f := tfNames[name]
	if f == nil {
		return "", false
	}
	return f(s)
}

func identityWithout(chars string) func(string) (string, bool) {
	return func(s string) (string, bool) {
		return s, !strings.Contains(s, chars)
	}
}

func identityWithoutAny(chars string) func(string) (string, bool) {
	return func(s string) (string, bool) {
		return s, !strings.ContainsAny(s, chars)
	}
}

func hexVal(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// urlDecode(Uni): '+' is a space, %HH a byte, a '%' without two hex
// digits stays. urlDecodeUni's %uHHHH (best-fit mapping to ASCII) is left
// to Coraza.
func tfURLDecode(s string, uni bool) (string, bool) {
	i := strings.IndexAny(s, "%+")
	if i < 0 {
		return s, true
	}
	b := make([]byte, 0, len(s))
	b = append(b, s[:i]...)
	for ; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '+':
			b = append(b, ' ')
		case c != '%':
			b = append(b, c)
		case uni && i+1 < len(s) && (s[i+1] == 'u' || s[i+1] == 'U'):
			return s, false
		case i+2 < len(s) && hexVal(s[i+1]) >= 0 && hexVal(s[i+2]) >= 0:
			b = append(b, byte(hexVal(s[i+1])<<4|hexVal(s[i+2])))
			i += 2
		default:
			b = append(b, c)
		}
	}
	return string(b), true
}

// jsDecode: \xHH, \OOO (at most one byte), \a \b \f \n \r \t \v, and
// \C for C; a backslash at the end stays. \u escapes are left to Coraza.
func tfJSDecode(s string) (string, bool) {
	i := strings.IndexByte(s, '\\')
	if i < 0 {
		return s, true
	}
	b := make([]byte, 0, len(s))
	b = append(b, s[:i]...)
	for i < len(s) {
		c := s[i]
		if c != '\\' {
			b = append(b, c)
			i++
			continue
		}
		if i+1 >= len(s) {
			b = append(b, c)
			i++
			continue
		}
		n := s[i+1]
		switch {
		case n == 'u':
			return s, false
		case n == 'x' && i+3 < len(s) && hexVal(s[i+2]) >= 0 && hexVal(s[i+3]) >= 0:
			b = append(b, byte(hexVal(s[i+2])<<4|hexVal(s[i+3])))
			i += 4
		case n >= '0' && n <= '7':
			j := 1
			for j < 3 && i+1+j < len(s) && s[i+1+j] >= '0' && s[i+1+j] <= '7' {
				j++
			}
			if j == 3 && n > '3' {
				j = 2
			}
			v := 0
			for k := 0; k < j; k++ {
				v = v*8 + int(s[i+1+k]-'0')
			}
			b = append(b, byte(v))
			i += 1 + j
		default:
			switch n {
			case 'a':
				n = '\a'
			case 'b':
				n = '\b'
			case 'f':
				n = '\f'
			case 'n':
				n = '\n'
			case 'r':
				n = '\r'
			case 't':
				n = '\t'
			case 'v':
				n = '\v'
			}
			b = append(b, n)
			i += 2
		}
	}
	return string(b), true
}

func tfRemoveWhitespace(s string) (string, bool) {
	return strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return -1
		}
		return r
	}, s), true
}

func hasNonASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return true
		}
	}
	return false
}

// compressWhitespace: runs of ASCII white space become one space (input
// with non-ASCII bytes, where NEL and NBSP also count, is left to Coraza).
func tfCompressWhitespace(s string) (string, bool) {
	if hasNonASCII(s) {
		return s, false
	}
	var b []byte
	in := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r' {
			if !in {
				b = append(b, ' ')
			}
			in = true
			continue
		}
		in = false
		b = append(b, c)
	}
	return string(b), true
}

// cmdLine: drop \ " ' ^; turn , ; and white space (space, tab, CR, LF)
// runs into one space; drop a space before / or (; lower-case A-Z.
func tfCmdLine(s string) (string, bool) {
	b := make([]byte, 0, len(s))
	space := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '"', '\'', '\\', '^':
		case ' ', ',', ';', '\t', '\r', '\n':
			if !space {
				b = append(b, ' ')
				space = true
			}
		case '/', '(':
			if space {
				b = b[:len(b)-1]
			}
			space = false
			b = append(b, c)
		default:
			if c >= 'A' && c <= 'Z' {
				c += 'a' - 'A'
			}
			b = append(b, c)
			space = false
		}
	}
	return string(b), true
}

func tfReplaceComments(s string) (string, bool) {
	return s, !strings.Contains(s, "/*")
}

func tfRemoveComments(s string) (string, bool) {
	return s, !strings.Contains(s, "/*") && !strings.Contains(s, "<!--") && !strings.Contains(s, "--") && strings.IndexByte(s, '#') < 0
}

func tfNormalisePath(s string) (string, bool) {
	if s == "" {
		return s, true
	}
	c := filepath.Clean(s)
	if c == "." {
		return "", true
	}
	if s[len(s)-1] == '/' {
		return c + "/", true
	}
	return c, true
}

// normalisePathWin: backslashes become slashes and the path is cleaned;
// results with a colon or a segment ending in a dot or a space (Windows
// stream names and trailing dots) are left to Coraza.
func tfNormalisePathWin(s string) (string, bool) {
	if s == "" {
		return s, true
	}
	out, _ := tfNormalisePath(strings.ReplaceAll(s, "\\", "/"))
	if strings.IndexByte(out, ':') >= 0 {
		return s, false
	}
	for _, seg := range strings.Split(out, "/") {
		if seg != "" && (seg[len(seg)-1] == '.' || seg[len(seg)-1] == ' ') {
			return s, false
		}
	}
	return out, true
}

// utf8toUnicode: every non-ASCII code point (U+FFFD for a byte that is
// not valid UTF-8) becomes %u and its lower-case hex digits, padded to four.
func tfUTF8ToUnicode(s string) (string, bool) {
	if !hasNonASCII(s) {
		return s, true
	}
	b := make([]byte, 0, len(s)+16)
	for _, r := range s {
		if r < 0x80 {
			b = append(b, byte(r))
			continue
		}
		h := strconv.FormatInt(int64(r), 16)
		b = append(b, '%', 'u')
		for i := len(h); i < 4; i++ {
			b = append(b, '0')
		}
		b = append(b, h...)
	}
	return string(b), true
}

// base64Decode (ModSecurity's lenient decoder): CR and LF are skipped, it
// stops at '=', a space or any byte outside the standard alphabet, and a
// trailing group of 2 or 3 characters gives 1 or 2 bytes.
func tfBase64Decode(s string) (string, bool) {
	out := make([]byte, 0, len(s)*3/4+2)
	acc, n := 0, 0
loop:
	for i := 0; i < len(s); i++ {
		c := s[i]
		var d int
		switch {
		case c == '\r' || c == '\n':
			continue
		case c >= 'A' && c <= 'Z':
			d = int(c - 'A')
		case c >= 'a' && c <= 'z':
			d = int(c-'a') + 26
		case c >= '0' && c <= '9':
			d = int(c-'0') + 52
		case c == '+':
			d = 62
		case c == '/':
			d = 63
		default:
			break loop
		}
		acc = acc<<6 | d
		n++
		if n == 4 {
			out = append(out, byte(acc>>16), byte(acc>>8), byte(acc))
			acc, n = 0, 0
		}
	}
	switch n {
	case 2:
		out = append(out, byte(acc>>4))
	case 3:
		out = append(out, byte(acc>>10), byte(acc>>2))
	}
	return string(out), true
}
