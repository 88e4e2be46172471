package main

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// System calls of the generator's loop, made without telling the Go
// scheduler: the loop's thread is locked to it and is the only one
// working, so handing its P off while it waits (what the runtime does for
// a system call it knows about, with sysmon waking every 20 µs to check)
// would cost more than the requests. None blocks longer than the wait
// given to epollWait. Measured on a 2-vCPU VM, a loop that only waits for
// the next 100 µs mark: 12-20 µs of CPU per wake-up this way, 28-36 µs
// with the scheduler told (sysmon's polling); a timerfd in the epoll set
// instead of epoll_pwait2's timeout changed neither the CPU nor the lag.

func rawRead(fd int, b []byte) (int, unix.Errno) {
	n, _, e := unix.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	return int(n), e
}

func rawWrite(fd int, b []byte) (int, unix.Errno) {
	n, _, e := unix.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	return int(n), e
}

// epollWait is epoll_pwait2: it waits at most wait nanoseconds (with the
// kernel's timer precision, unlike epoll_wait's milliseconds). With
// shared, it tells the scheduler, which then lets other goroutines run
// meanwhile: needed when the process has a single P (GOMAXPROCS 1), as
// in a test beside its server.
func epollWait(epfd int, events []unix.EpollEvent, wait int64, ts *unix.Timespec, shared bool) (int, unix.Errno) {
	*ts = unix.NsecToTimespec(wait)
	var n uintptr
	var e unix.Errno
	if shared {
		n, _, e = unix.Syscall6(unix.SYS_EPOLL_PWAIT2, uintptr(epfd), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), uintptr(unsafe.Pointer(ts)), 0, 0)
	} else {
		n, _, e = unix.RawSyscall6(unix.SYS_EPOLL_PWAIT2, uintptr(epfd), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), uintptr(unsafe.Pointer(ts)), 0, 0)
	}
	return int(n), e
}

func epollCtl(epfd, op, fd int, events uint32, data int) error {
	ev := unix.EpollEvent{Events: events, Fd: int32(data)}
	return unix.EpollCtl(epfd, op, fd, &ev)
}
