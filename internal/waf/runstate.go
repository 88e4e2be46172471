package waf

import (
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/corazawaf/coraza/v3/collection"
	"github.com/corazawaf/coraza/v3/debuglog"
	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
	"github.com/corazawaf/coraza/v3/types"
	"github.com/corazawaf/coraza/v3/types/variables"
)

// The native request state.
//
// For the common request shape (no body, no Content-Type) the fast path
// does not need a lean Coraza transaction at all: runState computes the variables the checks read the way Coraza
// computes them (ProcessConnection, ProcessURI, AddRequestHeader,
// SetServerName, AddResponseHeader, ProcessResponseHeaders; the argument
// and cookie parsing of Coraza's internal url and cookies packages) and
// keeps TX itself; the bookkeeping rules that remain in the lean instance
// are followed natively (runlean.go). Whatever it does not handle sends
// the transaction to the lean instance (Tx.toLean), which replays what was
// given so far. TestRunStateMatchesCoraza and FuzzRunState compare every
// variable with a lean Coraza transaction's.

// runKV is one value of a keyed collection: the key as given, lower-cased,
// and the value.
type runKV struct{ key, lkey, val string }

// runMD is a types.MatchData.
type runMD struct {
	rv       variables.RuleVariable
	key, val string
}

func (m *runMD) Variable() variables.RuleVariable { return m.rv }
func (m *runMD) Key() string                      { return m.key }
func (m *runMD) Value() string                    { return m.val }
func (m *runMD) Message() string                  { return "" }
func (m *runMD) Data() string                     { return "" }
func (m *runMD) ChainLevel() int                  { return 0 }

// runState implements plugintypes.TransactionState over natively computed
// variables. Collections hand out MatchData from an arena reset per
// transaction (the fast path keeps them until the transaction ends).
type runState struct {
	p  *runProg
	id string

	phase     types.RulePhase
	skipAfter string // Coraza's SkipAfter (it outlives a phase)
	skip      int
	declined  int // the rule run could not follow (diagnostics)
	// request
	conn, connStr                                  bool
	client, server                                 netip.AddrPort
	remoteAddr, remotePort, serverAddr, serverPort string
	reqSet                                         bool
	method, proto, uriRaw, line, uri               string
	filename, basename, query, serverName          string
	hdrs, args, cookies                            []runKV
	argsSize                                       int
	// response
	respSet          bool
	status, respProt string
	respCT           string
	respHdrs         []runKV

	tx runTX

	md  []runMD
	mdp []types.MatchData

	singles [256]runSingle
	keyed   [256]runKeyed
	size    runSize
	vars    runVars
}

// runStateDefaults are the values of a fresh lean transaction's single
// variables that nothing in a bodiless native transaction changes.
type runStateDefaults struct {
	single map[variables.RuleVariable]string
	none   map[variables.RuleVariable]bool // Coraza has no collection for it
	noop   map[variables.RuleVariable]bool // Coraza's empty placeholder
}

// runNoop is Coraza's placeholder collection (no values, no name).
type runNoop struct{}

func (runNoop) FindAll() []types.MatchData { return nil }
func (runNoop) Name() string               { return "" }

func newRunState(p *runProg) *runState {
	s := &runState{p: p}
	for i := range s.singles {
		s.singles[i] = runSingle{s: s, rv: variables.RuleVariable(i)}
		s.keyed[i] = runKeyed{s: s, rv: variables.RuleVariable(i)}
	}
	s.size = runSize{s: s}
	s.vars = runVars{s: s}
	s.tx.s = s
	s.tx.init(p.tx)
	return s
}

// reset makes s a fresh transaction's state.
func (s *runState) reset(id string) {
	s.id = id
	s.phase, s.skipAfter, s.skip, s.declined = 0, "", 0, 0
	s.conn, s.connStr, s.reqSet, s.respSet = false, false, false, false
	s.remoteAddr, s.remotePort, s.serverAddr, s.serverPort = "", "", "", ""
	s.method, s.proto, s.uriRaw, s.line, s.uri = "", "", "", "", ""
	s.filename, s.basename, s.query, s.serverName = "", "", "", ""
	clear(s.hdrs)
	clear(s.args)
	clear(s.cookies)
	s.hdrs, s.args, s.cookies, s.argsSize = s.hdrs[:0], s.args[:0], s.cookies[:0], 0
	s.status, s.respProt, s.respCT = "", "", ""
	clear(s.respHdrs)
	s.respHdrs = s.respHdrs[:0]
	clear(s.md)
	clear(s.mdp)
	s.md, s.mdp = s.md[:0], s.mdp[:0]
	s.tx.init(s.p.tx)
}

// alloc returns n MatchData of the arena.
func (s *runState) alloc(n int) ([]runMD, []types.MatchData) {
	if len(s.md)+n > cap(s.md) {
		// A new block: what was handed out stays where it is.
		c := 2*cap(s.md) + n
		if c < 64 {
			c = 64
		}
		s.md, s.mdp = make([]runMD, 0, c), make([]types.MatchData, 0, c)
	}
	a, b := len(s.md), len(s.md)+n
	s.md, s.mdp = s.md[:b], s.mdp[:b]
	md, mdp := s.md[a:b:b], s.mdp[a:b:b]
	for i := range md {
		mdp[i] = &md[i]
	}
	return md, mdp
}

// connection is Coraza's ProcessConnection as Tx.doConnection calls it;
// the strings are made when a rule reads them.
func (s *runState) connection(client, server netip.AddrPort) {
	s.conn, s.connStr, s.client, s.server = true, false, client, server
}

func (s *runState) connStrings() {
	if !s.conn || s.connStr {
		return
	}
	s.connStr = true
	if s.client.Addr().IsValid() {
		s.remoteAddr = s.client.Addr().Unmap().String()
	}
	if s.server.Addr().IsValid() {
		s.serverAddr = s.server.Addr().Unmap().String()
	}
	s.remotePort = strconv.Itoa(int(s.client.Port()))
	s.serverPort = strconv.Itoa(int(s.server.Port()))
}

// request is ProcessURI, SetServerName and AddRequestHeader as
// Tx.doRequestHeaders calls them; false: a request it does not handle.
func (s *runState) request(method, uri, proto, host string, hdrs []string) bool {
	s.reqSet = true
	s.method, s.proto, s.uriRaw = method, proto, uri
	s.line = method + " " + uri + " " + proto
	if i := strings.IndexByte(uri, '#'); i >= 0 {
		uri = uri[:i]
	}
	path, query, simple := simpleURI(uri)
	if !simple {
		u, err := url.ParseRequestURI(uri)
		if err != nil {
			return false // Coraza's fallback split and URI_PARSE_ERROR: lean
		}
		path, query, uri = u.Path, u.RawQuery, u.String()
	}
	if !s.parseArgs(query) {
		return false
	}
	s.uri = uri
	if i := strings.LastIndexAny(path, "/\\"); i != -1 && len(path) > i+1 {
		s.basename = path[i+1:]
	} else {
		s.basename = path
	}
	s.filename, s.query = path, query
	if h := hostOnly(host); h != "" {
		s.serverName = h
	}
	for i := 0; i+1 < len(hdrs); i += 2 {
		k, v := hdrs[i], hdrs[i+1]
		if k == "" {
			continue
		}
		lk := lowerName(k)
		switch lk {
		case "content-type":
			return false // body processor selection: lean
		case "cookie":
			s.parseCookies(v)
		}
		s.hdrs = append(s.hdrs, runKV{k, lk, v})
	}
	return true
}

// simpleURI splits a request target that net/url parses into the same
// path and query and prints back unchanged (Coraza's REQUEST_URI is the
// parsed URL printed): an absolute path of characters that need no
// escaping in a path, and a query without control bytes.
func simpleURI(uri string) (path, query string, ok bool) {
	path, query, _ = strings.Cut(uri, "?")
	if len(path) == 0 || path[0] != '/' || strings.HasPrefix(path, "//") {
		return "", "", false
	}
	for i := 0; i < len(path); i++ {
		if !pathSafe[path[i]] {
			return "", "", false
		}
	}
	for i := 0; i < len(query); i++ {
		if c := query[i]; c < ' ' || c == 0x7f {
			return "", "", false
		}
	}
	return path, query, true
}

// pathSafe are the bytes net/url leaves as they are in a path.
var pathSafe = func() (t [256]bool) {
	for c := 0; c < 256; c++ {
		t[c] = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-_.~$&+,/:;=@", byte(c)) >= 0
	}
	return t
}()

// lowerName lower-cases a header name; the usual names cost no allocation.
func lowerName(k string) string {
	if l, ok := commonNames[k]; ok {
		return l
	}
	return strings.ToLower(k)
}

var commonNames = func() map[string]string {
	m := map[string]string{}
	for _, n := range []string{"Host", "User-Agent", "Accept", "Accept-Language", "Accept-Encoding", "Accept-Charset",
		"Connection", "Cookie", "Referer", "Origin", "Cache-Control", "Pragma", "Content-Type", "Content-Length",
		"Authorization", "Upgrade-Insecure-Requests", "If-None-Match", "If-Modified-Since", "X-Forwarded-For",
		"X-Forwarded-Proto", "X-Forwarded-Host", "X-Real-IP", "X-Request-ID", "X-Requested-With", "DNT", "TE",
		"Sec-Fetch-Site", "Sec-Fetch-Mode", "Sec-Fetch-Dest", "Sec-Fetch-User", "Sec-CH-UA", "Sec-CH-UA-Mobile",
		"Sec-CH-UA-Platform", "Priority", "Via", "Forwarded", "Range", "Server", "Date", "ETag", "Last-Modified",
		"Vary", "Set-Cookie", "Transfer-Encoding", "Content-Encoding", "Location", "Expires", "Age", "Keep-Alive"} {
		m[n] = strings.ToLower(n)
		m[strings.ToLower(n)] = strings.ToLower(n)
	}
	return m
}()

// parseArgs is Coraza's ParseQueryOrdered with '&' and the argument limit
// (false: the limit is reached, which Coraza reports in a variable).
func (s *runState) parseArgs(q string) bool {
	for q != "" {
		key := q
		if i := strings.IndexByte(key, '&'); i >= 0 {
			key, q = key[:i], key[i+1:]
		} else {
			q = ""
		}
		if key == "" {
			continue
		}
		if len(s.args) >= s.p.argLimit {
			return false
		}
		val := ""
		if i := strings.IndexByte(key, '='); i >= 0 {
			key, val = key[:i], key[i+1:]
		}
		key, val = queryUnescape(key), queryUnescape(val)
		s.args = append(s.args, runKV{key, strings.ToLower(key), val})
		s.argsSize += len(key) + len(val)
	}
	return true
}

// queryUnescape decodes as Coraza's query parser: '+' is a space, %XX a
// byte, a '%' without two hex digits stays.
func queryUnescape(in string) string {
	if strings.IndexByte(in, '%') < 0 && strings.IndexByte(in, '+') < 0 {
		return in
	}
	b := make([]byte, 0, len(in))
	for i := 0; i < len(in); i++ {
		c := in[i]
		switch {
		case c == '+':
			b = append(b, ' ')
		case c == '%' && i+2 < len(in) && isHex(in[i+1]) && isHex(in[i+2]):
			b = append(b, unhex(in[i+1])<<4|unhex(in[i+2]))
			i += 2
		default:
			b = append(b, c)
		}
	}
	return string(b)
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

// parseCookies is Coraza's cookie parser (no decoding).
func (s *runState) parseCookies(raw string) {
	raw = trimCTLSpace(raw)
	for raw != "" {
		var part string
		part, raw, _ = strings.Cut(raw, ";")
		part = trimCTLSpace(part)
		if part == "" {
			continue
		}
		name, val, _ := strings.Cut(part, "=")
		name, val = trimCTLSpace(name), trimCTLSpace(val)
		if name == "" && val == "" {
			continue
		}
		s.cookies = append(s.cookies, runKV{name, strings.ToLower(name), val})
	}
}

func trimCTLSpace(s string) string {
	a, b := 0, len(s)
	for a < b && (s[a] <= 0x20 || s[a] == 0x7f) {
		a++
	}
	for b > a && (s[b-1] <= 0x20 || s[b-1] == 0x7f) {
		b--
	}
	return s[a:b]
}

// response is AddResponseHeader and ProcessResponseHeaders' variables.
func (s *runState) response(status int, proto string, hdrs []string) {
	s.respSet = true
	s.status, s.respProt = strconv.Itoa(status), proto
	for i := 0; i+1 < len(hdrs); i += 2 {
		k, v := hdrs[i], hdrs[i+1]
		if k == "" {
			continue
		}
		lk := lowerName(k)
		if lk == "content-type" {
			s.respCT, _, _ = strings.Cut(v, ";")
		}
		s.respHdrs = append(s.respHdrs, runKV{k, lk, v})
	}
}

// TransactionState.

func (s *runState) ID() string                                  { return s.id }
func (s *runState) Variables() plugintypes.TransactionVariables { return &s.vars }
func (s *runState) Interrupt(*types.Interruption)               {}
func (s *runState) DebugLogger() debuglog.Logger                { return runNoLog }
func (s *runState) Capturing() bool                             { return false }
func (s *runState) CaptureField(int, string)                    {}
func (s *runState) LastPhase() types.RulePhase                  { return s.phase }

var runNoLog = debuglog.Noop()

// Collection returns the variable's collection (nil for one the native
// state does not model: the fast path then gives up on the link).
func (s *runState) Collection(rv variables.RuleVariable) collection.Collection {
	switch s.p.kinds[rv] {
	case kindTX:
		return &s.tx
	case kindSize:
		return &s.size
	case kindKeyed:
		return &s.keyed[rv]
	case kindSingle:
		return &s.singles[rv]
	case kindNoop:
		return runNoop{}
	}
	return nil
}

// Collection kinds (runProg.kinds, by variable).
const (
	kindNone = iota
	kindTX
	kindSize
	kindKeyed
	kindSingle
	kindNoop
)

// collectionKind is what Collection returns for rv (computed once per
// configuration into runProg.kinds).
func (s *runState) collectionKind(rv variables.RuleVariable) uint8 {
	if s.p.defaults.none[rv] {
		return kindNone
	}
	if s.p.defaults.noop[rv] {
		return kindNoop
	}
	switch rv {
	case variables.TX:
		return kindTX
	case variables.ArgsCombinedSize:
		return kindSize
	case variables.Args, variables.ArgsGet, variables.ArgsNames, variables.ArgsGetNames,
		variables.ArgsPost, variables.ArgsPostNames, variables.ArgsPath,
		variables.RequestHeaders, variables.RequestHeadersNames,
		variables.RequestCookies, variables.RequestCookiesNames,
		variables.ResponseHeaders, variables.ResponseHeadersNames,
		variables.Files, variables.FilesNames, variables.FilesSizes, variables.MultipartFilename,
		variables.MultipartName, variables.MultipartPartHeaders, variables.XML, variables.RequestXML:
		return kindKeyed
	}
	if _, ok := s.p.defaults.single[rv]; ok || runSingleVars[rv] {
		return kindSingle
	}
	return kindNone
}

// runSingleVars are the single variables runState computes.
var runSingleVars = map[variables.RuleVariable]bool{
	variables.RemoteAddr: true, variables.RemotePort: true, variables.ServerAddr: true, variables.ServerPort: true,
	variables.RequestMethod: true, variables.RequestProtocol: true, variables.RequestURIRaw: true,
	variables.RequestLine: true, variables.RequestURI: true, variables.RequestFilename: true,
	variables.RequestBasename: true, variables.QueryString: true, variables.ServerName: true,
	variables.ResponseStatus: true, variables.ResponseProtocol: true, variables.ResponseContentType: true,
}

// runSingle is a single variable.
type runSingle struct {
	s  *runState
	rv variables.RuleVariable
}

func (c *runSingle) Name() string { return c.rv.Name() }

func (c *runSingle) Get() string {
	s := c.s
	switch c.rv {
	case variables.RemoteAddr, variables.RemotePort, variables.ServerAddr, variables.ServerPort:
		s.connStrings()
	}
	switch c.rv {
	case variables.RemoteAddr:
		return s.remoteAddr
	case variables.RemotePort:
		if !s.conn {
			return ""
		}
		return s.remotePort
	case variables.ServerAddr:
		return s.serverAddr
	case variables.ServerPort:
		if !s.conn {
			return ""
		}
		return s.serverPort
	case variables.RequestMethod:
		return s.method
	case variables.RequestProtocol:
		return s.proto
	case variables.RequestURIRaw:
		return s.uriRaw
	case variables.RequestLine:
		return s.line
	case variables.RequestURI:
		return s.uri
	case variables.RequestFilename:
		return s.filename
	case variables.RequestBasename:
		return s.basename
	case variables.QueryString:
		return s.query
	case variables.ServerName:
		return s.serverName
	case variables.ResponseStatus:
		return s.status
	case variables.ResponseProtocol:
		return s.respProt
	case variables.ResponseContentType:
		return s.respCT
	}
	return s.p.defaults.single[c.rv]
}

func (c *runSingle) FindAll() []types.MatchData {
	md, mdp := c.s.alloc(1)
	md[0] = runMD{rv: c.rv, val: c.Get()}
	return mdp
}

// runSize is ARGS_COMBINED_SIZE: the lengths of the names and values of
// ARGS_GET and ARGS_POST (none in a native transaction).
type runSize struct{ s *runState }

func (c *runSize) Name() string { return variables.ArgsCombinedSize.Name() }

func (c *runSize) FindAll() []types.MatchData {
	md, mdp := c.s.alloc(1)
	md[0] = runMD{rv: variables.ArgsCombinedSize, val: strconv.Itoa(c.s.argsSize)}
	return mdp
}

// runKeyed is a keyed variable. Keys are case-insensitive (Coraza's Map
// lower-cases them; its ARGS are case-insensitive in the default build,
// which runProg checks). The *_NAMES variables give the keys as values
// and, like Coraza's, look a key up as given.
type runKeyed struct {
	s  *runState
	rv variables.RuleVariable
}

func (c *runKeyed) Name() string { return c.rv.Name() }

// data returns the collection's values and whether they are the names.
func (c *runKeyed) data() (a, b []runKV, names bool) {
	s := c.s
	switch c.rv {
	case variables.Args, variables.ArgsGet:
		return s.args, nil, false
	case variables.ArgsNames, variables.ArgsGetNames:
		return s.args, nil, true
	case variables.RequestHeaders:
		return s.hdrs, nil, false
	case variables.RequestHeadersNames:
		return s.hdrs, nil, true
	case variables.RequestCookies:
		return s.cookies, nil, false
	case variables.RequestCookiesNames:
		return s.cookies, nil, true
	case variables.ResponseHeaders:
		return s.respHdrs, nil, false
	case variables.ResponseHeadersNames:
		return s.respHdrs, nil, true
	}
	return nil, nil, false
}

func (c *runKeyed) emit(kvs []runKV, names bool, keep func(kv *runKV) bool) []types.MatchData {
	n := 0
	for i := range kvs {
		if keep(&kvs[i]) {
			n++
		}
	}
	if n == 0 {
		return nil
	}
	md, mdp := c.s.alloc(n)
	j := 0
	for i := range kvs {
		kv := &kvs[i]
		if !keep(kv) {
			continue
		}
		v := kv.val
		if names {
			v = kv.key
		}
		md[j] = runMD{rv: c.rv, key: kv.key, val: v}
		j++
	}
	return mdp
}

func (c *runKeyed) FindAll() []types.MatchData {
	kvs, _, names := c.data()
	return c.emit(kvs, names, func(*runKV) bool { return true })
}

func (c *runKeyed) FindRegex(rx *regexp.Regexp) []types.MatchData {
	kvs, _, names := c.data()
	return c.emit(kvs, names, func(kv *runKV) bool { return rx.MatchString(kv.lkey) })
}

func (c *runKeyed) FindString(key string) []types.MatchData {
	kvs, _, names := c.data()
	if names {
		// Coraza's names collections look the key up as given (ARGS_NAMES
		// goes through them too).
		return c.emit(kvs, names, func(kv *runKV) bool { return kv.lkey == key })
	}
	if key == "" {
		return c.FindAll()
	}
	lk := strings.ToLower(key)
	return c.emit(kvs, names, func(kv *runKV) bool { return kv.lkey == lk })
}

func (c *runKeyed) Get(key string) []string {
	kvs, _, _ := c.data()
	lk := strings.ToLower(key)
	var out []string
	for i := range kvs {
		if kvs[i].lkey == lk {
			out = append(out, kvs[i].val)
		}
	}
	return out
}

// runVars gives the fast path TX; it reads no other variable through
// TransactionVariables (a call to another method panics: nil interface).
type runVars struct {
	plugintypes.TransactionVariables
	s *runState
}

func (v *runVars) TX() collection.Map { return &v.s.tx }

// runTXBase is the TX a native transaction starts with: the captures
// TX:0-9 empty (as Coraza starts every transaction) and the folded
// constant bookkeeping's values.
type runTXBase struct {
	keys []string // lower case
	vals [][]string
	idx  map[string]int
}

// runTX is TX: the base names (values replaced or removed per
// transaction) and names set later.
type runTX struct {
	base  *runTXBase
	vals  [][]string
	one   []string // backing of single values set (set1)
	gone  []bool
	extra []runKV
	s     *runState
	dirty bool // written since init
}

func (t *runTX) init(b *runTXBase) {
	t.base = b
	if cap(t.vals) < len(b.vals) {
		t.vals, t.gone, t.one = make([][]string, len(b.vals)), make([]bool, len(b.vals)), make([]string, len(b.vals))
	}
	t.vals, t.gone, t.one = t.vals[:len(b.vals)], t.gone[:len(b.vals)], t.one[:len(b.vals)]
	clear(t.one)
	copy(t.vals, b.vals)
	clear(t.gone)
	clear(t.extra)
	t.extra = t.extra[:0]
	t.dirty = false
}

func (t *runTX) Name() string { return variables.TX.Name() }

func (t *runTX) Get(key string) []string {
	lk := key
	if i, ok := t.base.idx[key]; ok { // base names are lower case
		if t.gone[i] || len(t.vals[i]) == 0 {
			return nil
		}
		return t.vals[i]
	}
	lk = strings.ToLower(key)
	if i, ok := t.base.idx[lk]; ok {
		if t.gone[i] || len(t.vals[i]) == 0 {
			return nil
		}
		return t.vals[i]
	}
	var out []string
	for i := range t.extra {
		if t.extra[i].lkey == lk {
			out = append(out, t.extra[i].val)
		}
	}
	return out
}

func (t *runTX) find(keep func(lk string) bool) []types.MatchData {
	n := 0
	for i, k := range t.base.keys {
		if !t.gone[i] && keep(k) {
			n += len(t.vals[i])
		}
	}
	for i := range t.extra {
		if keep(t.extra[i].lkey) {
			n++
		}
	}
	if n == 0 {
		return nil
	}
	md, mdp := t.s.alloc(n)
	j := 0
	for i, k := range t.base.keys {
		if t.gone[i] || !keep(k) {
			continue
		}
		for _, v := range t.vals[i] {
			md[j] = runMD{rv: variables.TX, key: k, val: v}
			j++
		}
	}
	for i := range t.extra {
		if kv := &t.extra[i]; keep(kv.lkey) {
			md[j] = runMD{rv: variables.TX, key: kv.key, val: kv.val}
			j++
		}
	}
	return mdp
}

func (t *runTX) FindAll() []types.MatchData { return t.find(func(string) bool { return true }) }

func (t *runTX) FindRegex(rx *regexp.Regexp) []types.MatchData {
	return t.find(func(k string) bool { return rx.MatchString(k) })
}

func (t *runTX) FindString(key string) []types.MatchData {
	if key == "" {
		return t.FindAll()
	}
	lk := strings.ToLower(key)
	return t.find(func(k string) bool { return k == lk })
}

func (t *runTX) Add(key, value string) {
	t.dirty = true
	lk := strings.ToLower(key)
	if i, ok := t.base.idx[lk]; ok {
		if t.gone[i] {
			t.vals[i], t.gone[i] = nil, false
		}
		t.vals[i] = append(t.vals[i][:len(t.vals[i]):len(t.vals[i])], value)
		return
	}
	t.extra = append(t.extra, runKV{key, lk, value})
}

func (t *runTX) Set(key string, values []string) {
	t.dirty = true
	lk := strings.ToLower(key)
	if i, ok := t.base.idx[lk]; ok {
		t.vals[i], t.gone[i] = values, false
		return
	}
	t.Remove(key)
	for _, v := range values {
		t.extra = append(t.extra, runKV{key, lk, v})
	}
}

// set1 is Set with one value, without allocating for a base name.
func (t *runTX) set1(key, v string) {
	t.dirty = true
	lk := strings.ToLower(key)
	if i, ok := t.base.idx[lk]; ok {
		t.one[i] = v
		t.vals[i], t.gone[i] = t.one[i:i+1:i+1], false
		return
	}
	t.Remove(key)
	t.extra = append(t.extra, runKV{key, lk, v})
}

// writes returns the base names t changed (indexes) and the names it
// added.
func (t *runTX) writes() (base []int, extra []runKV) {
	for i := range t.vals {
		if t.gone[i] || !slices.Equal(t.vals[i], t.base.vals[i]) {
			base = append(base, i)
		}
	}
	return base, t.extra
}

func (t *runTX) SetIndex(key string, index int, value string) {
	vs := append([]string(nil), t.Get(key)...)
	if index < len(vs) {
		vs[index] = value
	} else {
		vs = append(vs, value)
	}
	t.Set(key, vs)
}

func (t *runTX) Remove(key string) {
	t.dirty = true
	lk := strings.ToLower(key)
	if i, ok := t.base.idx[lk]; ok {
		t.gone[i], t.vals[i] = true, nil
		return
	}
	out := t.extra[:0]
	for _, kv := range t.extra {
		if kv.lkey != lk {
			out = append(out, kv)
		}
	}
	clear(t.extra[len(out):])
	t.extra = out
}
