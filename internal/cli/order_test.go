package cli

import (
	"strings"
	"testing"

	v1 "github.com/meridian-platform/meridian/api/v1"
)

func mustDecode(t *testing.T, doc string) []v1.Object {
	t.Helper()
	objs, err := v1.DecodeAll([]byte(doc))
	if err != nil {
		t.Fatalf("decoding test input: %v", err)
	}
	if err := setNamespaces(objs, "retail", false); err != nil {
		t.Fatal(err)
	}
	return objs
}

func keysOf(objs []v1.Object) string {
	parts := make([]string, len(objs))
	for i, o := range objs {
		parts[i] = o.GetTypeMeta().Kind + "/" + o.GetMetadata().Name
	}
	return strings.Join(parts, " ")
}

const (
	docLB = `apiVersion: meridian/v1
kind: HTTPLoadBalancer
metadata: {name: shop}
spec:
  domains: ["shop.example.com"]
  listeners: [{port: 8080}]
  routes:
    - {match: {pathPrefix: /api}, pool: api}
  defaultPool: web
  sites: {virtualSite: eu}
`
	docPoolAPI = `apiVersion: meridian/v1
kind: OriginPool
metadata: {name: api}
spec: {endpoints: [{address: "127.0.0.1:9001"}], healthCheckRef: hc}
`
	docPoolWeb = `apiVersion: meridian/v1
kind: OriginPool
metadata: {name: web}
spec: {endpoints: [{address: "127.0.0.1:9000"}]}
`
	docNS = `apiVersion: meridian/v1
kind: Namespace
metadata: {name: retail}
`
	docVS = `apiVersion: meridian/v1
kind: VirtualSite
metadata: {name: eu}
spec: {selector: {matchLabels: {region: eu}}}
`
	docHC = `apiVersion: meridian/v1
kind: HealthCheck
metadata: {name: hc}
spec: {http: {path: /healthz}}
`
	docTCP = `apiVersion: meridian/v1
kind: TCPLoadBalancer
metadata: {name: db}
spec: {listeners: [{port: 5432}], pool: web}
`
)

func join(docs ...string) string { return strings.Join(docs, "---\n") }

func TestOrderForApply(t *testing.T) {
	cases := []struct {
		name string
		in   string
		want string
	}{
		{
			name: "referrers after what they refer to, namespace first",
			in:   join(docLB, docPoolAPI, docPoolWeb, docNS),
			want: "Namespace/retail OriginPool/api OriginPool/web HTTPLoadBalancer/shop",
		},
		{
			name: "chain of references across kinds",
			in:   join(docLB, docPoolAPI, docHC, docVS, docPoolWeb),
			want: "VirtualSite/eu HealthCheck/hc OriginPool/api OriginPool/web HTTPLoadBalancer/shop",
		},
		{
			name: "references to objects outside the set are ignored",
			in:   join(docLB, docTCP),
			want: "HTTPLoadBalancer/shop TCPLoadBalancer/db",
		},
		{
			name: "independent objects keep registry order, then input order",
			in:   join(docPoolWeb, docTCP, docNS, docPoolAPI),
			want: "Namespace/retail OriginPool/web OriginPool/api TCPLoadBalancer/db",
		},
		{
			name: "already ordered input is unchanged",
			in:   join(docNS, docVS, docHC, docPoolAPI, docPoolWeb, docLB, docTCP),
			want: "Namespace/retail VirtualSite/eu HealthCheck/hc OriginPool/api OriginPool/web HTTPLoadBalancer/shop TCPLoadBalancer/db",
		},
		{
			name: "empty",
			in:   "",
			want: "",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, cycle := orderForApply(mustDecode(t, tc.in))
			if len(cycle) != 0 {
				t.Fatalf("unexpected cycle %v", cycle)
			}
			if k := keysOf(got); k != tc.want {
				t.Fatalf("order\n got: %s\nwant: %s", k, tc.want)
			}
		})
	}
}

func TestOrderForApplyNamespaceOfOtherNamespace(t *testing.T) {
	objs := mustDecode(t, join(docPoolWeb, docNS, `apiVersion: meridian/v1
kind: Namespace
metadata: {name: other}
`, `apiVersion: meridian/v1
kind: OriginPool
metadata: {name: web, namespace: other}
spec: {endpoints: [{address: "127.0.0.1:9000"}]}
`))
	got, _ := orderForApply(objs)
	if k := keysOf(got); k != "Namespace/retail Namespace/other OriginPool/web OriginPool/web" {
		t.Fatalf("order: %s", k)
	}
	if got[2].GetMetadata().Namespace != "retail" || got[3].GetMetadata().Namespace != "other" {
		t.Fatal("pools out of input order")
	}
}

// fakeRef is an object whose references are given, to build cycles that
// the real kinds' validation would not allow in one file.
type fakeRef struct {
	v1.Envelope
	refs []v1.Reference
}

func (f *fakeRef) References() []v1.Reference { return f.refs }

func ref(kind, name string, to ...string) *fakeRef {
	f := &fakeRef{}
	f.Kind, f.Metadata.Name = kind, name
	for _, n := range to {
		f.refs = append(f.refs, v1.Reference{Kind: kind, Name: n})
	}
	return f
}

func TestOrderForApplyCycle(t *testing.T) {
	objs := []v1.Object{ref("Widget", "a", "b"), ref("Widget", "b", "a"), ref("Widget", "c"), ref("Widget", "d", "c")}
	got, cycle := orderForApply(objs)
	if k := keysOf(got); k != "Widget/c Widget/d Widget/a Widget/b" {
		t.Fatalf("order: %s", k)
	}
	if len(cycle) != 2 || cycle[0].Name != "a" || cycle[1].Name != "b" {
		t.Fatalf("cycle: %v", cycle)
	}
	if msg := describeCycle(cycle); msg != "reference cycle among: Widget a, Widget b" {
		t.Fatalf("message: %s", msg)
	}
	// Self references are not cycles.
	if _, cycle := orderForApply([]v1.Object{ref("Widget", "s", "s")}); len(cycle) != 0 {
		t.Fatalf("self reference reported as cycle: %v", cycle)
	}
}

func TestSetNamespaces(t *testing.T) {
	objs, err := v1.DecodeAll([]byte(join(docPoolWeb, docNS)))
	if err != nil {
		t.Fatal(err)
	}
	if err := setNamespaces(objs, "shop", false); err != nil {
		t.Fatal(err)
	}
	if objs[0].GetMetadata().Namespace != "shop" || objs[1].GetMetadata().Namespace != "" {
		t.Fatalf("namespaces: %q %q", objs[0].GetMetadata().Namespace, objs[1].GetMetadata().Namespace)
	}
	if err := setNamespaces(objs, "other", true); err == nil || !strings.Contains(err.Error(), `does not match -n "other"`) {
		t.Fatalf("explicit -n mismatch: %v", err)
	}
	bad, err := v1.DecodeAll([]byte("apiVersion: meridian/v1\nkind: Namespace\nmetadata: {name: x, namespace: other}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := setNamespaces(bad, "other", false); err == nil || !strings.Contains(err.Error(), "not namespaced") {
		t.Fatalf("namespace on a tenant-scoped kind: %v", err)
	}
}
