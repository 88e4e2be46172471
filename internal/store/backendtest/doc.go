// Package backendtest opens the real store backends (bbolt, in-process etcd) for the tests of the packages built on the store.
package backendtest
