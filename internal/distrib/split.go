package distrib

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"sync"
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
func SplitListener(ln net.Listener) (api, sites net.Listener) {
	s := &splitter{ln: ln, api: newChanListener(ln.Addr()), sites: newChanListener(ln.Addr())}
	go s.run()
	return s.api, s.sites
}

type splitter struct {
	ln         net.Listener
	api, sites *chanListener
}

func (s *splitter) run() {
	var tempDelay time.Duration
	for {
		c, err := s.ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				if tempDelay == 0 {
					tempDelay = 5 * time.Millisecond
				} else if tempDelay *= 2; tempDelay > time.Second {
					tempDelay = time.Second
				}
				time.Sleep(tempDelay)
				continue
			}
			s.api.fail(err)
			s.sites.fail(err)
			return
		}
		tempDelay = 0
		go s.route(c)
	}
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
