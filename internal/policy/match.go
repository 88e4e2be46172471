package policy

import (
	"bytes"
	"fmt"
	"net/netip"
	"regexp"
	"regexp/syntax"
	"slices"
	"strings"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/internal/waf/rxlit"
)

// Request is what rules look at. Byte slices returned are lent for the
// duration of the call. Implementations must not allocate.
type Request interface {
	// ClientAddr is the real client address.
	ClientAddr() netip.Addr
	// RequestHost is the Host header or :authority (a port is ignored).
	RequestHost() []byte
	// RequestPath is the normalized path without the query.
	RequestPath() []byte
	RequestMethod() []byte
	Header(name string) ([]byte, bool)
	Query(name string) ([]byte, bool)
	// Claim returns a JWT claim as text (ok false without a validated JWT
	// or without that claim); a list claim's elements are joined by
	// ClaimListSep.
	Claim(name string) ([]byte, bool)
	// ServerName is the TLS SNI (empty on plaintext).
	ServerName() []byte
}

// prefixSet answers "is addr in one of these prefixes" with one map look-up
// per distinct prefix length.
type prefixSet struct {
	bits4, bits6 []int // distinct prefix lengths, longest first
	set          map[netip.Prefix]struct{}
}

func newPrefixSet(field string, cidrs []string) (*prefixSet, error) {
	if len(cidrs) == 0 {
		return nil, nil
	}
	s := &prefixSet{set: make(map[netip.Prefix]struct{}, len(cidrs))}
	for i, c := range cidrs {
		p, err := parsePrefix(c)
		if err != nil {
			return nil, fmt.Errorf("%s[%d]: %w", field, i, err)
		}
		s.set[p] = struct{}{}
		if p.Addr().Is4() {
			if !slices.Contains(s.bits4, p.Bits()) {
				s.bits4 = append(s.bits4, p.Bits())
			}
		} else if !slices.Contains(s.bits6, p.Bits()) {
			s.bits6 = append(s.bits6, p.Bits())
		}
	}
	slices.SortFunc(s.bits4, func(a, b int) int { return b - a })
	slices.SortFunc(s.bits6, func(a, b int) int { return b - a })
	return s, nil
}

func parsePrefix(c string) (netip.Prefix, error) {
	if strings.Contains(c, "/") {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("parsing CIDR %q: %w", c, err)
		}
		p = p.Masked()
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		return p, nil
	}
	a, err := netip.ParseAddr(c)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("parsing address %q: %w", c, err)
	}
	a = a.Unmap().WithZone("")
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func (s *prefixSet) contains(a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	a = a.Unmap().WithZone("")
	bits := s.bits6
	if a.Is4() {
		bits = s.bits4
	}
	for _, b := range bits {
		p, err := a.Prefix(b)
		if err != nil {
			continue
		}
		if _, ok := s.set[p]; ok {
			return true
		}
	}
	return false
}

// hostSet matches host names: exact (case-insensitive), "*.suffix" or "*".
type hostSet struct {
	any      bool
	exact    map[string]struct{}
	suffixes []string // ".example.com", lower case
}

func newHostSet(hosts []string) *hostSet {
	if len(hosts) == 0 {
		return nil
	}
	h := &hostSet{exact: map[string]struct{}{}}
	for _, p := range hosts {
		p = strings.ToLower(strings.TrimSuffix(p, "."))
		switch {
		case p == "*":
			h.any = true
		case strings.HasPrefix(p, "*."):
			h.suffixes = append(h.suffixes, p[1:])
		default:
			h.exact[p] = struct{}{}
		}
	}
	return h
}

// maxHost bounds the host names compared (longer ones never match).
const maxHost = 256

func (h *hostSet) match(host []byte, stripPort bool) bool {
	if stripPort {
		host = hostOnly(host)
	}
	if len(host) > 0 && host[len(host)-1] == '.' {
		host = host[:len(host)-1]
	}
	if len(host) == 0 {
		return false
	}
	if h.any {
		return true
	}
	if len(host) > maxHost {
		return false
	}
	var buf [maxHost]byte
	lower := buf[:len(host)]
	for i, c := range host {
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		lower[i] = c
	}
	if _, ok := h.exact[string(lower)]; ok {
		return true
	}
	for _, s := range h.suffixes {
		if len(lower) > len(s) && bytes.HasSuffix(lower, []byte(s)) {
			return true
		}
	}
	return false
}

// hostOnly strips a port and IPv6 brackets.
func hostOnly(h []byte) []byte {
	if len(h) > 0 && h[0] == '[' {
		if i := bytes.IndexByte(h, ']'); i > 0 {
			return h[1:i]
		}
		return h
	}
	if i := bytes.LastIndexByte(h, ':'); i >= 0 && bytes.IndexByte(h[:i], ':') < 0 {
		return h[:i]
	}
	return h
}

// valueMatcher is a compiled v1.ValueMatcher.
type valueMatcher struct {
	name    string
	exact   []byte
	re      *regexp.Regexp
	pre     *rxlit.Set // literals any match of re contains (nil: none)
	present int8       // 0: must be present (and match exact/re if set), -1: must be absent
}

// prefilter returns the literal prefilter of a regular expression.
func prefilter(expr string) *rxlit.Set {
	p, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return nil
	}
	return rxlit.Required(p.Simplify())
}

// matchRe runs re only when its prefilter allows a match.
func matchRe(re *regexp.Regexp, pre *rxlit.Set, v []byte) bool {
	if pre != nil && !pre.MayMatchBytes(v) {
		return false
	}
	return re.Match(v)
}

func newValueMatchers(field string, ms []v1.ValueMatcher) ([]valueMatcher, error) {
	out := make([]valueMatcher, 0, len(ms))
	for i, m := range ms {
		if m.Name == "" {
			return nil, fmt.Errorf("%s[%d].name: required", field, i)
		}
		vm := valueMatcher{name: m.Name}
		switch {
		case m.Regex != "":
			re, err := regexp.Compile(m.Regex)
			if err != nil {
				return nil, fmt.Errorf("%s[%d].regex: %w", field, i, err)
			}
			vm.re, vm.pre = re, prefilter(m.Regex)
		case m.Exact != "":
			vm.exact = []byte(m.Exact)
		case m.Present != nil && !*m.Present:
			vm.present = -1
		}
		out = append(out, vm)
	}
	return out, nil
}

func (m *valueMatcher) match(v []byte, ok bool) bool {
	if m.present < 0 {
		return !ok
	}
	if !ok {
		return false
	}
	switch {
	case m.re != nil:
		return matchRe(m.re, m.pre, v)
	case m.exact != nil:
		return bytes.Equal(v, m.exact)
	}
	return true
}

// claimMatch matches a claim; list claims arrive as elements separated by
// ClaimListSep and match when one element matches.
func (m *valueMatcher) matchClaim(v []byte, ok bool) bool {
	if !ok || m.present != 0 || bytes.IndexByte(v, ClaimListSep) < 0 {
		return m.match(v, ok)
	}
	for len(v) > 0 {
		i := bytes.IndexByte(v, ClaimListSep)
		if i < 0 {
			return m.match(v, true)
		}
		if m.match(v[:i], true) {
			return true
		}
		v = v[i+1:]
	}
	return false
}

// ClaimListSep separates the elements of a list claim in Request.Claim.
const ClaimListSep = 0x1f

// matcher is a compiled v1.ServicePolicyMatch: all set conditions must hold.
type matcher struct {
	clients, notClients *prefixSet
	hosts, sni          *hostSet
	pathKind            uint8 // 0 any, 1 exact, 2 prefix, 3 regex
	path                []byte
	pathRe              *regexp.Regexp
	pathPre             *rxlit.Set
	methods             [][]byte
	headers, query      []valueMatcher
	claims              []valueMatcher
	geo                 *geoMatch
}

func compileMatch(field string, m *v1.ServicePolicyMatch, opts Options) (*matcher, error) {
	c := &matcher{}
	if m.UsesCountry() {
		f := field + ".countries"
		if len(m.Countries) == 0 {
			f = field + ".notCountries"
		}
		if opts.Geo == nil || !opts.Geo.HasCountry() {
			return nil, fmt.Errorf("%s: no GeoIP country database is configured on this node (meridian node --geoip-db FILE.mmdb)", f)
		}
	}
	if m.UsesASN() {
		f := field + ".asns"
		if len(m.ASNs) == 0 {
			f = field + ".notASNs"
		}
		if opts.Geo == nil || !opts.Geo.HasASN() {
			return nil, fmt.Errorf("%s: no GeoIP ASN database is configured on this node (meridian node --geoip-asn-db FILE.mmdb)", f)
		}
	}
	if g := (&geoMatch{countries: codes(m.Countries), notCountries: codes(m.NotCountries), asns: m.ASNs, notASNs: m.NotASNs}); !g.empty() {
		c.geo = g
	}
	var err error
	if c.clients, err = newPrefixSet(field+".clientCIDRs", m.ClientCIDRs); err != nil {
		return nil, err
	}
	if c.notClients, err = newPrefixSet(field+".notClientCIDRs", m.NotClientCIDRs); err != nil {
		return nil, err
	}
	c.hosts = newHostSet(m.Hosts)
	c.sni = newHostSet(m.SNI)
	n := 0
	if m.PathExact != "" {
		c.pathKind, c.path = 1, []byte(m.PathExact)
		n++
	}
	if m.PathPrefix != "" {
		c.pathKind, c.path = 2, []byte(m.PathPrefix)
		n++
	}
	if m.PathRegex != "" {
		if c.pathRe, err = regexp.Compile(m.PathRegex); err != nil {
			return nil, fmt.Errorf("%s.pathRegex: %w", field, err)
		}
		c.pathKind = 3
		c.pathPre = prefilter(m.PathRegex)
		n++
	}
	if n > 1 {
		return nil, fmt.Errorf("%s: only one of pathExact, pathPrefix and pathRegex may be set", field)
	}
	for _, meth := range m.Methods {
		c.methods = append(c.methods, []byte(strings.ToUpper(meth)))
	}
	if c.headers, err = newValueMatchers(field+".headers", m.Headers); err != nil {
		return nil, err
	}
	if c.query, err = newValueMatchers(field+".queryParams", m.QueryParams); err != nil {
		return nil, err
	}
	if c.claims, err = newValueMatchers(field+".claims", m.Claims); err != nil {
		return nil, err
	}
	return c, nil
}

// match evaluates the cheapest conditions first.
func (c *matcher) match(r Request, g *geoState) bool {
	if len(c.methods) > 0 {
		meth := r.RequestMethod()
		found := false
		for _, m := range c.methods {
			if bytes.Equal(meth, m) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	switch c.pathKind {
	case 1:
		if !bytes.Equal(r.RequestPath(), c.path) {
			return false
		}
	case 2:
		if !bytes.HasPrefix(r.RequestPath(), c.path) {
			return false
		}
	}
	if c.clients != nil || c.notClients != nil {
		a := r.ClientAddr()
		if c.clients != nil && !c.clients.contains(a) {
			return false
		}
		if c.notClients != nil && c.notClients.contains(a) {
			return false
		}
	}
	if c.hosts != nil && !c.hosts.match(r.RequestHost(), true) {
		return false
	}
	if c.sni != nil && !c.sni.match(r.ServerName(), false) {
		return false
	}
	for i := range c.headers {
		v, ok := r.Header(c.headers[i].name)
		if !c.headers[i].match(v, ok) {
			return false
		}
	}
	for i := range c.query {
		v, ok := r.Query(c.query[i].name)
		if !c.query[i].match(v, ok) {
			return false
		}
	}
	for i := range c.claims {
		v, ok := r.Claim(c.claims[i].name)
		if !c.claims[i].matchClaim(v, ok) {
			return false
		}
	}
	if c.geo != nil && !c.geo.match(r, g) {
		return false
	}
	if c.pathKind == 3 && !matchRe(c.pathRe, c.pathPre, r.RequestPath()) {
		return false
	}
	return true
}
