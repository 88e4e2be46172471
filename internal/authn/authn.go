package authn

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Methods.
const (
	MethodJWT    = "jwt"
	MethodAPIKey = "apiKey"
	MethodMTLS   = "mtls"
)

// Config is the authentication of a load balancer or route. At least one
// configured method must succeed. (The HTTPLoadBalancer schema has no
// field for it yet; see the package README in the report.)
type Config struct {
	JWT    *JWTConfig    `json:"jwt,omitempty"`
	APIKey *APIKeyConfig `json:"apiKey,omitempty"`
	MTLS   *MTLSConfig   `json:"mtls,omitempty"`
	// ForwardClaims copies claims of a validated JWT into request headers
	// for the origin (incoming headers of those names are always removed).
	ForwardClaims []ClaimHeader `json:"forwardClaims,omitempty"`
}

// ClaimHeader forwards one claim.
type ClaimHeader struct {
	Claim  string `json:"claim"`
	Header string `json:"header"`
}

// JWTConfig validates bearer tokens.
type JWTConfig struct {
	Issuer    string   `json:"issuer,omitempty"`
	Audiences []string `json:"audiences,omitempty"`
	// Algorithms allowed (default RS256, ES256, EdDSA). "none" and HMAC
	// algorithms are never accepted: keys come from a public JWKS.
	Algorithms []string `json:"algorithms,omitempty"`
	// ClockSkew tolerated on exp, nbf and iat (default 60s).
	ClockSkew time.Duration `json:"clockSkew,omitempty"`
	// JWKSFile or JWKSURL is where the keys are (exactly one).
	JWKSFile string `json:"jwksFile,omitempty"`
	JWKSURL  string `json:"jwksURL,omitempty"`
	// Refresh is how often keys are reloaded (default 10m); MinRefresh
	// bounds reloads triggered by unknown key ids (default 30s).
	Refresh    time.Duration `json:"refresh,omitempty"`
	MinRefresh time.Duration `json:"minRefresh,omitempty"`
	// Header carrying the token (default Authorization, "Bearer " scheme).
	Header string `json:"header,omitempty"`
}

// APIKeyConfig accepts static API keys.
type APIKeyConfig struct {
	// Header carrying the key (default X-API-Key).
	Header string   `json:"header,omitempty"`
	Keys   []APIKey `json:"keys"`
}

// APIKey is one accepted key. Key is a secret (write-only in the API);
// only its SHA-256 is kept in memory after compilation.
type APIKey struct {
	Name string `json:"name"`
	Key  string `json:"key,omitempty"`
	// SHA256 is the hex digest of the key, as an alternative to Key.
	SHA256 string `json:"sha256,omitempty"`
}

// MTLSConfig checks the client certificate the TLS layer received.
type MTLSConfig struct {
	// CAPEM are the CAs client certificates must chain to.
	CAPEM string `json:"caPEM"`
	// AllowedNames, when set, must contain one of the certificate's DNS
	// names, URI SANs (e.g. spiffe://...) or its subject common name.
	AllowedNames []string `json:"allowedNames,omitempty"`
}

// MaxTokenBytes bounds a bearer token.
const MaxTokenBytes = 8192

// Identity is who a request authenticated as.
type Identity struct {
	Method  string
	Subject string
	// KeyName is the name of the API key (Method apiKey).
	KeyName string
	claims  map[string][]byte
}

// ClaimListSep separates the elements of list claims in Claim (the value
// policy.ClaimListSep expects).
const ClaimListSep = 0x1f

// Claim returns a claim as text: strings as they are, numbers and booleans
// in JSON form, lists as elements joined by ClaimListSep.
func (id *Identity) Claim(name string) ([]byte, bool) {
	if id == nil {
		return nil, false
	}
	v, ok := id.claims[name]
	return v, ok
}

// Error is an authentication failure, safe to show to clients.
type Error struct {
	Status int    // 401 or 403
	Code   string // invalid_request, invalid_token
	Reason string
}

func (e *Error) Error() string { return e.Reason }

// Authenticator is a compiled Config. It is safe for concurrent use.
type Authenticator struct {
	cfg       Config
	parser    *jwt.Parser
	keys      *KeySet
	jwtHeader string
	keyHeader string
	apiKeys   []apiKey
	roots     *x509.CertPool
	names     []string
}

type apiKey struct {
	name string
	sum  [32]byte
}

// Options are runtime dependencies of an Authenticator.
type Options struct {
	// Now is the clock (default time.Now).
	Now func() time.Time
	// KeySource overrides where the JWKS comes from (tests).
	KeySource KeySource
}

var defaultAlgs = []string{"RS256", "ES256", "EdDSA"}

var knownAlgs = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// New compiles a Config; errors name the offending field.
func New(cfg Config, opts Options) (*Authenticator, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	a := &Authenticator{cfg: cfg}
	if cfg.JWT == nil && cfg.APIKey == nil && cfg.MTLS == nil {
		return nil, errors.New("authn: at least one of jwt, apiKey and mtls is required")
	}
	if j := cfg.JWT; j != nil {
		algs := j.Algorithms
		if len(algs) == 0 {
			algs = defaultAlgs
		}
		for i, alg := range algs {
			if !slices.Contains(knownAlgs, alg) {
				return nil, fmt.Errorf("authn.jwt.algorithms[%d]: %q is not an allowed algorithm (one of %s)", i, alg, strings.Join(knownAlgs, ", "))
			}
		}
		skew := j.ClockSkew
		if skew == 0 {
			skew = time.Minute
		}
		if skew < 0 || skew > time.Hour {
			return nil, fmt.Errorf("authn.jwt.clockSkew: %v is not between 0 and 1h", skew)
		}
		popts := []jwt.ParserOption{jwt.WithValidMethods(algs), jwt.WithLeeway(skew), jwt.WithTimeFunc(opts.Now),
			jwt.WithExpirationRequired(), jwt.WithJSONNumber()}
		if j.Issuer != "" {
			popts = append(popts, jwt.WithIssuer(j.Issuer))
		}
		if len(j.Audiences) > 0 {
			popts = append(popts, jwt.WithAudience(j.Audiences...))
		}
		a.parser = jwt.NewParser(popts...)
		src := opts.KeySource
		switch {
		case src != nil:
		case j.JWKSFile != "" && j.JWKSURL != "":
			return nil, errors.New("authn.jwt: only one of jwksFile and jwksURL may be set")
		case j.JWKSFile != "":
			src = FileSource{Path: j.JWKSFile}
		case j.JWKSURL != "":
			if !strings.HasPrefix(j.JWKSURL, "https://") && !strings.HasPrefix(j.JWKSURL, "http://") {
				return nil, fmt.Errorf("authn.jwt.jwksURL: %q is not an http(s) URL", j.JWKSURL)
			}
			src = URLSource{URL: j.JWKSURL}
		default:
			return nil, errors.New("authn.jwt: jwksFile or jwksURL is required")
		}
		a.keys = NewKeySet(src, j.Refresh, j.MinRefresh, opts.Now)
		a.jwtHeader = j.Header
		if a.jwtHeader == "" {
			a.jwtHeader = "Authorization"
		}
	}
	if k := cfg.APIKey; k != nil {
		a.keyHeader = k.Header
		if a.keyHeader == "" {
			a.keyHeader = "X-API-Key"
		}
		if len(k.Keys) == 0 {
			return nil, errors.New("authn.apiKey.keys: at least one key is required")
		}
		for i, key := range k.Keys {
			ak := apiKey{name: key.Name}
			switch {
			case key.Name == "":
				return nil, fmt.Errorf("authn.apiKey.keys[%d].name: required", i)
			case key.Key != "" && key.SHA256 != "":
				return nil, fmt.Errorf("authn.apiKey.keys[%d]: only one of key and sha256 may be set", i)
			case key.Key != "":
				if len(key.Key) < 16 {
					return nil, fmt.Errorf("authn.apiKey.keys[%d].key: shorter than 16 characters", i)
				}
				ak.sum = sha256.Sum256([]byte(key.Key))
			default:
				b, err := hex.DecodeString(key.SHA256)
				if err != nil || len(b) != 32 {
					return nil, fmt.Errorf("authn.apiKey.keys[%d].sha256: must be 64 hex digits", i)
				}
				copy(ak.sum[:], b)
			}
			a.apiKeys = append(a.apiKeys, ak)
		}
	}
	if m := cfg.MTLS; m != nil {
		a.roots = x509.NewCertPool()
		if !a.roots.AppendCertsFromPEM([]byte(m.CAPEM)) {
			return nil, errors.New("authn.mtls.caPEM: no PEM certificate found")
		}
		a.names = m.AllowedNames
	}
	for i, f := range cfg.ForwardClaims {
		if f.Claim == "" || f.Header == "" {
			return nil, fmt.Errorf("authn.forwardClaims[%d]: claim and header are required", i)
		}
	}
	return a, nil
}

// Request is what authentication looks at.
type Request interface {
	Header(name string) ([]byte, bool)
	// PeerCertificates is the verified or unverified client chain (leaf
	// first); nil without TLS or without a client certificate.
	PeerCertificates() []*x509.Certificate
}

// Authenticate tries the configured methods (mTLS, API key, JWT) and
// returns the first identity that succeeds. When all fail, the error of
// the most specific method tried is returned.
func (a *Authenticator) Authenticate(ctx context.Context, r Request) (*Identity, *Error) {
	var last *Error
	if a.roots != nil {
		id, err := a.checkCert(r.PeerCertificates())
		if err == nil {
			return id, nil
		}
		last = err
	}
	if a.apiKeys != nil {
		if v, ok := r.Header(a.keyHeader); ok {
			id, err := a.checkAPIKey(v)
			if err == nil {
				return id, nil
			}
			last = err
		} else if last == nil {
			last = &Error{Status: 401, Code: "invalid_request", Reason: "missing " + a.keyHeader + " header"}
		}
	}
	if a.parser != nil {
		if v, ok := r.Header(a.jwtHeader); ok {
			id, err := a.checkJWT(ctx, v)
			if err == nil {
				return id, nil
			}
			last = err
		} else if last == nil || last.Code == "invalid_request" {
			last = &Error{Status: 401, Code: "invalid_request", Reason: "missing bearer token"}
		}
	}
	return nil, last
}

func (a *Authenticator) checkAPIKey(v []byte) (*Identity, *Error) {
	sum := sha256.Sum256(v)
	found := -1
	// Compare with every key, whatever matched, so timing says nothing.
	for i := range a.apiKeys {
		if subtle.ConstantTimeCompare(sum[:], a.apiKeys[i].sum[:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return nil, &Error{Status: 401, Code: "invalid_token", Reason: "unknown API key"}
	}
	name := a.apiKeys[found].name
	return &Identity{Method: MethodAPIKey, Subject: name, KeyName: name}, nil
}

func (a *Authenticator) checkJWT(ctx context.Context, v []byte) (*Identity, *Error) {
	tok := v
	if strings.EqualFold(a.jwtHeader, "Authorization") {
		if len(v) < 7 || !strings.EqualFold(string(v[:7]), "bearer ") {
			return nil, &Error{Status: 401, Code: "invalid_request", Reason: "authorization scheme is not Bearer"}
		}
		tok = bytes.TrimSpace(v[7:])
	}
	if len(tok) > MaxTokenBytes {
		return nil, &Error{Status: 401, Code: "invalid_token", Reason: "token too large"}
	}
	claims := jwt.MapClaims{}
	_, err := a.parser.ParseWithClaims(string(tok), claims, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		k, err := a.keys.Key(ctx, kid)
		if err != nil {
			return nil, err
		}
		if k.Alg != "" && k.Alg != t.Method.Alg() {
			return nil, fmt.Errorf("key %q is for %s, token uses %s", kid, k.Alg, t.Method.Alg())
		}
		return k.Pub, nil
	})
	if err != nil {
		return nil, &Error{Status: 401, Code: "invalid_token", Reason: jwtReason(err)}
	}
	id := &Identity{Method: MethodJWT, claims: flatten(claims)}
	if sub, ok := claims["sub"].(string); ok {
		id.Subject = sub
	}
	return id, nil
}

// jwtReason turns a validation error into a short reason for clients.
func jwtReason(err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "malformed token"
	case errors.Is(err, jwt.ErrTokenExpired):
		return "token expired"
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return "token not valid yet"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return "wrong issuer"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return "wrong audience"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return "required claim missing"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return "bad signature"
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return "token cannot be verified"
	}
	return "invalid token"
}

func flatten(c jwt.MapClaims) map[string][]byte {
	out := make(map[string][]byte, len(c))
	for k, v := range c {
		if b, ok := scalar(v); ok {
			out[k] = b
			continue
		}
		if list, ok := v.([]any); ok {
			var parts [][]byte
			for _, e := range list {
				if b, ok := scalar(e); ok {
					parts = append(parts, b)
				}
			}
			out[k] = bytes.Join(parts, []byte{ClaimListSep})
		}
	}
	return out
}

func scalar(v any) ([]byte, bool) {
	switch x := v.(type) {
	case string:
		return []byte(x), true
	case bool:
		return []byte(strconv.FormatBool(x)), true
	case fmt.Stringer: // json.Number
		return []byte(x.String()), true
	case float64:
		return []byte(strconv.FormatFloat(x, 'f', -1, 64)), true
	}
	return nil, false
}

func (a *Authenticator) checkCert(chain []*x509.Certificate) (*Identity, *Error) {
	if len(chain) == 0 {
		return nil, &Error{Status: 401, Code: "invalid_request", Reason: "client certificate required"}
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	leaf := chain[0]
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: a.roots, Intermediates: inter,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return nil, &Error{Status: 401, Code: "invalid_token", Reason: "client certificate not trusted"}
	}
	names := certNames(leaf)
	if len(a.names) > 0 && !slices.ContainsFunc(names, func(n string) bool { return slices.Contains(a.names, n) }) {
		return nil, &Error{Status: 403, Code: "insufficient_scope", Reason: "client certificate name not allowed"}
	}
	id := &Identity{Method: MethodMTLS, claims: map[string][]byte{}}
	if len(names) > 0 {
		id.Subject = names[0]
	}
	id.claims["sub"] = []byte(id.Subject)
	id.claims["names"] = bytes.Join(func() [][]byte {
		var b [][]byte
		for _, n := range names {
			b = append(b, []byte(n))
		}
		return b
	}(), []byte{ClaimListSep})
	return id, nil
}

// certNames lists URI SANs, DNS SANs and the common name, in that order.
func certNames(c *x509.Certificate) []string {
	var out []string
	for _, u := range c.URIs {
		out = append(out, u.String())
	}
	out = append(out, c.DNSNames...)
	if c.Subject.CommonName != "" {
		out = append(out, c.Subject.CommonName)
	}
	return out
}

// ForwardClaims returns the configured claim headers.
func (a *Authenticator) ForwardClaims() []ClaimHeader { return a.cfg.ForwardClaims }

// ClaimNames returns the claim names of an identity, sorted (for tests and
// debugging).
func (id *Identity) ClaimNames() []string {
	var out []string
	for k := range id.claims {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
