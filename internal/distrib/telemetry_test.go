package distrib_test

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/internal/distrib"
	"github.com/meridian-platform/meridian/internal/node/agent"
	"github.com/meridian-platform/meridian/internal/sites/sitestest"
	"github.com/meridian-platform/meridian/internal/testfixture"
)

// TestTelemetryBufferedWhileConsoleAway: counters and events reach the
// console; events recorded while it is away wait on the node (bounded,
// oldest dropped and counted) and arrive when it is back.
func TestTelemetryBufferedWhileConsoleAway(t *testing.T) {
	e := sitestest.Start(t)
	tok := e.CreateToken(t, "", "t", v1.SiteTokenSpec{AutoApprove: true})
	a := sitestest.RunAgent(t, agent.Options{ConsoleURL: e.URL, Token: tok, Name: "s1", DataDir: filepath.Join(t.TempDir(), "n"),
		CAData: e.CA, Applier: &sitestest.Recorder{}, MaxBackoff: 200 * time.Millisecond,
		MaxBufferedEvents: 3, TelemetryInterval: 50 * time.Millisecond})
	testfixture.WaitFor(t, "first snapshot", func() bool { return a.Version() != "" })

	a.SetCounter("requests_total", 5)
	a.RecordEvent(distrib.Event{Type: "waf.block", Message: "first"})
	testfixture.WaitFor(t, "telemetry at the console", func() bool {
		tel := e.Console.Distributor().Telemetry(e.Tenant, "s1")
		return tel.Counters["requests_total"] == 5 && len(tel.Events) == 1 && tel.Events[0].Message == "first"
	})

	e.Stop()
	for i := 0; i < 5; i++ {
		a.RecordEvent(distrib.Event{Type: "waf.block", Message: fmt.Sprint("offline-", i)})
	}
	testfixture.WaitFor(t, "events buffered on the node", func() bool { return a.BufferedEvents() == 3 })
	e.Restart(t)
	testfixture.WaitFor(t, "buffered events at the console", func() bool {
		tel := e.Console.Distributor().Telemetry(e.Tenant, "s1")
		return len(tel.Events) == 3 && tel.Events[0].Message == "offline-2" && tel.Events[2].Message == "offline-4" && tel.Dropped == 2
	})
	if a.BufferedEvents() != 0 {
		t.Fatalf("%d events still buffered", a.BufferedEvents())
	}
}
