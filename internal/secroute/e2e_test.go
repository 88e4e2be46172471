package secroute_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/internal/dataplane"
	"github.com/meridian-platform/meridian/internal/dataplane/config"
	"github.com/meridian-platform/meridian/internal/node"
	"github.com/meridian-platform/meridian/internal/policy/geoip"
	"github.com/meridian-platform/meridian/internal/policy/geoip/geoiptest"
	"github.com/meridian-platform/meridian/internal/testfixture"
)

const apiKey = "ci-key-0123456789abcdef"

// The objects of a namespace protected at three levels: a SecurityBinding
// (SecOps), the load balancer, and its routes.
const objects = `
apiVersion: meridian/v1
kind: OriginPool
metadata: {name: backend, namespace: shop}
spec: {endpoints: [{address: "BACKEND"}]}
---
apiVersion: meridian/v1
kind: SecurityBinding
metadata: {name: baseline, namespace: shop}
spec: {servicePolicies: [no-evil-agents]}
---
apiVersion: meridian/v1
kind: ServicePolicy
metadata: {name: no-evil-agents, namespace: shop}
spec: {rules: [{name: evil, action: deny, status: 418, match: {headers: [{name: User-Agent, regex: "(?i)evil"}]}}]}
---
apiVersion: meridian/v1
kind: ServicePolicy
metadata: {name: allow-all, namespace: shop}
spec: {defaultAction: allow}
---
apiVersion: meridian/v1
kind: ServicePolicy
metadata: {name: admins-only, namespace: shop}
spec:
  defaultAction: deny
  rules: [{name: admins, action: allow, match: {claims: [{name: roles, exact: admin}]}}]
---
apiVersion: meridian/v1
kind: ServicePolicy
metadata: {name: no-germany, namespace: shop}
spec: {rules: [{name: de, action: deny, status: 451, match: {countries: [DE]}}]}
---
apiVersion: meridian/v1
kind: RateLimiter
metadata: {name: per-user, namespace: shop}
spec: {rate: 2, per: minute, key: {type: jwtClaim, name: sub}}
---
apiVersion: meridian/v1
kind: AppFirewall
metadata: {name: crs, namespace: shop}
spec: {}
---
apiVersion: meridian/v1
kind: HTTPLoadBalancer
metadata: {name: api, namespace: shop}
spec:
  domains: ["*"]
  listeners: [{port: PORT, address: 127.0.0.1}]
  defaultPool: backend
  servicePolicies: [allow-all]
  authentication:
    jwt: {issuer: "https://id.example.com/", audiences: [shop], jwksFile: JWKS}
    apiKey: {keys: [{name: ci, key: "` + apiKey + `"}]}
    forwardClaims: [{claim: sub, header: X-User}]
  routes:
    - match: {path: /healthz}
      authentication: {disabled: true}
    - match: {pathPrefix: /admin}
      servicePolicies: [admins-only]
      rateLimiter: per-user
    - match: {pathPrefix: /waf}
      appFirewall: crs
    - match: {pathPrefix: /geo}
      servicePolicies: [no-germany]
`

type signer struct {
	key *ecdsa.PrivateKey
}

func newSigner(t *testing.T, dir string) (*signer, string) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b64 := func(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
	x, y := make([]byte, 32), make([]byte, 32)
	k.X.FillBytes(x)
	k.Y.FillBytes(y)
	doc, _ := json.Marshal(map[string]any{"keys": []map[string]string{
		{"kty": "EC", "crv": "P-256", "kid": "k1", "alg": "ES256", "use": "sig", "x": b64(x), "y": b64(y)}}})
	path := filepath.Join(dir, "jwks.json")
	if err := os.WriteFile(path, doc, 0o600); err != nil {
		t.Fatal(err)
	}
	return &signer{key: k}, path
}

func (s *signer) token(t *testing.T, sub string, roles ...string) string {
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"iss": "https://id.example.com/", "aud": "shop",
		"sub": sub, "roles": roles, "exp": time.Now().Add(time.Hour).Unix()})
	tok.Header["kid"] = "k1"
	s2, err := tok.SignedString(s.key)
	if err != nil {
		t.Fatal(err)
	}
	return s2
}

// startDataplane starts a data plane with opts (a discarding logger and
// access log unless set) and shuts it down when the test ends.
func startDataplane(t *testing.T, opts dataplane.Options) *dataplane.Server {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.AccessLog == nil {
		opts.AccessLog = io.Discard
	}
	dp := dataplane.New(opts)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		dp.Shutdown(ctx)
	})
	return dp
}

// applyDoc compiles the objects of doc with sec's compile options and
// applies them to dp; compile errors fail the test.
func applyDoc(t *testing.T, dp *dataplane.Server, sec *node.Security, doc string) {
	t.Helper()
	tab := config.Compile(decodeAll(t, doc), sec.CompileOptions()...)
	if len(tab.Errors) > 0 {
		t.Fatalf("compile errors: %v", tab.Errors)
	}
	if err := dp.Apply(context.Background(), tab); err != nil {
		t.Fatal(err)
	}
}

func decodeAll(t *testing.T, doc string) []v1.Object {
	objs, err := v1.DecodeAll([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		v1.DefaultObject(o)
		if errs := v1.ValidateObject(o); len(errs) > 0 {
			t.Fatalf("%s %s: %v", o.GetTypeMeta().Kind, o.GetMetadata().Name, errs)
		}
	}
	return objs
}

func TestRouteSecurityEndToEnd(t *testing.T) {
	dir := t.TempDir()
	var mu sync.Mutex
	var seenUser []string
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seenUser = append(seenUser, r.Header.Get("X-User"))
		mu.Unlock()
		io.WriteString(w, "ok")
	}))
	defer backend.Close()
	sig, jwksPath := newSigner(t, dir)
	countries := filepath.Join(dir, "country.mmdb")
	if err := geoiptest.WriteCountry(countries, map[string]string{"127.0.0.0/8": "DE"}); err != nil {
		t.Fatal(err)
	}
	geo, err := geoip.Open(countries)
	if err != nil {
		t.Fatal(err)
	}
	defer geo.Close()
	var events bytes.Buffer
	sec := node.NewSecurityWith(&events, node.SecurityOptions{GeoIP: geo})
	secCtx, stopSec := context.WithCancel(context.Background())
	secDone := make(chan struct{})
	go func() { sec.Run(secCtx); close(secDone) }()
	defer func() { stopSec(); <-secDone }()
	port := testfixture.FreePort(t)
	doc := strings.NewReplacer("BACKEND", strings.TrimPrefix(backend.URL, "http://"), "PORT", fmt.Sprint(port), "JWKS", jwksPath).Replace(objects)
	applyDoc(t, startDataplane(t, dataplane.Options{Stages: sec.Stages}), sec, doc)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	client := &http.Client{Timeout: 10 * time.Second}
	do := func(path string, hdr ...string) (int, http.Header) {
		t.Helper()
		req, _ := http.NewRequest("GET", base+path, nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, resp.Header
	}
	admin, user := sig.token(t, "alice", "admin", "dev"), sig.token(t, "bob", "dev")
	steps := []struct {
		name string
		path string
		hdr  []string
		want int
	}{
		{"healthz is exempt", "/healthz", nil, 200},
		{"the binding applies to exempt routes", "/healthz", []string{"User-Agent", "evil-bot"}, 418},
		{"no credentials", "/", nil, 401},
		{"api key", "/", []string{"X-API-Key", apiKey}, 200},
		{"wrong api key", "/", []string{"X-API-Key", "not-the-key-0123456789"}, 401},
		{"jwt", "/", []string{"Authorization", "Bearer " + user}, 200},
		{"bad jwt", "/", []string{"Authorization", "Bearer " + user + "x"}, 401},
		{"the route's policy replaces the load balancer's", "/admin", []string{"Authorization", "Bearer " + user}, 403},
		{"claims reach the route's policy", "/admin", []string{"Authorization", "Bearer " + admin}, 200},
		{"the binding runs before the load balancer's allow-all", "/", []string{"X-API-Key", apiKey, "User-Agent", "EVIL"}, 418},
		{"the route's WAF blocks", "/waf?q=%3Cscript%3Ealert(1)%3C/script%3E", []string{"X-API-Key", apiKey}, 403},
		{"no WAF on the load balancer", "/?q=%3Cscript%3Ealert(1)%3C/script%3E", []string{"X-API-Key", apiKey}, 200},
		{"country match", "/geo", []string{"X-API-Key", apiKey}, 451},
	}
	for _, s := range steps {
		if got, h := do(s.path, s.hdr...); got != s.want {
			t.Errorf("%s: GET %s = %d, want %d (%v)", s.name, s.path, got, s.want, h)
		} else if got == 401 && !strings.HasPrefix(h.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%s: 401 without a Bearer challenge: %v", s.name, h)
		}
	}
	// Rate limit by the JWT subject on /admin: 2 per minute for alice
	// (one already used above), bob's are his own.
	if got, _ := do("/admin", "Authorization", "Bearer "+admin); got != 200 {
		t.Fatalf("second admin request: %d", got)
	}
	if got, h := do("/admin", "Authorization", "Bearer "+admin); got != 429 || h.Get("Retry-After") == "" {
		t.Fatalf("third admin request: %d %v, want 429 with Retry-After", got, h)
	}
	// forwardClaims: the origin sees the subject, never a client's own header.
	mu.Lock()
	seenUser = nil
	mu.Unlock()
	do("/", "Authorization", "Bearer "+user, "X-User", "mallory")
	do("/", "X-API-Key", apiKey, "X-User", "mallory")
	mu.Lock()
	got := strings.Join(seenUser, ",")
	mu.Unlock()
	if got != "bob," {
		t.Fatalf("origin saw X-User %q, want \"bob,\"", got)
	}
	stopSec() // flushes the events
	<-secDone
	if ev := events.String(); !strings.Contains(ev, `"authn"`) || !strings.Contains(ev, "no-evil-agents") {
		t.Errorf("security events missing authn or binding policy entries:\n%s", ev)
	}
}
