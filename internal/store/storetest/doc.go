// Package storetest is the conformance suite and benchmarks every store backend runs.
package storetest
