// Package distrib compiles per-site configuration snapshots and streams them to nodes over mTLS gRPC, tracking what each site applied.
package distrib
