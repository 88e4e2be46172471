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
