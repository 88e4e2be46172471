package testfixture

import (
	"net"
	"strconv"
	"testing"
)

func TestFreePortBindableDistinctAndOutsideEphemeral(t *testing.T) {
	lo, hi := portsBelowEphemeral()
	seen := map[int]bool{}
	for range 50 {
		p := FreePort(t)
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
		if hi > lo && (p < lo || p >= hi) {
			t.Fatalf("port %d outside [%d, %d), below the ephemeral range", p, lo, hi)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			t.Fatalf("binding the port FreePort gave: %v", err)
		}
		ln.Close()
	}
}
