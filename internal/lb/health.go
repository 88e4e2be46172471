package lb

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"time"

	"golang.org/x/net/http2"
)

// checker is the running active health check of one endpoint.
type checker struct {
	cfg    *HealthCheckConfig
	cancel context.CancelFunc
}

func (c *checker) stop() { c.cancel() }

// syncCheckerLocked makes e's running check match cfg: started, restarted
// when the check changed (keeping the health state), or stopped (the
// endpoint goes back to HealthUnknown when checks are removed).
func (p *Pool) syncCheckerLocked(e *Endpoint, cfg *HealthCheckConfig) {
	if e.checker != nil && e.checker.cfg.equal(cfg) {
		return
	}
	if e.checker != nil {
		e.checker.stop()
		e.checker = nil
	}
	if cfg == nil {
		e.hcSuccesses.Store(0)
		e.hcFailures.Store(0)
		if e.Health() != HealthUnknown {
			p.setHealthLocked(e, HealthUnknown)
			p.log.Info("endpoint health unknown: health check removed", "endpoint", e.addr)
		}
		return
	}
	if p.closed {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	e.checker = &checker{cfg: cfg, cancel: cancel}
	pr := p.reg.newProber(e, cfg)
	p.reg.wg.Add(1)
	go func() {
		defer p.reg.wg.Done()
		defer pr.close()
		p.runChecker(ctx, e, cfg, pr)
	}()
}

// runChecker probes e every Interval plus a random Jitter, the first time
// after a Jitter only.
func (p *Pool) runChecker(ctx context.Context, e *Endpoint, cfg *HealthCheckConfig, pr prober) {
	timer := time.NewTimer(p.reg.jitter(cfg.Jitter))
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		pctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
		err := pr.probe(pctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		p.recordProbe(e, cfg, err)
		timer.Reset(cfg.Interval + p.reg.jitter(cfg.Jitter))
	}
}

// recordProbe applies one probe result to the endpoint's thresholds.
func (p *Pool) recordProbe(e *Endpoint, cfg *HealthCheckConfig, err error) {
	var to HealthState
	if err == nil {
		e.hcFailures.Store(0)
		n := e.hcSuccesses.Add(1)
		switch e.Health() {
		case HealthUnknown:
			to = HealthHealthy
		case HealthUnhealthy:
			if n < int32(cfg.HealthyThreshold) {
				return
			}
			to = HealthHealthy
		default:
			return
		}
	} else {
		e.hcSuccesses.Store(0)
		n := e.hcFailures.Add(1)
		if e.Health() == HealthUnhealthy || n < int32(cfg.UnhealthyThreshold) {
			return
		}
		to = HealthUnhealthy
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.eps[e.addr] != e || e.checker == nil || e.checker.cfg != cfg {
		return
	}
	from := e.Health()
	if from == to {
		return
	}
	p.setHealthLocked(e, to)
	p.recountLocked()
	if to == HealthUnhealthy {
		p.log.Warn("endpoint unhealthy", "endpoint", e.addr, "from", from.String(), "failures", e.hcFailures.Load(), "error", err.Error())
	} else {
		p.log.Info("endpoint healthy", "endpoint", e.addr, "from", from.String(), "successes", e.hcSuccesses.Load())
	}
}

// prober runs one probe of one endpoint.
type prober interface {
	probe(ctx context.Context) error
	close()
}

func (r *Registry) newProber(e *Endpoint, cfg *HealthCheckConfig) prober {
	var tlsCfg *tls.Config
	if cfg.TLS != nil {
		tlsCfg = cfg.TLS.Clone()
		if tlsCfg.ServerName == "" {
			tlsCfg.ServerName = e.hostname
		}
	}
	if cfg.TCP != nil {
		return &tcpProber{dialer: r.opts.Dialer, addr: e.addr, tls: tlsCfg, send: cfg.TCP.Send, expect: cfg.TCP.Expect}
	}
	h := cfg.HTTP
	dialer, addr := r.opts.Dialer, e.addr
	scheme := "http"
	if tlsCfg != nil {
		scheme = "https"
	}
	host := h.Host
	if host == "" {
		host = e.configAddr
	}
	var tr idleCloser
	var rt http.RoundTripper
	if h.HTTP2 {
		t2 := &http2.Transport{
			AllowHTTP: true,
			DialTLSContext: func(ctx context.Context, _, _ string, _ *tls.Config) (net.Conn, error) {
				c, err := dialer.DialContext(ctx, "tcp", addr)
				if err != nil || tlsCfg == nil {
					return c, err
				}
				cfg := tlsCfg.Clone()
				cfg.NextProtos = []string{"h2"}
				tc := tls.Client(c, cfg)
				if err := tc.HandshakeContext(ctx); err != nil {
					c.Close()
					return nil, fmt.Errorf("tls handshake: %w", err)
				}
				if p := tc.ConnectionState().NegotiatedProtocol; p != "h2" {
					tc.Close()
					return nil, fmt.Errorf("the endpoint does not offer HTTP/2 (ALPN %q)", p)
				}
				return tc, nil
			},
		}
		tr, rt = t2, t2
	} else {
		t1 := &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return dialer.DialContext(ctx, "tcp", addr)
			},
			TLSClientConfig:    tlsCfg,
			DisableKeepAlives:  true,
			DisableCompression: true,
			ForceAttemptHTTP2:  false,
		}
		tr, rt = t1, t1
	}
	return &httpProber{
		client: &http.Client{
			Transport:     rt,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		tr:       tr,
		method:   h.Method,
		url:      scheme + "://" + addr + h.Path,
		host:     host,
		expected: h.ExpectedStatus,
	}
}

type idleCloser interface{ CloseIdleConnections() }

type httpProber struct {
	client   *http.Client
	tr       idleCloser
	method   string
	url      string
	host     string
	expected []int
}

func (h *httpProber) probe(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, h.method, h.url, nil)
	if err != nil {
		return fmt.Errorf("building probe request: %w", err)
	}
	req.Host = h.host
	req.Header.Set("User-Agent", "meridian-health-check")
	resp, err := h.client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.CopyN(io.Discard, resp.Body, 64<<10)
	resp.Body.Close()
	// Every probe opens its own connection (HTTP/1.1 probes disable
	// keep-alive; HTTP/2 ones drop the connection here).
	h.tr.CloseIdleConnections()
	if !slices.Contains(h.expected, resp.StatusCode) {
		return fmt.Errorf("unexpected status %d", resp.StatusCode)
	}
	return nil
}

func (h *httpProber) close() { h.tr.CloseIdleConnections() }

type tcpProber struct {
	dialer       Dialer
	addr         string
	tls          *tls.Config
	send, expect string
}

func (t *tcpProber) probe(ctx context.Context) error {
	conn, err := t.dialer.DialContext(ctx, "tcp", t.addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	if t.tls != nil {
		tc := tls.Client(conn, t.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			return fmt.Errorf("tls handshake: %w", err)
		}
		conn = tc
	}
	if t.send != "" {
		if _, err := io.WriteString(conn, t.send); err != nil {
			return fmt.Errorf("sending probe: %w", err)
		}
	}
	if t.expect != "" {
		buf := make([]byte, len(t.expect))
		if n, err := io.ReadFull(conn, buf); err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
				return fmt.Errorf("reply %q is shorter than expected %q", buf[:n], t.expect)
			}
			return fmt.Errorf("reading reply: %w", err)
		}
		if !bytes.Equal(buf, []byte(t.expect)) {
			return fmt.Errorf("reply %q does not start with %q", buf, t.expect)
		}
	}
	return nil
}

func (t *tcpProber) close() {}
