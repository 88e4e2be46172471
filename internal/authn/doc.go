// Package authn authenticates requests: JWTs validated against cached, rotating JWKS, API keys held as hashes and compared in constant time, and mTLS client certificates; it exposes the claims to policies and rate limits.
package authn
