package cli

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/client"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs (go test -update rewrites it)\n got:\n%s\nwant:\n%s", p, got, want)
	}
}

var testNow = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func rawObj(t *testing.T, s string) *client.Raw {
	t.Helper()
	r, err := client.ParseRaw([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func testPools(t *testing.T) []*client.Raw {
	return []*client.Raw{
		rawObj(t, `{"apiVersion":"meridian/v1","kind":"OriginPool","metadata":{"name":"shop","namespace":"retail","labels":{"app":"shop"},"uid":"u1","resourceVersion":"12","generation":2,"creationTimestamp":"2026-11-25T11:59:15Z"},
			"spec":{"endpoints":[{"address":"10.0.0.1:80","weight":1},{"address":"10.0.0.2:80","weight":1}],"loadBalancing":"roundRobin","healthCheckRef":"hc"},
			"status":{"rollout":"applied 3/3 sites"}}`),
		rawObj(t, `{"apiVersion":"meridian/v1","kind":"OriginPool","metadata":{"name":"api-backends-long-name","namespace":"payments","creationTimestamp":"2026-11-22T12:00:00Z"},
			"spec":{"endpoints":[{"address":"a:1"},{"address":"b:1"},{"address":"c:1"},{"address":"d:1"},{"address":"e:1"}],"loadBalancing":"maglev"}}`),
		rawObj(t, `{"apiVersion":"meridian/v1","kind":"OriginPool","metadata":{"name":"fresh","namespace":"retail","creationTimestamp":"2026-11-25T10:30:00Z"},"spec":{"endpoints":[{"address":"x:1"}],"healthCheck":{"interval":"5s"}}}`),
	}
}

func TestPrinters(t *testing.T) {
	ki, _ := v1.LookupKind("OriginPool")
	cases := []struct {
		file string
		out  string
		opts printOptions
	}{
		{"get-table.txt", outTable, printOptions{}},
		{"get-table-all-namespaces.txt", outTable, printOptions{allNamespaces: true}},
		{"get-wide.txt", outWide, printOptions{}},
		{"get-no-headers.txt", outTable, printOptions{noHeaders: true}},
		{"get-name.txt", outName, printOptions{}},
		{"get-list.yaml", outYAML, printOptions{}},
		{"get-list.json", outJSON, printOptions{}},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			var buf bytes.Buffer
			tc.opts.now = testNow
			if err := printList(&buf, tc.out, ki, testPools(t), tc.opts); err != nil {
				t.Fatal(err)
			}
			golden(t, tc.file, buf.Bytes())
		})
	}
	t.Run("get-one.yaml", func(t *testing.T) {
		var buf bytes.Buffer
		if err := printObject(&buf, outYAML, ki, testPools(t)[0], printOptions{}); err != nil {
			t.Fatal(err)
		}
		golden(t, "get-one.yaml", buf.Bytes())
	})
	if err := printList(&bytes.Buffer{}, "xml", ki, nil, printOptions{}); err == nil {
		t.Fatal("unknown format: want an error")
	}
}

func TestWideColumnsOtherKinds(t *testing.T) {
	objs := map[string]string{
		"HTTPLoadBalancer": `{"kind":"HTTPLoadBalancer","metadata":{"name":"shop","namespace":"retail"},"spec":{"domains":["shop.example.com","*"],"listeners":[{"port":8080},{"port":8443}],"routes":[{"pool":"a"},{"pool":"b"}],"defaultPool":"web","sites":{"virtualSite":"eu"}}}`,
		"TCPLoadBalancer":  `{"kind":"TCPLoadBalancer","metadata":{"name":"db","namespace":"retail"},"spec":{"listeners":[{"port":5432}],"pool":"pg"}}`,
		"RoleBinding":      `{"kind":"RoleBinding","metadata":{"name":"ci"},"spec":{"role":"devops","namespaces":["retail"],"subjects":[{"kind":"APIToken","name":"ci"}]}}`,
		"ServicePolicy":    `{"kind":"ServicePolicy","metadata":{"name":"p","namespace":"retail"},"spec":{"mode":"enforce","rules":[{},{}],"defaultAction":"next"}}`,
		"VirtualSite":      `{"kind":"VirtualSite","metadata":{"name":"eu"},"spec":{"selector":{"matchLabels":{"region":"eu","tier":"edge"}}}}`,
		"Namespace":        `{"kind":"Namespace","metadata":{"name":"retail","creationTimestamp":"2024-11-25T12:00:00Z"}}`,
		"RateLimiter":      `{"kind":"RateLimiter","metadata":{"name":"per-client","namespace":"retail"},"spec":{"rate":100,"per":"second","burst":200}}`,
		"User":             `{"kind":"User","metadata":{"name":"alice"},"spec":{"displayName":"Alice","password":"(set)","disabled":true}}`,
		"SiteToken":        `{"kind":"SiteToken","metadata":{"name":"eu"},"spec":{"expires":"72h0m0s","maxUses":25000,"autoApprove":true},"status":{"uses":3,"expiresAt":"2026-11-28T12:00:00Z"}}`,
		"Site":             `{"kind":"Site","metadata":{"name":"station-1","labels":{"region":"eu"}},"status":{"state":"approved","online":true,"lastSeen":"2026-11-25T11:59:58Z","nodeVersion":"0.4.0","capabilityVersion":3,"appliedVersion":"42-ab12","errors":["shop: listener 8080 taken"]}}`,
		"Certificate":      certificateJSON(t),
		"SecurityBinding":  `{"kind":"SecurityBinding","metadata":{"name":"baseline","namespace":"retail"},"spec":{"appFirewall":"crs","servicePolicies":["block-bad-ips","geo"]}}`,
	}
	var buf bytes.Buffer
	for _, kind := range []string{"HTTPLoadBalancer", "TCPLoadBalancer", "RoleBinding", "ServicePolicy", "VirtualSite", "Namespace",
		"RateLimiter", "User", "SiteToken", "Site", "Certificate", "SecurityBinding"} {
		ki, ok := v1.LookupKind(kind)
		if !ok {
			t.Fatalf("kind %s not registered", kind)
		}
		if err := printList(&buf, outWide, ki, []*client.Raw{rawObj(t, objs[kind])}, printOptions{now: testNow}); err != nil {
			t.Fatal(err)
		}
		buf.WriteString("\n")
	}
	golden(t, "get-wide-kinds.txt", buf.Bytes())
}

func TestHumanDuration(t *testing.T) {
	cases := map[time.Duration]string{
		-time.Second:          "0s",
		45 * time.Second:      "45s",
		119 * time.Second:     "119s",
		2 * time.Minute:       "2m",
		119 * time.Minute:     "119m",
		5 * time.Hour:         "5h",
		47 * time.Hour:        "47h",
		72 * time.Hour:        "3d",
		800 * 24 * time.Hour:  "2y",
		3650 * 24 * time.Hour: "10y",
	}
	for d, want := range cases {
		if got := humanDuration(d); got != want {
			t.Errorf("humanDuration(%v) = %s, want %s", d, got, want)
		}
	}
	if got := age(nil, testNow); got != "<unknown>" {
		t.Errorf("age(nil) = %s", got)
	}
}

func TestDescribe(t *testing.T) {
	ki, _ := v1.LookupKind("OriginPool")
	obj := rawObj(t, `{"apiVersion":"meridian/v1","kind":"OriginPool","metadata":{"name":"shop","namespace":"retail","tenant":"acme","labels":{"app":"shop","tier":"web"},"uid":"u1","resourceVersion":"12","generation":2,"creationTimestamp":"2026-11-25T11:00:00Z"},
		"spec":{"endpoints":[{"address":"10.0.0.1:80","weight":1}],"loadBalancing":"roundRobin"},
		"status":{"observedGeneration":2,"rollout":"applied 2/3 sites; 1 failed: site-7","conditions":[{"type":"Ready","status":"False","reason":"RolloutIncomplete","message":"1 site failed","lastTransitionTime":"2026-11-25T11:55:00Z"}],"errors":["site-7: endpoint 10.0.0.1:80 unreachable"]}}`)
	records := []client.AuditRecord{
		{"seq": 41.0, "time": "2026-11-25T11:00:00Z", "principal": "User:alice", "verb": "create", "outcome": "allowed", "code": 201.0},
		{"seq": 44.0, "time": "2026-11-25T11:50:00Z", "principal": map[string]any{"name": "ci", "kind": "APIToken"}, "verb": "update", "outcome": "allowed", "code": 200.0},
	}
	var buf bytes.Buffer
	if err := describeObject(&buf, ki, obj, records, nil, testNow); err != nil {
		t.Fatal(err)
	}
	buf.WriteString("=== forbidden audit, no status ===\n")
	bare := rawObj(t, `{"apiVersion":"meridian/v1","kind":"Namespace","metadata":{"name":"retail"}}`)
	nski, _ := v1.LookupKind("Namespace")
	if err := describeObject(&buf, nski, bare, nil, &client.StatusError{Code: 403, Reason: v1.StatusReasonForbidden}, testNow); err != nil {
		t.Fatal(err)
	}
	golden(t, "describe.txt", buf.Bytes())
}

func TestAuditTable(t *testing.T) {
	records := []client.AuditRecord{
		// The shape internal/audit.Record has on the wire.
		{"seq": 1.0, "tenant": "acme", "time": "2026-11-25T11:00:00.123Z", "principal": "User:alice", "verb": "login", "kind": "User", "name": "alice", "outcome": "allowed", "code": 200.0, "clientAddr": "127.0.0.1:5555", "prevHash": "", "hash": "aa"},
		{"seq": 2.0, "tenant": "acme", "time": "2026-11-25T11:01:00Z", "principal": "APIToken:scraper", "verb": "get", "kind": "OriginPool", "namespace": "retail", "outcome": "denied", "code": 403.0, "reason": "forbidden", "count": 57.0, "prevHash": "aa", "hash": "bb"},
		{"seq": 3.0, "tenant": "acme", "time": "2026-11-25T11:02:00Z", "principal": "User:alice", "verb": "update", "kind": "OriginPool", "namespace": "retail", "name": "shop", "outcome": "allowed", "code": 200.0, "beforeDigest": "hmac-sha256:0123456789abcdef0123", "afterDigest": "hmac-sha256:fedcba9876543210", "prevHash": "bb", "hash": "cc"},
	}
	var buf bytes.Buffer
	if err := printAuditTable(&buf, records, false, testNow); err != nil {
		t.Fatal(err)
	}
	buf.WriteString("\n")
	if err := printAuditTable(&buf, records, true, testNow); err != nil {
		t.Fatal(err)
	}
	golden(t, "audit-log.txt", buf.Bytes())
}

func TestHistoryTable(t *testing.T) {
	items := []*client.Raw{
		rawObj(t, `{"kind":"OriginPool","metadata":{"name":"shop","generation":1,"resourceVersion":"5"},"spec":{"loadBalancing":"roundRobin"}}`),
		rawObj(t, `{"kind":"OriginPool","metadata":{"name":"shop","generation":3,"resourceVersion":"9","labels":{"app":"shop"}},"spec":{"loadBalancing":"roundRobin"}}`),
		rawObj(t, `{"kind":"OriginPool","metadata":{"name":"shop","generation":2,"resourceVersion":"7"},"spec":{"loadBalancing":"maglev"}}`),
	}
	var buf bytes.Buffer
	if err := printHistory(&buf, items, 3); err != nil {
		t.Fatal(err)
	}
	golden(t, "history.txt", buf.Bytes())
	if specDigest(items[0]) != specDigest(items[1]) || specDigest(items[0]) == specDigest(items[2]) {
		t.Fatal("equal specs must have equal digests, different specs different ones")
	}
}

func TestDiffObjects(t *testing.T) {
	live := rawObj(t, `{"apiVersion":"meridian/v1","kind":"OriginPool","metadata":{"name":"shop","namespace":"retail","resourceVersion":"12","generation":2},"spec":{"endpoints":[{"address":"10.0.0.1:80","weight":1}],"loadBalancing":"roundRobin"}}`)
	want := rawObj(t, `{"apiVersion":"meridian/v1","kind":"OriginPool","metadata":{"name":"shop","namespace":"retail","resourceVersion":"13","generation":3},"spec":{"endpoints":[{"address":"10.0.0.1:80","weight":1},{"address":"10.0.0.2:80","weight":1}],"loadBalancing":"roundRobin"}}`)
	var buf bytes.Buffer
	differ, err := diffObjects(&buf, "OriginPool.retail.shop", live, want)
	if err != nil || !differ {
		t.Fatalf("differ=%v err=%v", differ, err)
	}
	buf.WriteString("=== new object ===\n")
	if differ, err := diffObjects(&buf, "OriginPool.retail.new", nil, want); err != nil || !differ {
		t.Fatalf("differ=%v err=%v", differ, err)
	}
	golden(t, "diff.txt", buf.Bytes())

	// Only the resourceVersion differs: no difference.
	same := rawObj(t, `{"apiVersion":"meridian/v1","kind":"OriginPool","metadata":{"name":"shop","namespace":"retail","resourceVersion":"99","generation":2},"spec":{"endpoints":[{"address":"10.0.0.1:80","weight":1}],"loadBalancing":"roundRobin"}}`)
	var none bytes.Buffer
	if differ, err := diffObjects(&none, "x", live, same); err != nil || differ || none.Len() != 0 {
		t.Fatalf("resourceVersion only: differ=%v err=%v out=%q", differ, err, none.String())
	}
}

func TestSameIntent(t *testing.T) {
	live := rawObj(t, `{"apiVersion":"meridian/v1","kind":"Namespace","metadata":{"name":"a","uid":"u","resourceVersion":"3","generation":1,"tenant":"acme","creationTimestamp":"2026-01-01T00:00:00Z"},"spec":{},"status":{"rollout":"x"}}`)
	preview := rawObj(t, `{"apiVersion":"meridian/v1","kind":"Namespace","metadata":{"name":"a","labels":{}},"status":{}}`)
	if !sameIntent(live, preview) {
		t.Fatal("console-set metadata, status and empty maps must not count as changes")
	}
	changed := rawObj(t, `{"apiVersion":"meridian/v1","kind":"Namespace","metadata":{"name":"a","labels":{"x":"1"}}}`)
	if sameIntent(live, changed) {
		t.Fatal("a label change is a change")
	}
}

func TestReportError(t *testing.T) {
	cases := []struct {
		err      error
		wantCode int
		want     string
	}{
		{errors.New("plain"), 1, "Error: plain\n"},
		{&client.StatusError{Code: 422, Reason: "Invalid", Message: `OriginPool "x" is invalid`, Causes: []client.Cause{{Field: "spec.endpoints", Message: "required value"}, {Field: "spec.loadBalancing", Message: `unsupported value "fast"`}}}, 1,
			"Error: OriginPool \"x\" is invalid\n  spec.endpoints: required value\n  spec.loadBalancing: unsupported value \"fast\"\n"},
		{&client.StatusError{Code: 422, Reason: "Invalid", Message: `OriginPool "x" is invalid: spec.a: bad; spec.b: worse`, Causes: []client.Cause{{Field: "spec.a", Message: "bad"}, {Field: "spec.b", Message: "worse"}}}, 1,
			"Error: OriginPool \"x\" is invalid\n  spec.a: bad\n  spec.b: worse\n"},
		{wrapf("originpool/x", &client.StatusError{Code: 404, Reason: "NotFound", Message: `OriginPool "x" not found`}), 1, "Error: originpool/x: OriginPool \"x\" not found\n"},
		{&ExitError{Code: 2, Err: errors.New("boom")}, 2, "Error: boom\n"},
		{&client.StatusError{Code: 401, Reason: "Unauthorized", Message: "unknown or invalid bearer token"}, 1,
			"Error: unknown or invalid bearer token\nHint: the token is missing, unknown or expired: run `meridian login`\n"},
		{silentExit(1), 1, ""},
	}
	for _, tc := range cases {
		var buf bytes.Buffer
		if code := ReportError(&buf, tc.err); code != tc.wantCode || buf.String() != tc.want {
			t.Errorf("ReportError(%v) = %d %q, want %d %q", tc.err, code, buf.String(), tc.wantCode, tc.want)
		}
	}
	_, err := v1.DecodeAll([]byte("apiVersion: meridian/v1\nkind: OriginPool\nmetadata: {name: x}\nspec: {endpoints: 3, bogus: 1}\n"))
	var buf bytes.Buffer
	ReportError(&buf, wrapf("reading a.yaml", err))
	golden(t, "decode-error.txt", buf.Bytes())
}

func wrapf(prefix string, err error) error { return &wrapped{prefix, err} }

type wrapped struct {
	p   string
	err error
}

func (w *wrapped) Error() string { return w.p + ": " + w.err.Error() }
func (w *wrapped) Unwrap() error { return w.err }

func TestCarriesSecret(t *testing.T) {
	objs, err := v1.DecodeAll([]byte(`apiVersion: meridian/v1
kind: User
metadata: {name: alice}
spec: {password: "a-long-password"}
---
apiVersion: meridian/v1
kind: User
metadata: {name: bob}
spec: {password: "(set)"}
---
apiVersion: meridian/v1
kind: User
metadata: {name: carol}
---
apiVersion: meridian/v1
kind: Namespace
metadata: {name: retail}
`))
	if err != nil {
		t.Fatal(err)
	}
	want := []bool{true, false, false, false}
	for i, o := range objs {
		if got := carriesSecret(o); got != want[i] {
			t.Errorf("%s: carriesSecret = %v, want %v", o.GetMetadata().Name, got, want[i])
		}
	}
}

// certificateJSON returns a Certificate object holding a fresh self-signed
// certificate for shop.example.com valid until 2027-01-01.
func certificateJSON(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "shop"},
		DNSNames: []string{"shop.example.com", "www.shop.example.com"}, NotBefore: testNow.Add(-time.Hour),
		NotAfter: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	pemData := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	obj := map[string]any{"kind": "Certificate", "metadata": map[string]any{"name": "shop-cert", "namespace": "retail"},
		"spec": map[string]any{"certificate": string(pemData), "privateKey": "(set)"}}
	data, _ := json.Marshal(obj)
	return string(data)
}
