// Package fanout measures configuration fan-out: one console process, N simulated nodes on real mTLS gRPC streams, time until every site has a change.
package fanout
