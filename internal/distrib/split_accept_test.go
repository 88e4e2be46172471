package distrib

import (
	"crypto/tls"
	"errors"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/meridian-platform/meridian/internal/testcert"
)

// flakyListener is a real loopback listener whose Accept first fails the
// way an exhausted process does (EMFILE) a given number of times.
type flakyListener struct {
	net.Listener
	failures atomic.Int32
	err      error
}

func (l *flakyListener) Accept() (net.Conn, error) {
	if l.failures.Add(-1) >= 0 {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", l.err)}
	}
	return l.Listener.Accept()
}

func selfSigned(t *testing.T, cn string) tls.Certificate {
	t.Helper()
	c, k := testcert.SelfSigned(t, cn)
	pair, err := tls.X509KeyPair([]byte(c), []byte(k))
	if err != nil {
		t.Fatal(err)
	}
	return pair
}

func acceptOne(t *testing.T, ln net.Listener) (net.Conn, error) {
	t.Helper()
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() { c, err := ln.Accept(); ch <- res{c, err} }()
	select {
	case r := <-ch:
		return r.c, r.err
	case <-time.After(10 * time.Second):
		t.Fatal("no connection accepted within 10s")
		return nil, nil
	}
}

// TestSplitListenerOutlivesAcceptErrors: running out of file descriptors
// (or buffers, or a connection aborted before accept) must not end the
// listeners: connections that arrive afterwards are still served, those
// with a client certificate on the sites side, the others on the API side.
// Only closing the listener ends both.
func TestSplitListenerOutlivesAcceptErrors(t *testing.T) {
	for _, errno := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ECONNABORTED} {
		t.Run(errno.Error(), func(t *testing.T) {
			raw, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			fl := &flakyListener{Listener: raw, err: errno}
			fl.failures.Store(4)
			srv := &tls.Config{Certificates: []tls.Certificate{selfSigned(t, "console")}, ClientAuth: tls.RequestClientCert}
			api, sitesLn := SplitListener(tls.NewListener(fl, srv), nil)
			defer api.Close()
			defer sitesLn.Close()

			dial := func(certs []tls.Certificate) net.Conn {
				c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", raw.Addr().String(),
					&tls.Config{InsecureSkipVerify: true, Certificates: certs})
				if err != nil {
					t.Fatalf("connecting after %v: %v", errno, err)
				}
				t.Cleanup(func() { c.Close() })
				// TLS 1.3: the client is done before the server has read
				// its certificate; a read waits for the server's side.
				c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
				c.Read(make([]byte, 1))
				return c
			}
			dial(nil)
			c, err := acceptOne(t, api)
			if err != nil {
				t.Fatalf("API side after %v: %v", errno, err)
			}
			c.Close()
			dial([]tls.Certificate{selfSigned(t, "site")})
			c, err = acceptOne(t, sitesLn)
			if err != nil {
				t.Fatalf("sites side after %v: %v", errno, err)
			}
			if n := len(c.(*tls.Conn).ConnectionState().PeerCertificates); n != 1 {
				t.Fatalf("sites side got a connection with %d client certificates", n)
			}
			c.Close()
			if f := fl.failures.Load(); f >= 0 {
				t.Fatalf("the injected accept errors were not all met (%d left)", f+1)
			}

			raw.Close()
			for name, ln := range map[string]net.Listener{"api": api, "sites": sitesLn} {
				if _, err := acceptOne(t, ln); !errors.Is(err, net.ErrClosed) {
					t.Fatalf("%s side after the listener closed: %v, want net.ErrClosed", name, err)
				}
			}
		})
	}
}

func TestAcceptErrorPasses(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{&net.OpError{Op: "accept", Err: os.NewSyscallError("accept4", syscall.EMFILE)}, true},
		{&net.OpError{Op: "accept", Err: os.NewSyscallError("accept4", syscall.ENOMEM)}, true},
		{&net.OpError{Op: "accept", Err: os.ErrDeadlineExceeded}, true},
		{net.ErrClosed, false},
		{&net.OpError{Op: "accept", Err: net.ErrClosed}, false},
		{errors.New("listener broken"), false},
	} {
		if got := acceptErrorPasses(tc.err); got != tc.want {
			t.Errorf("acceptErrorPasses(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
