package wafstage

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestGateBoundsAndOrders(t *testing.T) {
	if newGate(-1) != nil {
		t.Fatal("a negative concurrency must mean no gate")
	}
	if got := cap(newGate(0)); got != runtime.GOMAXPROCS(0) {
		t.Fatalf("default gate admits %d, want GOMAXPROCS %d", got, runtime.GOMAXPROCS(0))
	}
	var nilGate gate
	nilGate.enter() // must not block
	nilGate.leave()

	g := newGate(2)
	var inside, most atomic.Int32
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g.enter()
			n := inside.Add(1)
			for {
				m := most.Load()
				if n <= m || most.CompareAndSwap(m, n) {
					break
				}
			}
			// Stay until a second holder is in (the gate admits two): a
			// loaded machine may run the holders one after the other.
			for deadline := time.Now().Add(10 * time.Second); most.Load() < 2 && time.Now().Before(deadline); {
				time.Sleep(time.Millisecond)
			}
			time.Sleep(time.Millisecond)
			inside.Add(-1)
			g.leave()
		}()
	}
	wg.Wait()
	if m := most.Load(); m != 2 {
		t.Fatalf("at most %d holders at once, want 2", m)
	}

}
