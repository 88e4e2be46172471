package dataplane

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/meridian-platform/meridian/internal/dataplane/dptest"
	"github.com/meridian-platform/meridian/internal/netpolicy"
	"github.com/meridian-platform/meridian/internal/secevents"
)

// eventsTo returns a real event writer whose written events arrive on ch.
func eventsTo(t *testing.T) (*secevents.Writer, chan *secevents.Event) {
	ch := make(chan *secevents.Event, 64)
	w := secevents.NewWriter(io.Discard, secevents.WriterOptions{FlushInterval: 10 * time.Millisecond,
		OnEvent: func(e *secevents.Event) { ch <- e }})
	t.Cleanup(func() { w.Close() })
	return w, ch
}

func nextEvent(t *testing.T, ch chan *secevents.Event) *secevents.Event {
	t.Helper()
	select {
	case e := <-ch:
		return e
	case <-time.After(5 * time.Second):
		t.Fatal("no security event")
		return nil
	}
}

// dialFrom opens a TCP connection from the loopback address src.
func dialFrom(t *testing.T, src, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dialing %s from %s: %v", addr, src, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// expectReset connects from src and checks that the server resets the
// connection without having written or waited for anything: the connect
// itself or the first read fails with ECONNRESET at once.
func expectReset(t *testing.T, src, addr string) {
	t.Helper()
	start := time.Now()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err == nil {
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		var n int
		n, err = c.Read(make([]byte, 1))
		if n != 0 {
			t.Fatalf("read %d bytes from a connection that should be reset", n)
		}
	}
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("connection from %s: %v, want a connection reset", src, err)
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Fatalf("reset after %v", d)
	}
}

func TestNetworkPolicyCutsBeforeTLS(t *testing.T) {
	ca, err := dptest.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	backend, hits := echoBackend(t, "a")
	port := freePort(t)
	src := certYAML(t, ca, "def", true, "app.test") + pool("a", hostOf(backend.URL)) + fmt.Sprintf(`---
apiVersion: meridian/v1
kind: HTTPLoadBalancer
metadata: {name: lb, namespace: t}
spec:
  domains: ["*"]
  listeners: [{port: %d, address: 127.0.0.1, tls: {certificateRef: def}}]
  defaultPool: a
---
apiVersion: meridian/v1
kind: NetworkPolicy
metadata: {name: edge, namespace: t}
spec:
  ingress:
    - {name: lab, action: deny, sources: [127.0.0.2], ports: [{port: %d}], protocol: TCP}
---
apiVersion: meridian/v1
kind: NetworkPolicy
metadata: {name: trial, namespace: t}
spec:
  mode: dryRun
  ingress:
    - {name: other-lab, action: deny, sources: [127.0.0.3/32]}
`, port, port)
	events, ch := eventsTo(t)
	s := startServer(t, src, Options{SecurityEvents: events})
	addr := fmt.Sprintf("127.0.0.1:%d", port)

	// Denied: reset before a byte is read, so before the TLS handshake.
	expectReset(t, "127.0.0.2", addr)
	e := nextEvent(t, ch)
	if e.Kind != netpolicy.EventKind || e.Action != secevents.ActionDenied || e.Source != "t/edge/lab" || e.LoadBalancer != "t/lb" || !strings.HasPrefix(e.Client, "127.0.0.2:") {
		t.Fatalf("deny event %+v", e)
	}
	// A TLS client is refused too, and the server never saw a handshake.
	d := tls.Dialer{NetDialer: &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}, Config: &tls.Config{RootCAs: ca.Pool, ServerName: "app.test"}}
	if c, err := d.Dial("tcp", addr); err == nil {
		c.Close()
		t.Fatal("TLS handshake succeeded for a denied client")
	}
	nextEvent(t, ch)
	var tlsErrs dto.Metric
	if err := s.metrics.tlsErrors.Write(&tlsErrs); err != nil || tlsErrs.GetCounter().GetValue() != 0 {
		t.Fatalf("%v TLS handshake errors (%v): the denied connections reached TLS", tlsErrs.GetCounter().GetValue(), err)
	}
	if n := s.netpol.Value("t", "edge", "lab", netpolicy.Deny, false); n != 2 {
		t.Fatalf("deny counter %d, want 2", n)
	}

	// Allowed: the request goes through.
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool, ServerName: "app.test"}}}
	resp, err := client.Get("https://" + addr + "/ok")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || hits.Load() != 1 {
		t.Fatalf("allowed client: status %d, backend hits %d", resp.StatusCode, hits.Load())
	}
	if n := s.netpol.Value("t", "edge", netpolicy.DefaultRule, netpolicy.Allow, false); n != 1 {
		t.Fatalf("default-allow counter %d, want 1", n)
	}

	// Dry run: served, counted and reported as detected.
	c := dialFrom(t, "127.0.0.3", addr)
	tc := tls.Client(c, &tls.Config{RootCAs: ca.Pool, ServerName: "app.test"})
	if err := tc.Handshake(); err != nil {
		t.Fatalf("dry-run policy refused a connection: %v", err)
	}
	e = nextEvent(t, ch)
	if e.Action != secevents.ActionDetected || e.Source != "t/trial/other-lab" {
		t.Fatalf("dry-run event %+v", e)
	}
	if n := s.netpol.Value("t", "trial", "other-lab", netpolicy.Deny, true); n != 1 {
		t.Fatalf("dry-run counter %d, want 1", n)
	}
}

func TestNetworkPolicyReload(t *testing.T) {
	backend, _ := echoBackend(t, "a")
	port := freePort(t)
	base := pool("a", hostOf(backend.URL)) + lbSpec(`["*"]`, []string{listenerAt(port)}, "defaultPool: a")
	withPolicy := func(mode string) string {
		return base + fmt.Sprintf(`---
apiVersion: meridian/v1
kind: NetworkPolicy
metadata: {name: lockdown, namespace: t}
spec:
  mode: %s
  defaultAction: deny
  ingress:
    - {name: lab, action: allow, sources: ["127.0.0.2/31"]}
`, mode)
	}
	s := startServer(t, base, Options{})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	key := fmt.Sprintf("127.0.0.1:%d", port)
	lnBefore := s.listeners[key]

	kept := dialFrom(t, "127.0.0.1", addr)
	br := bufio.NewReader(kept)
	roundTrip := func(c net.Conn, br *bufio.Reader) {
		t.Helper()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(c, "GET /x HTTP/1.1\r\nHost: app.test\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	roundTrip(kept, br)

	// Lock down live: 127.0.0.1 is no longer admitted, its open
	// connection is kept, the lab still gets in.
	apply(t, s, withPolicy("enforce"))
	if s.listeners[key] != lnBefore {
		t.Fatal("the listener was restarted")
	}
	expectReset(t, "127.0.0.1", addr)
	roundTrip(kept, br)
	lab := dialFrom(t, "127.0.0.3", addr)
	roundTrip(lab, bufio.NewReader(lab))

	// Back to dry run: admitted again, counted as a would-be deny.
	apply(t, s, withPolicy("dryRun"))
	again := dialFrom(t, "127.0.0.1", addr)
	roundTrip(again, bufio.NewReader(again))
	if n := s.netpol.Value("t", "lockdown", netpolicy.DefaultRule, netpolicy.Deny, true); n != 1 {
		t.Fatalf("dry-run counter %d, want 1", n)
	}
	if n := s.netpol.Value("t", "lockdown", netpolicy.DefaultRule, netpolicy.Deny, false); n != 1 {
		t.Fatalf("enforced counter %d, want 1 (kept across reloads)", n)
	}

	// Policy removed: nothing is checked any more.
	apply(t, s, base)
	roundTrip(kept, br)
	last := dialFrom(t, "127.0.0.1", addr)
	roundTrip(last, bufio.NewReader(last))
}

// A TCP load balancer on an IPv6 address: the policy's IPv6 rule resets
// the client before its bytes reach the origin; a PROXY protocol listener
// checks the socket's peer (the proxy), not the address in the header.
func TestNetworkPolicyTCPAndIPv6(t *testing.T) {
	ln6, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	port := ln6.Addr().(*net.TCPAddr).Port
	ln6.Close()
	origin, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { origin.Close() })
	got := make(chan string, 4)
	go func() {
		for {
			c, err := origin.Accept()
			if err != nil {
				return
			}
			b := make([]byte, 64)
			n, _ := c.Read(b)
			got <- string(b[:n])
			c.Write([]byte("pong"))
			c.Close()
		}
	}()
	ppPort := freePort(t)
	src := pool("o", origin.Addr().String()) + fmt.Sprintf(`---
apiVersion: meridian/v1
kind: TCPLoadBalancer
metadata: {name: v6, namespace: t}
spec: {listeners: [{port: %d, address: "::1"}], pool: o}
---
apiVersion: meridian/v1
kind: TCPLoadBalancer
metadata: {name: pp, namespace: t}
spec: {listeners: [{port: %d, address: 127.0.0.1, proxyProtocol: true}], pool: o}
---
apiVersion: meridian/v1
kind: NetworkPolicy
metadata: {name: v6-only-global, namespace: t}
spec:
  ingress:
    - {name: loopback6, action: deny, sources: ["::1/128"], ports: [{port: %d}]}
    - {name: proxied, action: deny, sources: ["198.51.100.0/24"]}
`, port, ppPort, port)
	s := startServer(t, src, Options{})
	expectResetV6 := func() {
		t.Helper()
		c, err := net.DialTimeout("tcp", fmt.Sprintf("[::1]:%d", port), 5*time.Second)
		if err == nil {
			defer c.Close()
			// On a slow machine the reset can come before the write,
			// which then reports it (and a read after it sees only the
			// end of the stream): the first error is the verdict. A
			// plain close lets the write through and the read see EOF.
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err = c.Write([]byte("ping")); err == nil {
				_, err = c.Read(make([]byte, 1))
			}
		}
		if !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, syscall.EPIPE) {
			t.Fatalf("IPv6 client: %v, want a reset", err)
		}
	}
	expectResetV6()
	select {
	case b := <-got:
		t.Fatalf("the origin received %q from a denied client", b)
	case <-time.After(100 * time.Millisecond):
	}
	if n := s.netpol.Value("t", "v6-only-global", "loopback6", netpolicy.Deny, false); n != 1 {
		t.Fatalf("deny counter %d", n)
	}
	// PROXY header naming a client in 198.51.100.0/24: the socket's peer
	// (127.0.0.1) is what the policy sees, so it is served.
	c := dialFrom(t, "127.0.0.1", fmt.Sprintf("127.0.0.1:%d", ppPort))
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, "PROXY TCP4 198.51.100.7 127.0.0.1 5555 80\r\nping"); err != nil {
		t.Fatal(err)
	}
	reply, _ := io.ReadAll(c)
	if string(reply) != "pong" || <-got != "ping" {
		t.Fatalf("proxied client: reply %q", reply)
	}
}
