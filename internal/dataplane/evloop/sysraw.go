//go:build linux

package evloop

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// System calls of the loops' hot paths made without telling the scheduler
// (as rawRead and rawWrite): none of them blocks on the loops'
// non-blocking sockets (no socket has SO_LINGER with a timeout), and one
// the runtime knows about costs its bookkeeping and may wake sysmon.

// rawClose closes fd.
func rawClose(fd int) {
	unix.RawSyscall(unix.SYS_CLOSE, uintptr(fd), 0, 0)
}

// rawEpollCtl is epoll_ctl.
func rawEpollCtl(epfd, op, fd int, ev *unix.EpollEvent) unix.Errno {
	_, _, e := unix.RawSyscall6(unix.SYS_EPOLL_CTL, uintptr(epfd), uintptr(op), uintptr(fd), uintptr(unsafe.Pointer(ev)), 0, 0)
	return e
}

// rawSetsockoptInt sets an int socket option.
func rawSetsockoptInt(fd, level, opt, value int) unix.Errno {
	v := int32(value)
	_, _, e := unix.RawSyscall6(unix.SYS_SETSOCKOPT, uintptr(fd), uintptr(level), uintptr(opt), uintptr(unsafe.Pointer(&v)), 4, 0)
	return e
}
