// Package etcdtest runs a real single-member etcd in-process on loopback, for tests and local runs.
package etcdtest
