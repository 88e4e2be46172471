package dataplane

import (
	"net"

	"golang.org/x/sys/unix"
)

// unreadInput reports whether bytes wait in c's receive queue (SIOCINQ),
// or whether that cannot be told.
func unreadInput(c *net.TCPConn) bool {
	rc, err := c.SyscallConn()
	if err != nil {
		return true
	}
	n := 1
	if rc.Control(func(fd uintptr) {
		if v, err := unix.IoctlGetInt(int(fd), unix.SIOCINQ); err == nil {
			n = v
		}
	}) != nil {
		return true
	}
	return n > 0
}
