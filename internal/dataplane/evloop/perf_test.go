//go:build linux

package evloop

import (
	"bytes"
	"io"
	"net"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Answers after a connection's first are not held back by Nagle's
// algorithm until the client acknowledges the previous one (the loop sets
// TCP_NODELAY lazily, before a client's second write): pipelined pairs of
// requests, whose second answer is written while the first may be
// unacknowledged, are answered without the client's delayed-ACK wait
// (40 ms and more on Linux; held back, nearly every pair waits for it).
//
// A loaded machine (tests of all packages in parallel with -race on two
// cores) delays some rounds too, so each pair is measured against a
// control on the same connection: a lone request, whose answer has nothing
// unacknowledged before it and never waits for Nagle's algorithm. The test
// fails when the typical (median) pair is slower than the typical lone
// exchange by more than 25 ms, or when most pairs are.
func TestPipelinedAnswersNotDelayed(t *testing.T) {
	addr := startProxy(t, fixedOrigin(t, 19))
	c := dial(t, addr)
	req := "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
	buf := make([]byte, 4096)
	exchange := func(round int, raw string, answers int) time.Duration {
		start := time.Now()
		if _, err := io.WriteString(c, raw); err != nil {
			t.Fatal(err)
		}
		n := 0
		for bytes.Count(buf[:n], []byte("HTTP/1.1 200")) < answers || !bytes.HasSuffix(buf[:n], []byte(strings.Repeat("y", 19))) {
			k, err := c.Read(buf[n:])
			if err != nil {
				t.Fatalf("round %d: %v (read %q)", round, err, buf[:n])
			}
			n += k
		}
		return time.Since(start)
	}
	const rounds = 60
	var lone, pairs []time.Duration
	slowPairs := 0
	for i := 0; i < rounds; i++ {
		l := exchange(i, req, 1)
		p := exchange(i, req+req, 2)
		lone, pairs = append(lone, l), append(pairs, p)
		if p > l+25*time.Millisecond {
			slowPairs++
		}
	}
	slices.Sort(lone)
	slices.Sort(pairs)
	medLone, medPair := lone[rounds/2], pairs[rounds/2]
	if medPair > medLone+25*time.Millisecond || slowPairs > rounds/2 {
		t.Fatalf("pipelined pairs took %v (median; %d of %d more than 25 ms over their lone exchange), lone exchanges %v: answers waited for an acknowledgement", medPair, slowPairs, rounds, medLone)
	}
}

// A connection per request ("Connection: close") is answered and closed by
// the loop.
func TestConnectionPerRequest(t *testing.T) {
	addr := startProxy(t, fixedOrigin(t, 19))
	for i := 0; i < 50; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(c) // until the loop closes
		c.Close()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(b, []byte("HTTP/1.1 200")) || !bytes.Contains(b, []byte("\r\nConnection: close\r\n")) || !bytes.HasSuffix(b, []byte(strings.Repeat("y", 19))) {
			t.Fatalf("answer %q", b)
		}
	}
}

// An exchange is counted (Observe) before the client can read the end of
// its answer, so that metrics read after an answer include it: an Observe
// that takes its time delays the answer's last write instead of being
// overtaken by the client. Both the forwarded answer and an error answer
// of the loop's own (502: the origin refuses connections).
func TestObservedBeforeAnswerEnds(t *testing.T) {
	down, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	downAddr := down.Addr().String()
	down.Close()
	for _, tc := range []struct {
		name, origin string
		status       int
	}{{"forwarded", fixedOrigin(t, 19), 200}, {"rejected", downAddr, 502}} {
		t.Run(tc.name, func(t *testing.T) {
			var observed atomic.Int64
			var status atomic.Int64
			p, err := Start(Config{Listen: "127.0.0.1:0", Origin: tc.origin, Loops: 1,
				Observe: func(_ any, st int, _ time.Duration, _, _ int64) {
					time.Sleep(50 * time.Millisecond) // a slow observer
					status.Store(int64(st))
					observed.Add(1)
				}})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { p.Close() })
			c := dial(t, p.Addr().String())
			resp, _ := c.roundTrip(t, "GET / HTTP/1.1\r\nHost: a\r\n\r\n", "GET")
			if n := observed.Load(); n != 1 || resp.StatusCode != tc.status || status.Load() != int64(tc.status) {
				t.Fatalf("answer %d: observed %d exchanges (status %d) once the answer was read, want 1 (%d)", resp.StatusCode, n, status.Load(), tc.status)
			}
		})
	}
}

// Each way an idle loop waits (parked in the network poller, the default;
// in epoll_wait, the fallback; in a raw epoll_wait holding its P,
// RawBlock) wakes for new connections, for answers and for the sweep that
// ends a connection past its deadline, and for Close.
func TestWaitModes(t *testing.T) {
	origin := fixedOrigin(t, 19)
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"park", Config{}},
		{"epoll_wait", Config{KernelWait: true}},
		{"rawblock", Config{RawBlock: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.Listen, cfg.Origin, cfg.Loops = "127.0.0.1:0", origin, 2
			cfg.HeaderTimeout = 300 * time.Millisecond
			p, err := Start(cfg)
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range p.loops {
				if parked := l.park != nil; parked != (tc.name == "park") {
					t.Fatalf("loop parks in the network poller: %v", parked)
				}
			}
			addr := p.Addr().String()
			for i := 0; i < 3; i++ {
				time.Sleep(20 * time.Millisecond) // the loops go idle
				c := dial(t, addr)
				if resp, body := c.roundTrip(t, "GET / HTTP/1.1\r\nHost: a\r\n\r\n", "GET"); resp.StatusCode != 200 || body != strings.Repeat("y", 19) {
					t.Fatalf("answer %d %q", resp.StatusCode, body)
				}
			}
			start := time.Now()
			c := dial(t, addr)
			if resp, _ := c.roundTrip(t, "GET / HTTP/1.1\r\n", "GET"); resp.StatusCode != 408 {
				t.Fatalf("head left unfinished: %d, want 408", resp.StatusCode)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Fatalf("the 300 ms header timeout took %v", d)
			}
			done := make(chan struct{})
			go func() { p.Close(); close(done) }()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("Close did not stop the idle loops")
			}
		})
	}
}
