package authstage

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"sigs.k8s.io/yaml"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/internal/authn"
	"github.com/meridian-platform/meridian/internal/dataplane"
	"github.com/meridian-platform/meridian/internal/dataplane/config"
	"github.com/meridian-platform/meridian/internal/policy"
	"github.com/meridian-platform/meridian/internal/policy/policystage"
	"github.com/meridian-platform/meridian/internal/ratelimit"
	"github.com/meridian-platform/meridian/internal/ratelimit/ratestage"
	"github.com/meridian-platform/meridian/internal/secevents"
	"github.com/meridian-platform/meridian/internal/testfixture"
)

// headers and sink are the stage tests' request headers and event sink.
type (
	headers = testfixture.Headers
	sink    = testfixture.Sink
)

type staticJWKS []byte

func (s staticJWKS) Load(context.Context) ([]byte, error) { return s, nil }

// TestChain runs authn → policy → rate limit as the pipeline orders them:
// claims decide policies, API keys key rate limits.
func TestChain(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pb, _ := key.PublicKey.Bytes()
	enc := base64.RawURLEncoding.EncodeToString
	jwks, _ := json.Marshal(map[string]any{"keys": []map[string]string{{"kty": "EC", "crv": "P-256", "kid": "k1", "x": enc(pb[1:33]), "y": enc(pb[33:])}}})
	tok := func(role string) string {
		tk := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"sub": "alice", "role": role, "exp": time.Now().Add(time.Hour).Unix()})
		tk.Header["kid"] = "k1"
		s, _ := tk.SignedString(key)
		return s
	}
	cfg := &authn.Config{JWT: &authn.JWTConfig{JWKSURL: "https://idp.example/jwks"},
		APIKey:        &authn.APIKeyConfig{Keys: []authn.APIKey{{Name: "partner", Key: "partner-key-0123456789"}}},
		ForwardClaims: []authn.ClaimHeader{{Claim: "sub", Header: "X-User"}}}
	ids := NewIdentities()
	ev := &sink{}
	vh := &config.VHost{ID: "t/shop", Namespace: "t", Spec: &v1.HTTPLoadBalancerSpec{ServicePolicies: []string{"p"}, RateLimiter: "rl"}}
	auth := Factory(func(*config.VHost) *authn.Config { return cfg }, NewCache(), ids,
		Options{Events: ev, Authn: authn.Options{KeySource: staticJWKS(jwks)}})(vh, nil).(*Stage)
	if auth.Err() != nil {
		t.Fatal(auth.Err())
	}
	// /admin is allowed to role=admin only, everything else goes on.
	pol := &v1.ServicePolicy{}
	if err := yaml.UnmarshalStrict([]byte(`{rules: [
  {name: admins, action: allow, match: {pathPrefix: /admin, claims: [{name: role, exact: admin}]}},
  {name: admin-others, action: deny, match: {pathPrefix: /admin}}]}`), &pol.Spec); err != nil {
		t.Fatal(err)
	}
	pol.Kind, pol.Metadata.Namespace, pol.Metadata.Name = "ServicePolicy", "t", "p"
	rl := &v1.RateLimiter{Spec: v1.RateLimiterSpec{Rate: 1, Burst: 1, Per: "hour", Key: v1.RateLimitKey{Type: "apiKey"}}}
	rl.Kind, rl.Metadata.Namespace, rl.Metadata.Name = "RateLimiter", "t", "rl"
	env := &dataplane.StageEnv{Table: config.Compile([]v1.Object{pol, rl})}
	ps := policystage.Factory(policy.NewRegistry(), policystage.Options{Claims: ids.Claims})(vh, env).(*policystage.Stage)
	rs := ratestage.Factory(ratelimit.NewRegistry(0), ratestage.Options{Claim: ids.Claim, APIKey: ids.APIKey})(vh, env).(*ratestage.Stage)

	run := func(path string, h headers) *dataplane.Exchange {
		x := &dataplane.Exchange{Method: []byte("GET"), Path: []byte(path), ReqHeaders: h, Client: netip.MustParseAddr("198.51.100.1")}
		for _, st := range []dataplane.RequestHeadersFilter{auth, ps, rs} {
			if st.OnRequestHeaders(x) == dataplane.Respond {
				break
			}
		}
		if ids.Identity(x) == nil && x.Reply.Status == 0 {
			t.Fatalf("%s passed without identity", path)
		}
		auth.OnDone(x)
		if ids.Identity(x) != nil {
			t.Fatal("identity kept after the request")
		}
		return x
	}

	x := run("/", headers{})
	if x.Reply.Status != 401 || !strings.Contains(x.Reply.Headers[0].Value, `error="invalid_request"`) {
		t.Fatalf("no credentials: %+v", x.Reply)
	}
	evs := ev.Events()
	if len(evs) != 1 || evs[0].Kind != secevents.KindAuthn {
		t.Fatalf("events %+v", evs)
	}
	x = run("/", headers{"authorization": "Bearer " + tok("user") + "x"})
	if x.Reply.Status != 401 || !strings.Contains(x.Reply.Headers[0].Value, "invalid_token") {
		t.Fatalf("bad token: %+v", x.Reply)
	}
	h := headers{"authorization": "Bearer " + tok("admin"), "x-user": "mallory"}
	x = run("/admin/x", h)
	if x.Reply.Status != 0 || h["x-user"] != "alice" {
		t.Fatalf("admin token: %+v, forwarded %q", x.Reply, h["x-user"])
	}
	x = run("/admin/x", headers{"authorization": "Bearer " + tok("user")})
	if x.Reply.Status != 403 {
		t.Fatalf("user token on /admin: %+v", x.Reply)
	}
	if x = run("/", headers{"x-api-key": "partner-key-0123456789"}); x.Reply.Status != 0 {
		t.Fatalf("API key: %+v", x.Reply)
	}
	if x = run("/", headers{"x-api-key": "partner-key-0123456789"}); x.Reply.Status != 429 {
		t.Fatalf("second API key request within the limit of 1/hour: %+v", x.Reply)
	}
}

func TestFailsClosed(t *testing.T) {
	st := Factory(func(*config.VHost) *authn.Config { return &authn.Config{} }, NewCache(), NewIdentities(), Options{})(
		&config.VHost{ID: "t/x", Spec: &v1.HTTPLoadBalancerSpec{}}, nil).(*Stage)
	x := &dataplane.Exchange{ReqHeaders: headers{}}
	if st.Err() == nil || st.OnRequestHeaders(x) != dataplane.Respond || x.Reply.Status != 503 {
		t.Fatalf("%v %+v", st.Err(), x.Reply)
	}
	if Factory(func(*config.VHost) *authn.Config { return nil }, NewCache(), NewIdentities(), Options{})(&config.VHost{}, nil) != nil {
		t.Error("stage without authentication")
	}
}
