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
	problemURILong     = &Problem{414, "request target too long"}
	problemHeadersLong = &Problem{431, "request header fields too large"}
	problemFold        = &Problem{400, "obsolete line folding"}
	problemName        = &Problem{400, "invalid header name"}
	problemValue       = &Problem{400, "invalid header value"}
	problemBareCRLF    = &Problem{400, "bare CR or LF"}
	problemDupCL       = &Problem{400, "duplicate Content-Length"}
	problemBadCL       = &Problem{400, "invalid Content-Length"}
	problemCLTE        = &Problem{400, "both Content-Length and Transfer-Encoding"}
	problemTE          = &Problem{501, "unsupported Transfer-Encoding"}
	problemDupTE       = &Problem{400, "duplicate Transfer-Encoding"}
	problemHost        = &Problem{400, "missing or duplicate Host"}
	problemTarget      = &Problem{400, "invalid request target"}
	problemMethod      = &Problem{400, "invalid method"}
	problemFragment    = &Problem{400, "fragment in request target"}
	problemBadVersion  = &Problem{400, "invalid HTTP version"}
	problemVersion     = &Problem{505, "HTTP version not supported"}
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
			return problemTarget
		}
		if c == '#' {
			// A fragment is never sent (RFC 9112 3.2); origins differ in
			// what they make of one.
			return problemFragment
		}
	}
	return nil
}

// CheckHeaders checks a raw header block (the lines after the request line,
// each ending in CRLF, optionally followed by the empty line). http11 says
// whether the request is HTTP/1.1 (which requires exactly one Host).
func CheckHeaders(raw []byte, http11 bool, lim Limits) *Problem {
	if len(raw) > lim.MaxHeaderBytes {
		return problemHeadersLong
	}
	var nCL, nTE, nHost int
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
		name, value := line[:colon], trimOWS(line[colon+1:])
		for _, c := range value {
			if c < ' ' && c != '\t' || c == 0x7f {
				return problemValue
			}
		}
		switch {
		case equalFold(name, "content-length"):
			nCL++
			if nCL > 1 {
				return problemDupCL
			}
			if len(value) == 0 || len(value) > 18 {
				return problemBadCL
			}
			for _, c := range value {
				if c < '0' || c > '9' {
					return problemBadCL
				}
			}
		case equalFold(name, "transfer-encoding"):
			nTE++
			if nTE > 1 {
				return problemDupTE
			}
			if !equalFold(value, "chunked") {
				return problemTE
			}
		case equalFold(name, "host"):
			nHost++
		}
	}
	if nCL > 0 && nTE > 0 {
		return problemCLTE
	}
	if nHost > 1 || http11 && nHost == 0 {
		return problemHost
	}
	return nil
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// equalFold compares b with a lower-case ASCII string, ignoring case.
func equalFold(b []byte, lower string) bool {
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
