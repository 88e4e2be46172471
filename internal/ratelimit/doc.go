// Package ratelimit keeps token buckets (GCRA, one int64 per key) in bounded, sharded LRU stores held by a registry keyed by the RateLimiter's identity, so configuration pushes keep the counts.
package ratelimit
