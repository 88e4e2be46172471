//go:build linux

package evloop

import (
	"net"
	"testing"
	"time"
)

// A loop that parked while idle does not yield its P as soon as it wakes:
// the wait gave the P to other goroutines already, and a yield at that
// moment put the request that woke the loop behind whatever else was
// ready. Exchanges are made one at a time with pauses of several
// yieldEvery between them, so that the loop parks before each one; it
// yielded on nearly every wake-up before (one yield per exchange or more)
// and now only when one of its batches lasts longer than yieldEvery
// (a loaded machine's time slices can make a few do).
func TestLoopDoesNotYieldAfterRest(t *testing.T) {
	for _, park := range []bool{true, false} {
		p, err := Start(Config{Listen: "127.0.0.1:0", Origin: fixedOrigin(t, 19), Loops: 1, KernelWait: !park})
		if err != nil {
			t.Fatal(err)
		}
		if park && p.loops[0].park == nil {
			p.Close()
			t.Fatal("the loop has no parker: the epoll descriptor did not go to the network poller")
		}
		c, err := net.Dial("tcp", p.Addr().String())
		if err != nil {
			p.Close()
			t.Fatal(err)
		}
		fc := newFixedClient(c, 19)
		const exchanges = 40
		for i := range exchanges {
			// The pause lets the loop park; its length only needs to
			// exceed yieldEvery, nothing waits on it.
			time.Sleep(4 * yieldEvery)
			if err := fc.roundTrip(); err != nil {
				c.Close()
				p.Close()
				t.Fatalf("park %v: exchange %d: %v", park, i, err)
			}
		}
		c.Close()
		p.Close() // the loop has ended: its counters are settled
		if y := p.loops[0].yields; y > exchanges/4 {
			t.Errorf("park %v: the loop yielded %d times in %d exchanges made one at a time after a rest, want at most %d", park, y, exchanges, exchanges/4)
		} else {
			t.Logf("park %v: %d yields in %d exchanges", park, y, exchanges)
		}
	}
}
