//go:build linux

package dataplane

// counts returns the requests the loops forwarded and the connections
// they handed off.
func (e *evEngine) counts() (requests, handoffs uint64) {
	st := e.p.Stats()
	return st.Requests, st.Handoffs
}
