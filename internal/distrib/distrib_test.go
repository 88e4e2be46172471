package distrib_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/internal/distrib"
	"github.com/meridian-platform/meridian/internal/node/agent"
	"github.com/meridian-platform/meridian/internal/sites/sitestest"
	"github.com/meridian-platform/meridian/internal/testcert"
	"github.com/meridian-platform/meridian/internal/testfixture"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

type testNode struct {
	rec *sitestest.Recorder
	a   *agent.Agent
	dir string
}

func startNode(t *testing.T, e *sitestest.Env, token, name string) *testNode {
	t.Helper()
	n := &testNode{rec: &sitestest.Recorder{Site: name}, dir: filepath.Join(t.TempDir(), name)}
	n.a = sitestest.RunAgent(t, agent.Options{ConsoleURL: e.URL, Token: token, Name: name, DataDir: n.dir, CAData: e.CA, Applier: n.rec})
	return n
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimSpace(s), "\n", "\n    ")
}

const tenantObjects = `
apiVersion: meridian/v1
kind: Namespace
metadata: {name: retail}
---
apiVersion: meridian/v1
kind: VirtualSite
metadata: {name: eu}
spec: {selector: {matchLabels: {region: eu}}}
---
apiVersion: meridian/v1
kind: VirtualSite
metadata: {name: us}
spec: {selector: {matchExpressions: [{key: region, operator: In, values: [us]}]}}
---
apiVersion: meridian/v1
kind: OriginPool
metadata: {name: pool-%[1]s, namespace: retail}
spec: {endpoints: [{address: "127.0.0.1:9"}]}
---
apiVersion: meridian/v1
kind: Certificate
metadata: {name: used-%[1]s, namespace: retail}
spec:
  certificate: |
%[2]s
  privateKey: |
%[3]s
---
apiVersion: meridian/v1
kind: Certificate
metadata: {name: unused-%[1]s, namespace: retail}
spec:
  certificate: |
%[2]s
  privateKey: |
%[3]s
---
apiVersion: meridian/v1
kind: HTTPLoadBalancer
metadata: {name: eu-%[1]s, namespace: retail, labels: {reject-on: d-eu2}}
spec:
  domains: ["*"]
  listeners: [{port: 8443, tls: {certificateRef: used-%[1]s}}]
  defaultPool: pool-%[1]s
  sites: {virtualSite: eu}
---
apiVersion: meridian/v1
kind: HTTPLoadBalancer
metadata: {name: us-%[1]s, namespace: retail}
spec:
  domains: ["*"]
  listeners: [{port: 8080}]
  defaultPool: pool-%[1]s
  sites: {virtualSite: us}
`

func applyTenant(t *testing.T, e *sitestest.Env, tenant, tag string) (keyPEM string) {
	c, k := testcert.SelfSigned(t, tag+".example")
	e.Apply(t, tenant, sitestest.MustDecode(t, fmt.Sprintf(tenantObjects, tag, indent(c), indent(k)))...)
	return k
}

// TestPlacementIsolationAndRollout: each site gets only its tenant's
// objects placed on the virtual sites that select it, with the secrets
// they reference and no others; sites with the same selection share one
// snapshot; a label change moves a site; a rejection shows in status.
func TestPlacementIsolationAndRollout(t *testing.T) {
	e := sitestest.Start(t)
	e.CreateTenant(t, "other")
	key := applyTenant(t, e, "", "d")
	applyTenant(t, e, "other", "o")
	dtok := e.CreateToken(t, "", "t", v1.SiteTokenSpec{MaxUses: 10, AutoApprove: true, Labels: map[string]string{"region": "eu"}})
	otok := e.CreateToken(t, "other", "t", v1.SiteTokenSpec{MaxUses: 10, AutoApprove: true, Labels: map[string]string{"region": "eu"}})
	ptok := e.CreateToken(t, "", "pending", v1.SiteTokenSpec{MaxUses: 10, Labels: map[string]string{"region": "eu"}})

	deu := startNode(t, e, dtok, "d-eu")
	deu2 := startNode(t, e, dtok, "d-eu2")
	oeu := startNode(t, e, otok, "o-eu")
	pend := startNode(t, e, ptok, "d-pending")

	wantEU := "Certificate retail/used-d,HTTPLoadBalancer retail/eu-d,OriginPool retail/pool-d"
	testfixture.WaitFor(t, "d-eu's objects", func() bool { return deu.rec.Keys() == wantEU })
	testfixture.WaitFor(t, "o-eu's objects", func() bool {
		return oeu.rec.Keys() == "Certificate retail/used-o,HTTPLoadBalancer retail/eu-o,OriginPool retail/pool-o"
	})
	// The secret arrives in clear, and only the referenced certificate.
	cert := deu.rec.Get("Certificate retail/used-d").(*v1.Certificate)
	if strings.TrimSpace(string(cert.Spec.PrivateKey)) != strings.TrimSpace(key) {
		t.Fatalf("certificate key not delivered in clear: %q", cert.Spec.PrivateKey)
	}
	for _, o := range []*testNode{deu, oeu} {
		if k := o.rec.Keys(); strings.Contains(k, "unused") || strings.Contains(k, "us-") {
			t.Fatalf("site got objects it does not need: %s", k)
		}
	}
	// A pending site gets nothing until approved.
	testfixture.WaitFor(t, "the pending site's empty snapshot", func() bool { return pend.a.Version() != "" })
	if k := pend.rec.Keys(); k != "" {
		t.Fatalf("pending site got %s", k)
	}
	admin := e.Client(t, "")
	ctx := context.Background()
	if err := admin.Patch(ctx, "Site", "", "d-pending", []byte(`{"spec":{"approved":true}}`), nil); err != nil {
		t.Fatal(err)
	}
	testfixture.WaitFor(t, "the approved site's objects", func() bool { return pend.rec.Keys() == wantEU })

	// Sites selecting the same objects share one compiled snapshot.
	d := e.Console.Distributor()
	s1, err1 := d.Snapshot(e.Tenant, "d-eu")
	s2, err2 := d.Snapshot(e.Tenant, "d-eu2")
	if err1 != nil || err2 != nil || s1 != s2 {
		t.Fatalf("sites with the same selection do not share a snapshot: %v %v", err1, err2)
	}

	// Rejection on one node only, shown in the object's and the site's
	// status.
	testfixture.WaitFor(t, "the rollout with a failure", func() bool {
		var lb v1.HTTPLoadBalancer
		admin.Get(ctx, "HTTPLoadBalancer", "retail", "eu-d", &lb)
		return lb.Status.Rollout == "applied 2/3 sites; 1 failed: d-eu2: listener port taken on this node"
	})
	testfixture.WaitFor(t, "the site's errors", func() bool {
		var s v1.Site
		admin.Get(ctx, "Site", "", "d-eu2", &s)
		return len(s.Status.Errors) == 1 && strings.Contains(s.Status.Errors[0], "eu-d")
	})

	// A label change moves the site.
	if err := admin.Patch(ctx, "Site", "", "d-eu", []byte(`{"metadata":{"labels":{"region":"us"}}}`), nil); err != nil {
		t.Fatal(err)
	}
	testfixture.WaitFor(t, "d-eu moved to us", func() bool { return deu.rec.Keys() == "HTTPLoadBalancer retail/us-d,OriginPool retail/pool-d" })
	// A new placement reaches a running site.
	if err := admin.Patch(ctx, "HTTPLoadBalancer", "retail", "us-d", []byte(`{"spec":{"sites":{"virtualSite":"eu"}}}`), nil); err != nil {
		t.Fatal(err)
	}
	testfixture.WaitFor(t, "us-d removed from d-eu", func() bool { return deu.rec.Keys() == "" })
	testfixture.WaitFor(t, "us-d on d-eu2", func() bool { return strings.Contains(deu2.rec.Keys(), "HTTPLoadBalancer retail/us-d") })
	if strings.Contains(oeu.rec.Keys(), "-d") {
		t.Fatalf("another tenant's site got %s", oeu.rec.Keys())
	}
}

func clientCert(t *testing.T, dir string) tls.Certificate {
	c, err := tls.LoadX509KeyPair(filepath.Join(dir, "node.crt"), filepath.Join(dir, "node.key"))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// openStream speaks the sync protocol by hand: hello, then the first
// answer.
func openStream(t *testing.T, e *sitestest.Env, cert *tls.Certificate, hello distrib.Hello) (*distrib.Update, error) {
	conn := e.Dial(t, cert)
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cs, err := conn.NewStream(ctx, &distrib.StreamDesc, distrib.StreamMethod)
	if err != nil {
		return nil, err
	}
	// A refused stream may end before the hello is sent: the status comes
	// with RecvMsg (SendMsg only says io.EOF).
	_ = cs.SendMsg(&distrib.NodeMessage{Hello: &hello})
	var up distrib.Update
	if err := cs.RecvMsg(&up); err != nil {
		return nil, err
	}
	return &up, nil
}

// TestHandCraftedRequestsGetNothingElse: a node cannot obtain another
// site's or another tenant's configuration, whatever it sends.
func TestHandCraftedRequestsGetNothingElse(t *testing.T) {
	e := sitestest.Start(t)
	e.CreateTenant(t, "other")
	applyTenant(t, e, "", "d")
	applyTenant(t, e, "other", "o")
	dtok := e.CreateToken(t, "", "t", v1.SiteTokenSpec{MaxUses: 10, AutoApprove: true, Labels: map[string]string{"region": "eu"}})
	utok := e.CreateToken(t, "", "u", v1.SiteTokenSpec{MaxUses: 10, AutoApprove: true, Labels: map[string]string{"region": "us"}})
	otok := e.CreateToken(t, "other", "t", v1.SiteTokenSpec{MaxUses: 10, AutoApprove: true, Labels: map[string]string{"region": "eu"}})
	us := startNode(t, e, utok, "d-us")
	eu := startNode(t, e, dtok, "d-eu")
	oeu := startNode(t, e, otok, "o-eu")
	for _, n := range []*testNode{us, eu, oeu} {
		testfixture.WaitFor(t, "first snapshot", func() bool { return n.a.Version() != "" })
	}
	usCert := clientCert(t, us.dir)

	// Its own configuration, by hand: only its objects.
	up, err := openStream(t, e, &usCert, distrib.Hello{Site: "d-us", CapabilityVersion: 1})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range up.Objects {
		got = append(got, string(o))
	}
	all := strings.Join(got, "\n")
	if !up.Full || !strings.Contains(all, `"us-d"`) || strings.Contains(all, `"eu-d"`) || strings.Contains(all, "eu-o") ||
		strings.Contains(all, "PRIVATE KEY") || up.Tenant != e.Tenant {
		t.Fatalf("own snapshot wrong: full=%v tenant=%q\n%s", up.Full, up.Tenant, all)
	}

	cases := []struct {
		name  string
		cert  *tls.Certificate
		hello distrib.Hello
		code  codes.Code
	}{
		{"another site's name in the hello", &usCert, distrib.Hello{Site: "d-eu", CapabilityVersion: 1}, codes.PermissionDenied},
		{"another tenant's site in the hello", &usCert, distrib.Hello{Site: "o-eu", CapabilityVersion: 1}, codes.PermissionDenied},
		{"no client certificate", nil, distrib.Hello{Site: "d-eu", CapabilityVersion: 1}, codes.Unauthenticated},
		{"bad capability", &usCert, distrib.Hello{CapabilityVersion: 0}, codes.InvalidArgument},
	}
	// A certificate from another console's CA naming d-eu of this tenant.
	other := sitestest.Start(t)
	xtok := other.CreateToken(t, "", "x", v1.SiteTokenSpec{MaxUses: 1, AutoApprove: true})
	x := startNode(t, other, xtok, "d-eu")
	testfixture.WaitFor(t, "foreign node", func() bool { return x.a.Version() != "" })
	xCert := clientCert(t, x.dir)
	cases = append(cases, struct {
		name  string
		cert  *tls.Certificate
		hello distrib.Hello
		code  codes.Code
	}{"certificate from another CA", &xCert, distrib.Hello{Site: "d-eu", CapabilityVersion: 1}, codes.Unauthenticated})

	for _, c := range cases {
		up, err := openStream(t, e, c.cert, c.hello)
		if status.Code(err) != c.code {
			t.Errorf("%s: got %v (update %v), want %s", c.name, err, up != nil, c.code)
		}
	}

	// A self-made registration cannot take over a name either.
	if _, err := openStream(t, e, &usCert, distrib.Hello{CapabilityVersion: 1}); err != nil {
		t.Fatalf("empty site name in hello (the certificate decides): %v", err)
	}
}
