package h1

// Problem is why a request head was rejected; Status is the answer to send.
type Problem struct {
	Status int
	Reason string
}

// Limits bound a request head.
type Limits struct {
	// MaxURI is the longest request target (414 above it).
	MaxURI int
	// MaxHeaderBytes is the largest header block (431 above it).
	MaxHeaderBytes int
}

// DefaultLimits are nginx-like: 8 KiB request line, 32 KiB of headers.
var DefaultLimits = Limits{MaxURI: 8 << 10, MaxHeaderBytes: 32 << 10}

var (
	problemURILong       = &Problem{414, "request target too long"}
	problemHeadersLong   = &Problem{431, "request header fields too large"}
	problemFold          = &Problem{400, "obsolete line folding"}
	problemName          = &Problem{400, "invalid header name"}
	problemValue         = &Problem{400, "invalid header value"}
	problemBareCRLF      = &Problem{400, "bare CR or LF"}
	problemDupCL         = &Problem{400, "duplicate Content-Length"}
	problemBadCL         = &Problem{400, "invalid Content-Length"}
	problemCLTE          = &Problem{400, "both Content-Length and Transfer-Encoding"}
	problemTE            = &Problem{501, "unsupported Transfer-Encoding"}
	problemTEChunkedLast = &Problem{400, "Transfer-Encoding without chunked as its last coding"}
	problemTE10          = &Problem{400, "Transfer-Encoding in an HTTP/1.0 request"}
	problemDupTE         = &Problem{400, "duplicate Transfer-Encoding"}
	problemHost          = &Problem{400, "missing or duplicate Host"}
	problemTarget        = &Problem{400, "invalid request target"}
	problemMethod        = &Problem{400, "invalid method"}
	problemFragment      = &Problem{400, "fragment in request target"}
	problemBadVersion    = &Problem{400, "invalid HTTP version"}
	problemVersion       = &Problem{505, "HTTP version not supported"}
)

// CheckVersion checks the request line's protocol: HTTP/1.0 and HTTP/1.1
// are served; other HTTP/1.x and later versions get 505, anything else
// (HTTP/0.x included: an HTTP/0.9 request has no version) 400.
func CheckVersion(proto []byte) *Problem {
	if len(proto) != 8 || string(proto[:5]) != "HTTP/" || proto[6] != '.' ||
		proto[5] < '0' || proto[5] > '9' || proto[7] < '0' || proto[7] > '9' || proto[5] == '0' {
		return problemBadVersion
	}
	if proto[5] == '1' && (proto[7] == '0' || proto[7] == '1') {
		return nil
	}
	return problemVersion
}

// CheckRequestLine checks the method and the request target.
func CheckRequestLine(method, target []byte, lim Limits) *Problem {
	if len(method) == 0 {
		return problemMethod
	}
	for _, c := range method {
		if !tokenChar[c] {
			return problemMethod
		}
	}
	if len(target) > lim.MaxURI {
		return problemURILong
	}
	if len(target) == 0 {
		return problemTarget
	}
	for _, c := range target {
		if c <= ' ' || c == 0x7f {
			// Bytes past ASCII are not URI syntax either (RFC 9112 3.2;
			// a recipient SHOULD, not MUST, refuse them), but they are
			// let through as nginx and Go's net/http let them: clients
			// other than browsers send raw UTF-8 in paths and queries,
			// and the OWASP CRS tests send attacks that way for the WAF
			// to see. They are forwarded as they came.
			return problemTarget
		}
		if c == '#' {
			// A fragment is never sent (RFC 9112 3.2); origins differ in
			// what they make of one.
			return problemFragment
		}
	}
	return checkTargetForm(method, target)
}

// checkTargetForm checks the request target's form (RFC 9112 3.2):
// origin-form; asterisk-form only for OPTIONS (3.2.4); absolute-form only
// for http and https, with a host and without userinfo (3.2.2; RFC 9110
// 4.2.4: a recipient treats userinfo as an error); authority-form is for
// CONNECT, which the engines judge themselves (3.2.3).
func checkTargetForm(method, target []byte) *Problem {
	switch {
	case target[0] == '/':
		return nil
	case string(method) == "CONNECT":
		return nil
	case target[0] == '*':
		if len(target) == 1 && string(method) == "OPTIONS" {
			return nil
		}
		return problemTarget
	}
	var rest []byte
	switch {
	case hasPrefixFold(target, "http://"):
		rest = target[7:]
	case hasPrefixFold(target, "https://"):
		rest = target[8:]
	default:
		return problemTarget // authority-form or another scheme
	}
	end := len(rest)
	for i, c := range rest {
		if c == '/' || c == '?' {
			end = i
			break
		}
	}
	if end == 0 || !validHost(rest[:end]) {
		return problemTarget
	}
	return nil
}

func hasPrefixFold(b []byte, lower string) bool {
	return len(b) >= len(lower) && EqualFold(b[:len(lower)], lower)
}

// validHost reports whether v is a Host field value (RFC 9110 7.2:
// uri-host [ ":" port ]): an IP literal in brackets or a reg-name
// (unreserved and sub-delims bytes; see regNameChar), then an optional
// port of digits; userinfo is not. An empty value is not one (callers
// that allow it say so).
func validHost(v []byte) bool {
	if len(v) == 0 {
		return false
	}
	var rest []byte
	if v[0] == '[' {
		end := -1
		for i, c := range v[1:] {
			if c == ']' {
				end = i + 1
				break
			}
			if hexVal[c] >= 16 && c != ':' && c != '.' && c != 'v' && c != 'V' {
				return false
			}
		}
		if end < 2 {
			return false
		}
		rest = v[end+1:]
	} else {
		i := 0
		for i < len(v) && regNameChar[v[i]] {
			i++
		}
		if i == 0 {
			return false
		}
		rest = v[i:]
	}
	if len(rest) == 0 {
		return true
	}
	if rest[0] != ':' {
		return false
	}
	for _, c := range rest[1:] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// regNameChar are the bytes of an RFC 3986 reg-name: unreserved and
// sub-delims. Its pct-encoded triplets are refused: the goroutine
// engine's HTTP library refuses those of ASCII bytes, and a host name
// that needs one names no host a load balancer serves.
var regNameChar = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "-._~!$&'()*+,;=" {
		t[c] = true
	}
	return t
}()

// AppendEscapedPath appends the decoded path p to b with every byte a
// path may not hold as it is (RFC 3986 3.3: other than unreserved,
// sub-delims, ':', '@' and '/') percent-encoded.
func AppendEscapedPath(b, p []byte) []byte {
	const hex = "0123456789ABCDEF"
	for _, c := range p {
		if pathChar[c] {
			b = append(b, c)
		} else {
			b = append(b, '%', hex[c>>4], hex[c&15])
		}
	}
	return b
}

// pathChar are the bytes a path holds as they are: a reg-name's, ':', '@'
// and '/'.
var pathChar = func() [256]bool {
	t := regNameChar
	t[':'], t['@'], t['/'] = true, true, true
	return t
}()

// CheckHeaders checks a raw header block (the lines after the request line,
// each ending in CRLF, optionally followed by the empty line). http11 says
// whether the request is HTTP/1.1 (which requires exactly one Host).
func CheckHeaders(raw []byte, http11 bool, lim Limits) *Problem {
	if len(raw) > lim.MaxHeaderBytes {
		return problemHeadersLong
	}
	var nCL, nTE, nHost int
	// Problems of meaning (framing, Host) are answered after every line
	// was found well formed, so that a malformed line gets its 400
	// whatever field comes first.
	var late *Problem
	i := 0
	for i < len(raw) {
		// Find the end of the line and check line endings.
		end := -1
		for j := i; j < len(raw); j++ {
			c := raw[j]
			if c == '\r' {
				if j+1 >= len(raw) || raw[j+1] != '\n' {
					return problemBareCRLF
				}
				end = j
				break
			}
			if c == '\n' {
				return problemBareCRLF
			}
		}
		if end < 0 {
			// Unterminated last line.
			end = len(raw)
		}
		line := raw[i:end]
		i = end + 2
		if len(line) == 0 {
			break // end of head
		}
		if line[0] == ' ' || line[0] == '\t' {
			return problemFold
		}
		colon := -1
		for k, c := range line {
			if c == ':' {
				colon = k
				break
			}
			if !tokenChar[c] {
				return problemName
			}
		}
		if colon <= 0 {
			return problemName
		}
		name, value := line[:colon], TrimOWS(line[colon+1:])
		for _, c := range value {
			if c < ' ' && c != '\t' || c == 0x7f {
				return problemValue
			}
		}
		switch {
		case EqualFold(name, "content-length"):
			nCL++
			if nCL > 1 {
				late = firstProblem(late, problemDupCL)
			}
			if len(value) == 0 || len(value) > 18 {
				late = firstProblem(late, problemBadCL)
			}
			for _, c := range value {
				if c < '0' || c > '9' {
					late = firstProblem(late, problemBadCL)
				}
			}
		case EqualFold(name, "transfer-encoding"):
			nTE++
			if nTE > 1 {
				late = firstProblem(late, problemDupTE)
			}
			if !EqualFold(value, "chunked") {
				late = firstProblem(late, teProblem(value))
			}
		case EqualFold(name, "host"):
			nHost++
			// An empty Host in HTTP/1.0, which has no Host, is taken as
			// none: the request goes on with the endpoint's address as
			// Host (Go's net/http takes it, and the CRS tests send it:
			// 920290-4). In HTTP/1.1 it is refused, as nginx and the
			// goroutine engine's library refuse it: RFC 9112 3.2 allows
			// it only for a target without authority, which no request
			// to a reverse proxy has.
			if (len(value) > 0 || http11) && !validHost(value) {
				late = firstProblem(late, problemHost) // RFC 9112 3.2: an invalid Host value gets 400
			}
		}
	}
	if late != nil {
		return late
	}
	if nCL > 0 && nTE > 0 {
		return problemCLTE
	}
	if nTE > 0 && !http11 {
		// RFC 9112 6.1: an HTTP/1.0 message with Transfer-Encoding has
		// faulty framing (an HTTP/1.0 recipient does not know chunked).
		return problemTE10
	}
	if nHost > 1 || http11 && nHost == 0 {
		return problemHost
	}
	return nil
}

// firstProblem is p, or q when p is nil.
func firstProblem(p, q *Problem) *Problem {
	if p != nil {
		return p
	}
	return q
}

// teProblem is the answer to a Transfer-Encoding other than "chunked":
// 400 when chunked is not the last coding, or comes more than once (RFC
// 9112 6.3, 7: the body's length cannot be known), 501 for a coding
// before chunked that Meridian does not know (RFC 9112 6.1).
func teProblem(v []byte) *Problem {
	var last []byte
	chunked := 0
	for len(v) > 0 {
		var tok []byte
		if i := indexByte(v, ','); i >= 0 {
			tok, v = TrimOWS(v[:i]), v[i+1:]
		} else {
			tok, v = TrimOWS(v), nil
		}
		if EqualFold(tok, "chunked") {
			chunked++
		}
		last = tok
	}
	if chunked != 1 || !EqualFold(last, "chunked") {
		return problemTEChunkedLast
	}
	return problemTE
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

// TrimOWS removes the optional whitespace (spaces and tabs, RFC 9110 5.6.3)
// around a field value or list element.
func TrimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// EqualFold compares b with a lower-case ASCII string, ignoring case.
func EqualFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

var tokenChar = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

// IsToken reports whether b is an RFC 9110 token.
func IsToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !tokenChar[c] {
			return false
		}
	}
	return true
}
