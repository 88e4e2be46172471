//go:build tools

// Package tools pins module dependencies before their first use.
package tools

import (
	_ "github.com/spf13/cobra"
	_ "go.etcd.io/bbolt"
	_ "go.etcd.io/etcd/client/v3"
	_ "go.etcd.io/etcd/server/v3/embed"
	_ "golang.org/x/crypto/bcrypt"
	_ "golang.org/x/net/http2"
	_ "golang.org/x/time/rate"
	_ "sigs.k8s.io/yaml"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/valyala/fasthttp"
	_ "google.golang.org/grpc"
)
