package cli

import "golang.org/x/sys/unix"

// The termios ioctls of Linux (term_unix.go uses them).
const (
	ioctlGetTermios = unix.TCGETS
	ioctlSetTermios = unix.TCSETS
)
