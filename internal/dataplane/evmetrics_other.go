//go:build !linux

package dataplane

func (e *evEngine) counts() (requests, handoffs uint64) { return 0, 0 }
