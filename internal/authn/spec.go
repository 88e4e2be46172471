package authn

import (
	v1 "github.com/meridian-platform/meridian/api/v1"
)

// FromSpec converts the authentication of a load balancer or route into a
// Config; caPEM holds the CA certificates spec.mtls.caRef names. It
// returns nil for a nil or disabled block. API keys must be in the clear
// (as the node receives them); New rejects a redacted one.
func FromSpec(a *v1.HTTPAuthentication, caPEM string) *Config {
	if a == nil || a.Disabled {
		return nil
	}
	c := &Config{}
	if j := a.JWT; j != nil {
		c.JWT = &JWTConfig{Issuer: j.Issuer, Audiences: append([]string(nil), j.Audiences...),
			Algorithms: append([]string(nil), j.Algorithms...), ClockSkew: j.ClockSkew.Duration,
			JWKSFile: j.JWKSFile, JWKSURL: j.JWKSURL, Refresh: j.Refresh.Duration, MinRefresh: j.MinRefresh.Duration,
			Header: j.Header}
	}
	if k := a.APIKey; k != nil {
		c.APIKey = &APIKeyConfig{Header: k.Header}
		for _, key := range k.Keys {
			c.APIKey.Keys = append(c.APIKey.Keys, APIKey{Name: key.Name, Key: string(key.Key), SHA256: key.SHA256})
		}
	}
	if m := a.MTLS; m != nil {
		c.MTLS = &MTLSConfig{CAPEM: caPEM, AllowedNames: append([]string(nil), m.AllowedNames...)}
	}
	for _, f := range a.ForwardClaims {
		c.ForwardClaims = append(c.ForwardClaims, ClaimHeader{Claim: f.Claim, Header: f.Header})
	}
	return c
}
