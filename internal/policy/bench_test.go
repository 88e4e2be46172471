package policy

import (
	"net/netip"
	"testing"
)

// fixedReq returns preallocated slices so that the benchmark measures the
// evaluation alone.
type fixedReq struct {
	host, path, method, ua []byte
}

func (r *fixedReq) ClientAddr() netip.Addr { return netip.AddrFrom4([4]byte{198, 51, 100, 7}) }
func (r *fixedReq) RequestHost() []byte    { return r.host }
func (r *fixedReq) RequestPath() []byte    { return r.path }
func (r *fixedReq) RequestMethod() []byte  { return r.method }
func (r *fixedReq) ServerName() []byte     { return nil }
func (r *fixedReq) Header(n string) ([]byte, bool) {
	if n == "User-Agent" {
		return r.ua, true
	}
	return nil, false
}
func (r *fixedReq) Query(string) ([]byte, bool) { return nil, false }
func (r *fixedReq) Claim(string) ([]byte, bool) { return nil, false }

func BenchmarkEvaluate(b *testing.B) {
	s, _ := compile(b,
		`{rules: [{name: scanners, action: deny, match: {clientCIDRs: [203.0.113.0/24, 192.0.2.0/24, 10.9.0.0/16]}},
  {name: admin-vpn, action: deny, match: {pathPrefix: /admin, notClientCIDRs: [10.0.0.0/8]}},
  {name: bots, action: deny, match: {headers: [{name: User-Agent, regex: '(?i)(sqlmap|nikto)'}]}}]}`,
		`{defaultAction: allow, rules: [{name: v2, action: redirect, redirectURL: /v2, match: {hosts: [old.example.com], pathRegex: '^/v1/'}}]}`)
	r := &fixedReq{host: []byte("shop.example.com"), path: []byte("/api/users"), method: []byte("GET"),
		ua: []byte("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36")}
	var rq Request = r
	b.ReportAllocs()
	for b.Loop() {
		if d := s.Evaluate(rq); d.Action != Allow {
			b.Fatal(d)
		}
	}
}
