package dataplane

import "testing"

// TestEvloopConnectionNamedFields checks that the event loop served the
// HTTP/1.1-only listener of TestConnectionNamedFieldsRemoved, so that the
// fields named in Connection were removed by the loop itself.
func TestEvloopConnectionNamedFields(t *testing.T) {
	s, plain := connectionNamedFieldsRemoved(t, EngineEvloop)
	if st := s.evStats(t, plain); st.Requests == 0 {
		t.Fatalf("the event loop served %d requests and handed off %d, want the /h1 ones served", st.Requests, st.Handoffs)
	}
}
