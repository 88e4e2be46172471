package policy_test

import (
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/internal/policy"
	"github.com/meridian-platform/meridian/internal/policy/geoip"
	"github.com/meridian-platform/meridian/internal/policy/geoip/geoiptest"
)

type addrReq struct{ client netip.Addr }

func (r *addrReq) ClientAddr() netip.Addr       { return r.client }
func (r *addrReq) RequestHost() []byte          { return []byte("shop.example.com") }
func (r *addrReq) RequestPath() []byte          { return []byte("/") }
func (r *addrReq) RequestMethod() []byte        { return []byte("GET") }
func (r *addrReq) ServerName() []byte           { return nil }
func (r *addrReq) Header(string) ([]byte, bool) { return nil, false }
func (r *addrReq) Query(string) ([]byte, bool)  { return nil, false }
func (r *addrReq) Claim(string) ([]byte, bool)  { return nil, false }

func openGeo(t testing.TB, withASN bool) *geoip.DB {
	t.Helper()
	dir := t.TempDir()
	files := []string{filepath.Join(dir, "country.mmdb")}
	if err := geoiptest.WriteCountry(files[0], map[string]string{
		"203.0.113.0/24": "DE", "198.51.100.0/24": "FR", "192.0.2.0/24": "US", "2001:db8::/32": "JP"}); err != nil {
		t.Fatal(err)
	}
	if withASN {
		files = append(files, filepath.Join(dir, "asn.mmdb"))
		if err := geoiptest.WriteASN(files[1], map[string]uint32{"203.0.113.0/25": 64496, "192.0.2.0/24": 64500}); err != nil {
			t.Fatal(err)
		}
	}
	db, err := geoip.Open(files...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func geoPolicy(t testing.TB, doc string) *v1.ServicePolicy {
	t.Helper()
	p := &v1.ServicePolicy{}
	if err := yaml.UnmarshalStrict([]byte(doc), &p.Spec); err != nil {
		t.Fatal(err)
	}
	p.Metadata.Namespace, p.Metadata.Name = "retail", "geo"
	return p
}

const geoDoc = `
defaultAction: deny
rules:
  - {name: bad-asn, action: deny, status: 451, match: {asns: [64496]}}
  - {name: eu, action: allow, match: {countries: [DE, fr]}}
  - {name: not-us-v6, action: allow, match: {notCountries: [US], clientCIDRs: ["2001:db8::/32"]}}
  - {name: us-other-as, action: allow, match: {countries: [US], notASNs: [64500]}}
`

func TestCountryASNMatches(t *testing.T) {
	set, err := policy.CompileWith([]*v1.ServicePolicy{geoPolicy(t, geoDoc)}, nil, policy.Options{Geo: openGeo(t, true)})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		addr   string
		action policy.Action
		rule   string
	}{
		{"203.0.113.5", policy.Deny, "bad-asn"}, // DE, but in the denied AS
		{"203.0.113.200", policy.Allow, "eu"},   // DE, other AS
		{"198.51.100.9", policy.Allow, "eu"},    // FR
		{"2001:db8::5", policy.Allow, "not-us-v6"},
		{"192.0.2.1", policy.Deny, ""}, // US in AS 64500: default
		{"10.1.2.3", policy.Deny, ""},  // unknown everywhere
		{"::ffff:198.51.100.9", policy.Allow, "eu"},
	} {
		d := set.Evaluate(&addrReq{client: netip.MustParseAddr(tc.addr)})
		if d.Action != tc.action || d.Rule != tc.rule {
			t.Errorf("%s: %v by %q, want %v by %q", tc.addr, d.Action, d.Rule, tc.action, tc.rule)
		}
	}
	r := &addrReq{client: netip.MustParseAddr("198.51.100.9")}
	var rq policy.Request = r
	set.Evaluate(rq)
	if n := testing.AllocsPerRun(100, func() { set.Evaluate(rq) }); n != 0 {
		t.Fatalf("%v allocations per evaluation", n)
	}
}

func TestGeoWithoutDatabaseIsACompileError(t *testing.T) {
	p := geoPolicy(t, geoDoc)
	for _, tc := range []struct {
		name  string
		opts  policy.Options
		field string
	}{
		{"no database", policy.Options{}, "spec.rules[0].match.asns"},
		{"country only", policy.Options{Geo: openGeo(t, false)}, "spec.rules[0].match.asns"},
	} {
		_, err := policy.CompileWith([]*v1.ServicePolicy{p}, nil, tc.opts)
		if err == nil || !strings.Contains(err.Error(), tc.field+": no GeoIP ASN database") || !strings.Contains(err.Error(), "retail/geo") {
			t.Errorf("%s: error %v, want one naming %s", tc.name, err, tc.field)
		}
	}
	p = geoPolicy(t, `{rules: [{name: x, action: deny, match: {notCountries: [DE]}}]}`)
	if _, err := policy.Compile([]*v1.ServicePolicy{p}, nil); err == nil || !strings.Contains(err.Error(), "spec.rules[0].match.notCountries: no GeoIP country database") {
		t.Fatalf("error %v", err)
	}
}
