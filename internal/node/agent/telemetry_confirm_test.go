package agent_test

import (
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/internal/distrib"
	"github.com/meridian-platform/meridian/internal/node/agent"
	"github.com/meridian-platform/meridian/internal/sites/sitestest"
	"github.com/meridian-platform/meridian/internal/testfixture"
)

// relay forwards TCP connections to target. Once swallow is called, what
// clients send is read and dropped (their writes succeed, nothing
// arrives), as when the far end dies with the bytes in flight; cut then
// closes every connection and forwards again.
type relay struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	drop   bool
	conns  []net.Conn
}

func startRelay(t *testing.T, target string) *relay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &relay{ln: ln, target: target}
	t.Cleanup(func() { ln.Close(); r.cut() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			r.mu.Lock()
			r.conns = append(r.conns, c, u)
			r.mu.Unlock()
			go func() { _, _ = io.Copy(c, u); c.Close() }()
			go func() {
				buf := make([]byte, 32<<10)
				for {
					n, err := c.Read(buf)
					r.mu.Lock()
					drop := r.drop
					r.mu.Unlock()
					if n > 0 && !drop {
						if _, werr := u.Write(buf[:n]); werr != nil {
							break
						}
					}
					if err != nil {
						break
					}
				}
				u.Close()
			}()
		}
	}()
	return r
}

func (r *relay) swallow() {
	r.mu.Lock()
	r.drop = true
	r.mu.Unlock()
}

func (r *relay) cut() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.conns {
		c.Close()
	}
	r.conns, r.drop = nil, false
}

// relayedAgent starts a console and a node "s1" that reaches it through a
// relay, and waits for the node's first snapshot.
func relayedAgent(t *testing.T) (*sitestest.Env, *relay, *agent.Agent) {
	t.Helper()
	e := sitestest.Start(t)
	tok := e.CreateToken(t, "", "t", v1.SiteTokenSpec{AutoApprove: true})
	r := startRelay(t, strings.TrimPrefix(e.URL, "https://"))
	a := sitestest.RunAgent(t, agent.Options{ConsoleURL: "https://" + r.ln.Addr().String(), Token: tok, Name: "s1",
		DataDir: filepath.Join(t.TempDir(), "n"), CAData: e.CA, Applier: &sitestest.Recorder{},
		TelemetryInterval: time.Hour})
	testfixture.WaitFor(t, "first snapshot", func() bool { return a.Version() != "" })
	return e, r, a
}

// TestTelemetryLostInFlightIsSentAgain: an event report the node wrote on
// a stream whose console never got it (the console went away with it in
// flight) is sent again on the next stream, once the console has shown
// that it confirms reports. Without confirmations the node counted such a
// report as delivered and the event was lost.
func TestTelemetryLostInFlightIsSentAgain(t *testing.T) {
	e, r, a := relayedAgent(t)
	events := func() []string {
		var out []string
		for _, ev := range e.Console.Distributor().Telemetry(e.Tenant, "s1").Events {
			out = append(out, ev.Message)
		}
		return out
	}

	a.RecordEvent(distrib.Event{Type: "waf.block", Message: "before"})
	testfixture.WaitFor(t, "the first event at the console", func() bool { return len(events()) == 1 })
	testfixture.WaitFor(t, "the console's confirmation", a.TelemetryConfirmedForTest)

	// The console stops hearing the node; the node writes a report.
	r.swallow()
	a.RecordEvent(distrib.Event{Type: "waf.block", Message: "in flight"})
	testfixture.WaitFor(t, "the report written", func() bool { return a.BufferedEvents() == 0 })
	// The connection dies; the node reconnects and sends it again.
	r.cut()
	testfixture.WaitFor(t, "the event written into the dead stream at the console", func() bool {
		return strings.Join(events(), ",") == "before,in flight"
	})
	if a.BufferedEvents() != 0 {
		t.Fatalf("%d events still buffered", a.BufferedEvents())
	}
}

// TestTelemetryLostBeforeFirstConfirmation: the console says with its
// first configuration update that it confirms reports, so the very first
// report of a node, lost in flight before any confirmation came back, is
// sent again on the next stream.
func TestTelemetryLostBeforeFirstConfirmation(t *testing.T) {
	e, r, a := relayedAgent(t)
	if !a.TelemetryConfirmedForTest() {
		t.Fatal("the console's first update did not say that it confirms telemetry reports")
	}
	r.swallow()
	a.RecordEvent(distrib.Event{Type: "waf.block", Message: "first"})
	testfixture.WaitFor(t, "the report written", func() bool { return a.BufferedEvents() == 0 })
	r.cut()
	testfixture.WaitFor(t, "the first event at the console", func() bool {
		evs := e.Console.Distributor().Telemetry(e.Tenant, "s1").Events
		return len(evs) == 1 && evs[0].Message == "first"
	})
}
