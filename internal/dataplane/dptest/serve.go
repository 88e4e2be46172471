package dptest

import (
	"net"
	"testing"
)

// ServeConns starts a loopback listener that hands each connection it
// accepts to handle on a goroutine of its own and closes the connection
// when handle returns; it returns the listener's address. The listener
// closes when tb's test ends.
func ServeConns(tb testing.TB, handle func(net.Conn)) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				handle(c)
			}()
		}
	}()
	return ln.Addr().String()
}
