package main

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"time"
)

// config is what one run is asked to do.
type config struct {
	url      string
	rate     float64       // requests per second
	duration time.Duration // the measured window
	warmup   time.Duration // sent at the same rate before the window, not measured
	conns    int
	timeout  time.Duration // per request, from its send; also for connecting
}

func (c config) check() error {
	switch {
	case c.rate <= 0 || c.rate > 1e7:
		return fmt.Errorf("-rate: %g requests/s is not in (0, 1e7]", c.rate)
	case c.duration <= 0:
		return fmt.Errorf("-duration: %v is not positive", c.duration)
	case c.warmup < 0:
		return fmt.Errorf("-warmup: %v is negative", c.warmup)
	case c.conns < 1 || c.conns > 65536:
		return fmt.Errorf("-conns: %d is not in [1, 65536]", c.conns)
	case c.timeout <= 0:
		return fmt.Errorf("-timeout: %v is not positive", c.timeout)
	}
	return nil
}

// target is where the requests go and their bytes, built once.
type target struct {
	addr *net.TCPAddr
	req  []byte
}

// parseTarget checks an http:// URL and builds the GET request for it.
func parseTarget(raw string) (target, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return target{}, fmt.Errorf("-url: %w", err)
	}
	if u.Scheme != "http" {
		return target{}, fmt.Errorf("-url %q: scheme %q, want http", raw, u.Scheme)
	}
	if u.Host == "" {
		return target{}, fmt.Errorf("-url %q: no host", raw)
	}
	if u.User != nil {
		return target{}, errors.New("-url: user information is not supported")
	}
	hostport := u.Host
	if u.Port() == "" {
		hostport = net.JoinHostPort(u.Hostname(), "80")
	}
	addr, err := net.ResolveTCPAddr("tcp", hostport)
	if err != nil {
		return target{}, fmt.Errorf("-url: resolving %q: %w", hostport, err)
	}
	req := fmt.Appendf(nil, "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: rategen\r\n\r\n", u.RequestURI(), u.Host)
	return target{addr: addr, req: req}, nil
}
