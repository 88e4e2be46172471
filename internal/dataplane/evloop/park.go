//go:build linux

package evloop

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// parker lets an idle loop wait for its epoll instance in Go's network
// poller (the epoll descriptor is itself pollable: it is readable when it
// has ready events) instead of in a blocking epoll_wait. The loop's
// goroutine parks like any goroutine waiting for a socket and its P stays
// free: a loop blocked in a system call instead holds its P in the
// syscall state, which the runtime's sysmon thread takes back after 20 µs
// whenever no P is idle (every loop on a machine with as many loops as
// Ps), handing it to a new spinning thread and keeping sysmon itself
// waking every 20 µs; that cost more CPU than the proxying.
//
// A loop parks as soon as a poll finds nothing. Measured and left out
// (session 7, two nodes loaded at once by their own wrk so that both see
// the same machine, CPU per request of the variant over the unchanged
// node, medians of 6 rounds): waiting first up to 200 µs in epoll_pwait2
// with the P kept (at most GOMAXPROCS-1 loops of the process at once, none
// with handshakes in flight) cut context switches per request from 1.63
// to 1.06 and epoll_pwait calls from 4.3 to 1.7, yet cost 1.26x (small)
// and 1.15x (https) the CPU per request, and in a make bench subset 1.1-1.3x
// and a p99 at 5,000 req/s of 36.5 ms against 6.6 ms (likely: each wait arms
// a timer, and at a moderate rate most of them run out); polling again
// for up to 20 µs before parking cost 1.2-1.7x in a make bench subset;
// one loop per listener instead of GOMAXPROCS measured 0.92-0.94x in one
// run and 0.97-1.07x in the next (noise, not a gain).
//
// Session 8 (issue 3: Meridian's requests/s 0.86-0.91x nginx's in 16k
// with less CPU per request) compared both under the same wrk load
// (wrk -t1 -c64, perf stat on each process): per 16k request the loops
// make 4.6-4.7 system calls (a 44-byte read and a 145-byte write, a
// 16,626-byte read and a 16,602-byte write, one epoll_pwait per ~12
// events) and 0.27-0.32 context switches, nginx 9.9-10.0 and 0.37-0.40;
// wrk (8.4-8.6 calls) and the backend (about 7) make the same for both,
// and the two loops hold 33 and 43 of the 64 client connections. What
// differs is the idle time: 17-19% of the machine while Meridian served
// 16k against nginx's 1-12%, so the gap is in waking up, not in work.
// The runtime explains part of it: the thread the poller wakes for one
// parked loop runs that loop, and no thread is blocked in the poller
// again until one looks for work, which a loop's thread only does when
// its loop parks; a loop that parked meanwhile waits with ready events
// while a P is idle (a busy loop saw a parked peer with ready events
// 16,761 times in 197,333 requests, once per 12). Tried,
// on a machine loaded by the other sessions (load 8-16; interleaved
// rounds of 3-4 s, medians of the per-round ratios to nginx, 16k then
// small): a busy loop that poll(2)s its parked peers' epoll descriptors
// once per batch and readies a goroutine to make the runtime start an
// idle thread when one is ready: 1.04/1.14/1.21/1.01x and
// 0.94/1.02/1.00/1.02x against the unchanged node's 0.94/1.05/1.13/1.02x
// and 1.02/0.96/1.05/1.03x, 0-3 µs more CPU per request, and fewer
// requests/s in 5 of 6 rounds of two nodes loaded at once; the same only
// after the peer stayed ready across two batches or 50 µs:
// 1.00/1.05/0.97x and 1.01/1.13/1.01x against 1.05/1.13/1.02x and
// 0.96/1.05/1.03x; on every wake-up that left a peer parked: 29.5-41
// µs per request against 24-26. Not kept: within the noise. Config's
// KernelWait (the kernel wakes each loop's thread, as nginx's workers;
// GOMAXPROCS one above the CPUs, bench target meridian-kw) measured
// 0.89x and 0.97x against 0.94x and 1.02x, 1-2 µs more per request, so
// it is no default; in make bench (3 rounds of 5 s, then 5 of 4 s, per
// round against nginx, meridian-kw then meridian) small 0.93x/0.99x and
// 1.06x/1.02x, 16k 0.99x/1.10x and 1.15x/1.12x, but the fixed-rate
// p99 (10,000 req/s) 0.29x/0.70x and 0.60x/0.94x nginx's; a third run
// (3 of 5 s) gave small 0.83x/0.88x, 16k 1.03x/1.01x and a fixed-rate
// p99 of 1.17x/1.10x, so not even the tail is a settled gain. RawBlock
// with GOMAXPROCS 3 and 4 (two loops) cost 28-36 µs per request against
// 24-27. On the quiet machine at the session's end (make bench, 3
// rounds of 5 s, per-round ratios to nginx, meridian-kw then meridian):
// small 0.94x/0.91x, 16k 1.01x/1.08x, fixed-rate p99 1.27x/1.46x; and a
// single loop for the whole node (GOMAXPROCS 2, so no second loop can
// wait parked) against the two: small 0.85x/0.92x, 16k 0.90x/0.99x,
// fixed-rate p99 0.73x/0.60x. Neither is a gain at saturation; the
// fixed-rate p99 of the unchanged node was 1.46x, 1.65x and 0.60x
// nginx's in three runs that hour (nginx's own 0.7-2.7 ms), so the tail
// comparison is within the run-to-run spread.
//
// Session 9 (quiet machine, interleaved wrk runs of 3-4 s, the machine's
// idle share from /proc/stat, run queue waits per thread from
// /proc/PID/task/*/schedstat, placement from perf sched): nginx's two
// workers each stayed on one CPU, paired with wrk or the backend, and the
// machine was 3-8% idle for 16k answers; the node's loop goroutines moved
// between three or more threads and the threads between CPUs, the machine
// was 15-17% idle, and the loops' threads waited 14-25 µs per request in
// run queues. Kept: a listener per loop in the node (the shared
// EPOLLEXCLUSIVE listener gave one loop most of wrk's 64 connections),
// 0.5-5% more requests/s in each A/B run (five small, four 16k).
// KernelWait with it (GOMAXPROCS 3) cut the idle share to 9-12% and measured 0.96-1.07x
// nginx against 0.92-0.98x for the old node in one set of runs, but side
// by side with the per-loop poller node small 1.00x/1.02x, 16k 0.90x/0.93x
// (make bench) and 1.02x/0.99x, 1.01x/1.02x (quick runs), and the
// fixed-rate p99 1.24x/1.55x and then 1.59x/1.36x nginx's: no settled
// difference, so it stays opt-in. Measured and not kept: spinning on
// epoll_wait for 20 or 100 µs before parking (idle down to 9-13%, but
// 2-8 µs more CPU per request and no more requests/s); fewer events per
// epoll_wait (8 or 1: no change); reading origin answers 4 or 8 KiB at a
// time as nginx does (0.64x and 0.80x: a write to the client per read);
// locking each loop to its thread, with or without pinning the threads to
// CPUs, and without yields (0.86-0.98x).
//
// Session 10 (quiet machine, wrk 5-6 interleaved rounds of 3 s): a build
// without any of the per-request atomics shared by the loops (route and
// load-balancer metrics, endpoint counts, the request-id counter) served
// small answers at 0.967x nginx, the same as the unchanged node (0.967x):
// cache-line traffic between the loops is not the gap. Three or four
// loops on the two Ps: 0.994x and 0.999x against 1.001x. perf shows the
// node's CPU 83% in the kernel, the same system calls and wake-up
// preemptions as nginx's workers. At 10,000 requests/s, eight alternating
// 3-second runs: nginx's p99 0.30-1.43 ms, the node's 0.37-1.01 ms (median
// 1.21x), with KernelWait 0.30-1.09 ms (0.90x); every target's p99.9 is
// 3-4 ms, a scheduler tick, whatever the proxy.
type parker struct {
	f        *os.File
	rc       syscall.RawConn
	poll     func(uintptr) bool // p.pollReady, bound once so that waiting does not allocate
	l        *loop
	n        int
	err      error
	polls    int   // pollReady calls of the current wait
	parked   bool  // the last wait parked: its first poll found nothing
	deadline int64 // the read deadline set, in the loop's clock
}

func newParker(l *loop) (*parker, error) {
	fd, err := unix.FcntlInt(uintptr(l.epfd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("evloop: duplicating the epoll descriptor: %w", err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("evloop: epoll descriptor: %w", err)
	}
	// A non-blocking descriptor goes to the network poller.
	f := os.NewFile(uintptr(fd), "evloop-epoll")
	// Only a descriptor the poller took has deadlines: without them the
	// wait would not block.
	if err := f.SetReadDeadline(time.Time{}); err != nil {
		f.Close()
		return nil, fmt.Errorf("evloop: epoll descriptor in the network poller: %w", err)
	}
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("evloop: epoll descriptor: %w", err)
	}
	p := &parker{f: f, rc: rc, l: l}
	p.poll = p.pollReady
	return p, nil
}

// wait returns the loop's ready events, parking until there are some or
// the loop's clock reaches until (then with none).
func (p *parker) wait(until int64) (int, error) {
	if p.deadline != until {
		p.deadline = until
		if err := p.f.SetReadDeadline(clockBase.Add(time.Duration(until))); err != nil {
			return 0, err
		}
	}
	p.n, p.err, p.polls = 0, nil, 0
	err := p.rc.Read(p.poll)
	// Parked: the first poll found nothing and the goroutine waited (for
	// events, or until the deadline).
	p.parked = p.polls > 1 || (p.polls == 1 && err != nil)
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return 0, nil
		}
		return 0, err
	}
	return p.n, p.err
}

func (p *parker) pollReady(uintptr) bool {
	p.polls++
	p.n, p.err = p.l.pollNow(0)
	return p.n > 0 || p.err != nil
}

func (p *parker) close() { p.f.Close() }
