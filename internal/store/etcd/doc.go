// Package etcd is the store backend for console replicas sharing an etcd cluster, with every key under one prefix.
package etcd
