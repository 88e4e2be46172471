package distrib

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc/credentials"
)

// handshakeTimeout bounds a TLS handshake on the shared listener.
const handshakeTimeout = 10 * time.Second

// SplitListener completes TLS handshakes on ln (a tls.Listener requesting
// client certificates) and hands connections that presented a client
// certificate (sites: the sync stream and renewals) to sites, all others
// (the REST API, registration) to api. Sites are then served by gRPC's own
// transport, whose buffers are sized for thousands of streams.
//
// Accept errors that pass (out of file descriptors or memory, a connection
// aborted before it was accepted, a timeout) are waited out with a growing
// pause (5ms to 1s) and reported to log (nil: not reported) at most once a
// second; only a closed or broken listener ends both returned listeners.
// (Before, the first such error ended them: a console that ran out of file
// descriptors while thousands of sites reconnected stopped accepting for
// good, and the sites not yet connected never synced.)
func SplitListener(ln net.Listener, log *slog.Logger) (api, sites net.Listener) {
	s := &splitter{ln: ln, log: log, api: newChanListener(ln.Addr()), sites: newChanListener(ln.Addr())}
	go s.run()
	return s.api, s.sites
}

type splitter struct {
	ln         net.Listener
	log        *slog.Logger
	api, sites *chanListener
}

// maxAcceptPause bounds the pause after a passing accept error.
const maxAcceptPause = time.Second

func (s *splitter) run() {
	var pause time.Duration
	var reported time.Time
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if !acceptErrorPasses(err) {
				s.api.fail(err)
				s.sites.fail(err)
				return
			}
			if pause == 0 {
				pause = 5 * time.Millisecond
			} else if pause *= 2; pause > maxAcceptPause {
				pause = maxAcceptPause
			}
			if s.log != nil && time.Since(reported) >= time.Second {
				reported = time.Now()
				s.log.Warn("accepting connections; retrying", "err", err, "pause", pause)
			}
			time.Sleep(pause)
			continue
		}
		pause = 0
		go s.route(c)
	}
}

// acceptErrorPasses reports whether an Accept error is worth waiting out:
// timeouts, exhausted descriptors, memory or buffers, and connections
// that were reset or aborted before they were accepted.
func acceptErrorPasses(err error) bool {
	if errors.Is(err, net.ErrClosed) {
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	for _, e := range []error{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM,
		syscall.ECONNABORTED, syscall.ECONNRESET, syscall.EAGAIN, syscall.EINTR, syscall.EPROTO} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func (s *splitter) route(c net.Conn) {
	tc, ok := c.(*tls.Conn)
	if !ok {
		s.api.deliver(c)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), handshakeTimeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		c.Close()
		return
	}
	if len(tc.ConnectionState().PeerCertificates) > 0 {
		s.sites.deliver(c)
		return
	}
	s.api.deliver(c)
}

type chanListener struct {
	addr net.Addr
	ch   chan net.Conn
	once sync.Once
	done chan struct{}
	mu   sync.Mutex
	err  error
}

func newChanListener(addr net.Addr) *chanListener {
	return &chanListener{addr: addr, ch: make(chan net.Conn), done: make(chan struct{})}
}

func (l *chanListener) deliver(c net.Conn) {
	select {
	case l.ch <- c:
	case <-l.done:
		c.Close()
	}
}

func (l *chanListener) fail(err error) {
	l.mu.Lock()
	if l.err == nil {
		l.err = err
	}
	l.mu.Unlock()
	l.Close()
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.err != nil {
			return nil, l.err
		}
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return l.addr }

// handshaken are server credentials for connections whose TLS handshake is
// already done (by SplitListener): they expose its state to handlers.
type handshaken struct{}

func (handshaken) ClientHandshake(context.Context, string, net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return nil, nil, errors.New("distrib: server-side credentials only")
}

func (handshaken) ServerHandshake(c net.Conn) (net.Conn, credentials.AuthInfo, error) {
	tc, ok := c.(*tls.Conn)
	if !ok {
		return nil, nil, errors.New("distrib: connection is not TLS")
	}
	return c, credentials.TLSInfo{State: tc.ConnectionState(),
		CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.PrivacyAndIntegrity}}, nil
}

func (handshaken) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{SecurityProtocol: "tls", SecurityVersion: "1.2"}
}
func (h handshaken) Clone() credentials.TransportCredentials { return h }
func (handshaken) OverrideServerName(string) error           { return nil }
