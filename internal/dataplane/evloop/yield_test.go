//go:build linux

package evloop

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// loadEnv names the proxy addresses a child process of the test binary
// loads (see TestMain and yieldLoad).
const loadEnv = "EVLOOP_TEST_LOAD"

func TestMain(m *testing.M) {
	if os.Getenv(loadEnv) != "" {
		yieldLoad()
		return
	}
	os.Exit(m.Run())
}

// yieldLoad is the child process of TestBusyLoopYields: it serves the
// origin on the listener it inherited (descriptor 3) and, for each proxy
// address read from stdin, hammers that proxy with keep-alive clients
// until the next address; it exits at the end of stdin (or after a
// minute, should its parent be gone without closing it).
func yieldLoad() {
	ln, err := net.FileListener(os.NewFile(3, "origin"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "origin listener:", err)
		os.Exit(2)
	}
	go serveFixed(ln, 19)
	time.AfterFunc(time.Minute, func() { os.Exit(3) })
	var stop chan struct{}
	var wg sync.WaitGroup
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		if stop != nil {
			close(stop)
			wg.Wait()
		}
		stop = make(chan struct{})
		for range 96 {
			wg.Add(1)
			go func(addr string, stop chan struct{}) {
				defer wg.Done()
				c, err := net.Dial("tcp", addr)
				if err != nil {
					return
				}
				defer c.Close()
				fc := newFixedClient(c, 19)
				for {
					select {
					case <-stop:
						return
					default:
					}
					if fc.roundTrip() != nil {
						return
					}
				}
			}(sc.Text(), stop)
		}
	}
	os.Exit(0)
}

// A saturated loop, whose system calls never enter the scheduler, gives
// its P to other goroutines every yieldEvery: a goroutine that waits for a
// P (here a timer's, with one P and one loop) waits that long, not for
// sysmon's 10 ms preemption.
//
// A child process (the test binary again) serves the origin and runs the
// clients, so that the loop's load needs no P of this process. The test
// measures how late time.Sleep(1ms) wakes while the loop is loaded, with
// the yield and without it (yieldEvery < 0), in alternating rounds, and
// compares the two: figures measured a moment apart on the same machine,
// not absolute bounds, since a loaded machine delays every thread. A
// round passes when the loop without the yield was saturated (a tenth, or
// half, of its sleeps woke 2 ms late or more) and the yielding loop's
// 90th percentile (or median) of lateness is under a third of the other's:
// the median holds up when other processes load the machine (their time
// slices delay some sleeps of both), the 90th percentile when the loop is
// not always saturated. The test fails when no round of four passes;
// without the yield the two stay within a factor of two.
func TestBusyLoopYields(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lf, err := ln.(*net.TCPListener).File()
	ln.Close() // the child's copy (lf) keeps the socket listening
	if err != nil {
		t.Fatal(err)
	}
	origin := ln.Addr().String()
	proxies := map[bool]*Proxy{}
	for _, yield := range []bool{false, true} {
		// Each exchange costs the loop 20 µs more (as TLS or request
		// stages would): the loop, not the child, is the bottleneck, so it
		// always finds events ready and never parks while loaded.
		cfg := Config{Listen: "127.0.0.1:0", Origin: origin, Loops: 1,
			Observe: func(any, int, time.Duration, int64, int64) {
				for t0 := time.Now(); time.Since(t0) < 20*time.Microsecond; {
				}
			}}
		if !yield {
			cfg.yieldEvery = -1
		}
		p, err := Start(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Close() })
		proxies[yield] = p
	}

	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), loadEnv+"=1")
	cmd.ExtraFiles = []*os.File{lf}
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lf.Close()
	defer func() {
		stdin.Close()
		cmd.Wait()
	}()

	// One P: the loop and this goroutine's timer share it.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))

	// lateness loads p and reports the median and the 90th percentile of
	// how late a 1 ms sleep wakes.
	lateness := func(p *Proxy) (med, p90 time.Duration) {
		if _, err := io.WriteString(stdin, p.Addr().String()+"\n"); err != nil {
			t.Fatal(err)
		}
		// Wait for the load to reach the loop.
		start, before := time.Now(), p.Stats().Requests
		for p.Stats().Requests < before+500 {
			if time.Since(start) > 5*time.Second {
				t.Fatalf("the load did not reach the proxy: %d requests in 5 s", p.Stats().Requests-before)
			}
			time.Sleep(5 * time.Millisecond)
		}
		var late []time.Duration
		for end := time.Now().Add(400 * time.Millisecond); time.Now().Before(end) && len(late) < 200; {
			t0 := time.Now()
			time.Sleep(time.Millisecond)
			late = append(late, time.Since(t0)-time.Millisecond)
		}
		slices.Sort(late)
		return late[len(late)/2], late[len(late)*9/10]
	}
	var tried []string
	for round := range 4 {
		offMed, offP90 := lateness(proxies[false])
		onMed, onP90 := lateness(proxies[true])
		tried = append(tried, fmt.Sprintf("round %d: without the yield %v (90%%: %v), with it %v (90%%: %v)", round, offMed, offP90, onMed, onP90))
		t.Log(tried[len(tried)-1])
		if offP90 >= 2*time.Millisecond && onP90 < offP90/3 || offMed >= 2*time.Millisecond && onMed < offMed/3 {
			return
		}
	}
	t.Fatalf("a 1 ms sleep did not wake sooner with the busy loop yielding than without:\n%s", strings.Join(tried, "\n"))
}
