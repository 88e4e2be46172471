package policy

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/yaml"

	v1 "github.com/meridian-platform/meridian/api/v1"
)

// req is a plain Request for tests.
type req struct {
	client  netip.Addr
	host    string
	path    string
	method  string
	headers map[string]string // lower-case names
	query   map[string]string
	claims  map[string]string
	sni     string
}

func (r *req) ClientAddr() netip.Addr { return r.client }
func (r *req) RequestHost() []byte    { return []byte(r.host) }
func (r *req) RequestPath() []byte    { return []byte(r.path) }
func (r *req) RequestMethod() []byte  { return []byte(r.method) }
func (r *req) ServerName() []byte     { return []byte(r.sni) }
func (r *req) Header(n string) ([]byte, bool) {
	v, ok := r.headers[strings.ToLower(n)]
	return []byte(v), ok
}
func (r *req) Query(n string) ([]byte, bool) { v, ok := r.query[n]; return []byte(v), ok }
func (r *req) Claim(n string) ([]byte, bool) { v, ok := r.claims[n]; return []byte(v), ok }

func get(path string) *req {
	return &req{client: netip.MustParseAddr("198.51.100.7"), host: "shop.example.com:8080", path: path, method: "GET"}
}

func mustPolicies(t testing.TB, docs ...string) []*v1.ServicePolicy {
	t.Helper()
	var out []*v1.ServicePolicy
	for i, d := range docs {
		p := &v1.ServicePolicy{}
		if err := yaml.UnmarshalStrict([]byte(d), &p.Spec); err != nil {
			t.Fatalf("policy %d: %v", i, err)
		}
		p.Metadata.Namespace = "retail"
		p.Metadata.Name = "p" + string(rune('0'+i))
		out = append(out, p)
	}
	return out
}

func compile(t testing.TB, docs ...string) (*Set, *Registry) {
	t.Helper()
	reg := NewRegistry()
	s, err := Compile(mustPolicies(t, docs...), reg)
	if err != nil {
		t.Fatal(err)
	}
	return s, reg
}

func TestMatchers(t *testing.T) {
	tests := []struct {
		name  string
		match string
		req   func(*req)
		want  bool
	}{
		{"cidr in", `{clientCIDRs: [198.51.100.0/24]}`, nil, true},
		{"cidr out", `{clientCIDRs: [203.0.113.0/24, 10.0.0.0/8]}`, nil, false},
		{"cidr bare host", `{clientCIDRs: [198.51.100.7]}`, nil, true},
		{"cidr 4in6 client", `{clientCIDRs: [198.51.100.0/24]}`, func(r *req) { r.client = netip.MustParseAddr("::ffff:198.51.100.9") }, true},
		{"cidr v6", `{clientCIDRs: ["2001:db8::/32"]}`, func(r *req) { r.client = netip.MustParseAddr("2001:db8::1") }, true},
		{"cidr v6 vs v4", `{clientCIDRs: ["::/0"]}`, nil, false},
		{"cidr no client", `{clientCIDRs: [0.0.0.0/0]}`, func(r *req) { r.client = netip.Addr{} }, false},
		{"not cidr", `{notClientCIDRs: [10.0.0.0/8]}`, nil, true},
		{"not cidr hit", `{notClientCIDRs: [198.51.0.0/16]}`, nil, false},
		{"host exact ignores port and case", `{hosts: [Shop.Example.com]}`, nil, true},
		{"host wildcard", `{hosts: ["*.example.com"]}`, nil, true},
		{"host wildcard not apex", `{hosts: ["*.example.com"]}`, func(r *req) { r.host = "example.com" }, false},
		{"host any", `{hosts: ["*"]}`, nil, true},
		{"host address", `{hosts: ["127.0.0.1"]}`, func(r *req) { r.host = "127.0.0.1:80" }, true},
		{"host bracketed v6 never a name", `{hosts: ["*.example.com"]}`, func(r *req) { r.host = "[::1]:80" }, false},
		{"host other", `{hosts: [other.example.com]}`, nil, false},
		{"path exact", `{pathExact: /admin}`, func(r *req) { r.path = "/admin" }, true},
		{"path exact no", `{pathExact: /admin}`, func(r *req) { r.path = "/admin/x" }, false},
		{"path prefix", `{pathPrefix: /admin}`, func(r *req) { r.path = "/admin/x" }, true},
		{"path regex", `{pathRegex: '^/v[0-9]+/users$'}`, func(r *req) { r.path = "/v2/users" }, true},
		{"path regex no", `{pathRegex: '^/v[0-9]+/users$'}`, func(r *req) { r.path = "/v2/users/1" }, false},
		{"method", `{methods: [post, GET]}`, nil, true},
		{"method no", `{methods: [POST]}`, nil, false},
		{"header exact", `{headers: [{name: X-Env, exact: prod}]}`, func(r *req) { r.headers = map[string]string{"x-env": "prod"} }, true},
		{"header exact no", `{headers: [{name: X-Env, exact: prod}]}`, func(r *req) { r.headers = map[string]string{"x-env": "dev"} }, false},
		{"header present", `{headers: [{name: X-Env}]}`, func(r *req) { r.headers = map[string]string{"x-env": ""} }, true},
		{"header absent wanted", `{headers: [{name: X-Env, present: false}]}`, nil, true},
		{"header absent but there", `{headers: [{name: X-Env, present: false}]}`, func(r *req) { r.headers = map[string]string{"x-env": "1"} }, false},
		{"header regex", `{headers: [{name: user-agent, regex: '(?i)curl'}]}`, func(r *req) { r.headers = map[string]string{"user-agent": "CURL/8"} }, true},
		{"query", `{queryParams: [{name: debug, exact: "1"}]}`, func(r *req) { r.query = map[string]string{"debug": "1"} }, true},
		{"query missing", `{queryParams: [{name: debug, exact: "1"}]}`, nil, false},
		{"claim", `{claims: [{name: role, exact: admin}]}`, func(r *req) { r.claims = map[string]string{"role": "admin"} }, true},
		{"claim list", `{claims: [{name: groups, exact: ops}]}`, func(r *req) { r.claims = map[string]string{"groups": "dev\x1fops"} }, true},
		{"claim list no", `{claims: [{name: groups, exact: ops}]}`, func(r *req) { r.claims = map[string]string{"groups": "dev\x1fqa"} }, false},
		{"claim without jwt", `{claims: [{name: role}]}`, nil, false},
		{"sni", `{sni: ["*.example.com"]}`, func(r *req) { r.sni = "api.example.com" }, true},
		{"sni plaintext", `{sni: ["*"]}`, nil, false},
		{"all conditions", `{methods: [GET], pathPrefix: /api, clientCIDRs: [198.51.100.0/24], hosts: [shop.example.com]}`, func(r *req) { r.path = "/api/x" }, true},
		{"one condition fails", `{methods: [GET], pathPrefix: /api, clientCIDRs: [10.0.0.0/8]}`, func(r *req) { r.path = "/api/x" }, false},
		{"empty match", `{}`, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := compile(t, `{rules: [{name: r, action: deny, match: `+tt.match+`}]}`)
			r := get("/")
			if tt.req != nil {
				tt.req(r)
			}
			got := s.Evaluate(r).Action == Deny
			if got != tt.want {
				t.Errorf("match = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestAlgorithmsAndDefaults(t *testing.T) {
	rules := `rules: [
  {name: allow-office, action: allow, match: {clientCIDRs: [198.51.100.0/24]}},
  {name: deny-admin, action: deny, status: 451, match: {pathPrefix: /admin}},
  {name: go-home, action: redirect, redirectURL: /home, match: {pathPrefix: /old}}]`
	tests := []struct {
		name, doc, path string
		want            Action
		rule            string
		status          int
	}{
		{"firstMatch takes first", `{` + rules + `}`, "/admin", Allow, "allow-office", 0},
		{"denyOverrides", `{algorithm: denyOverrides, ` + rules + `}`, "/admin", Deny, "deny-admin", 451},
		{"denyOverrides falls back to first match", `{algorithm: denyOverrides, ` + rules + `}`, "/x", Allow, "allow-office", 0},
		{"allowOverrides", `{algorithm: allowOverrides, ` + rules + `}`, "/admin", Allow, "allow-office", 0},
		{"redirect", `{rules: [{name: r, action: redirect, redirectURL: "https://x.example/", match: {pathPrefix: /old}}]}`, "/old/a", Redirect, "r", 302},
		{"default next", `{rules: [{name: r, action: deny, match: {pathPrefix: /z}}]}`, "/a", None, "", 0},
		{"default deny", `{defaultAction: deny, rules: [{name: r, action: allow, match: {pathPrefix: /z}}]}`, "/a", Deny, "", 403},
		{"default allow", `{defaultAction: allow}`, "/a", Allow, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := compile(t, tt.doc)
			d := s.Evaluate(get(tt.path))
			if d.Action != tt.want || d.Rule != tt.rule || d.Status != tt.status {
				t.Errorf("got %+v, want %v rule %q status %d", d.Verdict, tt.want, tt.rule, tt.status)
			}
		})
	}
}

func TestOrderedListAndDryRun(t *testing.T) {
	s, reg := compile(t,
		`{mode: dryRun, rules: [{name: would-block, action: deny, match: {pathPrefix: /}}]}`,
		`{rules: [{name: pass, action: deny, match: {pathPrefix: /nothing}}]}`,
		`{rules: [{name: admin, action: deny, match: {pathPrefix: /admin}}], defaultAction: allow}`,
		`{defaultAction: deny}`)
	d := s.Evaluate(get("/shop"))
	if d.Action != Allow || d.Policy != "retail/p2" || d.Rule != "" {
		t.Errorf("third policy's default allow should decide: %+v", d)
	}
	if d.DryRun.Action != Deny || d.DryRun.Rule != "would-block" {
		t.Errorf("dry-run verdict = %+v", d.DryRun)
	}
	d = s.Evaluate(get("/admin/x"))
	if d.Action != Deny || d.Rule != "admin" {
		t.Errorf("got %+v", d)
	}
	hits := map[string]uint64{}
	for _, c := range reg.Counters() {
		hits[c.Policy+"/"+c.Rule] = c.Hits()
	}
	if hits["retail/p0/would-block"] != 2 || hits["retail/p2/admin"] != 1 || hits["retail/p2/"] != 1 || hits["retail/p3/"] != 0 {
		t.Errorf("hits = %v", hits)
	}
	preg := prometheus.NewPedanticRegistry()
	preg.MustRegister(reg)
	mfs, err := preg.Gather()
	if err != nil || len(mfs) != 1 || len(mfs[0].GetMetric()) != len(reg.Counters()) {
		t.Errorf("gathered %v, %v; want %d series", mfs, err, len(reg.Counters()))
	}
	// Recompiling with the same registry keeps the counters.
	s2, err := Compile(mustPolicies(t, `{mode: dryRun, rules: [{name: would-block, action: deny, match: {pathPrefix: /}}]}`), reg)
	if err != nil {
		t.Fatal(err)
	}
	s2.Evaluate(get("/"))
	for _, c := range reg.Counters() {
		if c.Rule == "would-block" && c.Hits() != 3 {
			t.Errorf("counter reset by recompilation: %d", c.Hits())
		}
	}
	if d := (*Set)(nil).Evaluate(get("/")); d.Action != None {
		t.Error("nil set decided")
	}
}

func TestCompileErrors(t *testing.T) {
	tests := []struct{ doc, want string }{
		{`{rules: [{name: a, action: deny, match: {clientCIDRs: [10.0.0.0/33]}}]}`, "spec.rules[0].match.clientCIDRs[0]"},
		{`{rules: [{name: a, action: deny, match: {pathRegex: "("}}]}`, "spec.rules[0].match.pathRegex"},
		{`{rules: [{name: a, action: explode}]}`, "spec.rules[0].action"},
		{`{rules: [{name: a, action: redirect}]}`, "spec.rules[0].redirectURL"},
		{`{mode: maybe}`, "spec.mode"},
		{`{rules: [{name: a, action: deny, match: {headers: [{name: x, regex: "a{2,1}"}]}}]}`, "spec.rules[0].match.headers[0].regex"},
	}
	for _, tt := range tests {
		_, err := Compile(mustPolicies(t, tt.doc), nil)
		if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "retail/p0") {
			t.Errorf("%s: error %v, want mention of %s", tt.doc, err, tt.want)
		}
	}
}

func TestEvaluateDoesNotAllocate(t *testing.T) {
	s, _ := compile(t, `{algorithm: denyOverrides, rules: [
  {name: a, action: deny, match: {clientCIDRs: [203.0.113.0/24, "2001:db8::/32", 10.1.2.3]}},
  {name: b, action: deny, match: {hosts: [shop.example.com, "*.example.org"], pathRegex: '^/admin', methods: [POST]}},
  {name: c, action: allow, match: {headers: [{name: x-env, exact: prod}], queryParams: [{name: id, regex: '^[0-9]+$'}]}},
  {name: d, action: deny, match: {claims: [{name: groups, exact: banned}], sni: ["*.example.com"]}}]}`)
	r := &breq{client: netip.MustParseAddr("198.51.100.7"), host: []byte("shop.example.com:8443"), path: []byte("/api/users"),
		method: []byte("GET"), sni: []byte("Shop.Example.com"),
		headers: map[string][]byte{"x-env": []byte("prod")}, query: map[string][]byte{"id": []byte("42")},
		claims: map[string][]byte{"groups": []byte("a\x1fb")}}
	var rq Request = r
	if d := s.Evaluate(rq); d.Action != Allow || d.Rule != "c" {
		t.Fatalf("got %+v", d)
	}
	if n := testing.AllocsPerRun(200, func() { s.Evaluate(rq) }); n != 0 {
		t.Errorf("Evaluate allocated %.1f times per run", n)
	}
}

// breq is an allocation-free Request.
type breq struct {
	client                  netip.Addr
	host, path, method, sni []byte
	headers, query, claims  map[string][]byte
}

func (r *breq) ClientAddr() netip.Addr         { return r.client }
func (r *breq) RequestHost() []byte            { return r.host }
func (r *breq) RequestPath() []byte            { return r.path }
func (r *breq) RequestMethod() []byte          { return r.method }
func (r *breq) ServerName() []byte             { return r.sni }
func (r *breq) Header(n string) ([]byte, bool) { v, ok := r.headers[n]; return v, ok }
func (r *breq) Query(n string) ([]byte, bool)  { v, ok := r.query[n]; return v, ok }
func (r *breq) Claim(n string) ([]byte, bool)  { v, ok := r.claims[n]; return v, ok }
