package agent_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/internal/node/agent"
	"github.com/meridian-platform/meridian/internal/testfixture"
)

// TestListenerBindFailureInRollout: a load balancer whose listener cannot
// bind on one node (the port is taken there) shows that node's failure in
// its own rollout line, attributed to the object, not only in the Site's
// status.
func TestListenerBindFailureInRollout(t *testing.T) {
	port := testfixture.FreePort(t)
	e, tok, url, _ := startShop(t, port)
	admin := e.Client(t, "")
	ctx := context.Background()

	// eu-2 binds the port first; eu-1 runs in the same network namespace,
	// so its listener on the same address cannot bind.
	startNode(t, e, tok, "eu-2", filepath.Join(t.TempDir(), "eu-2"))
	testfixture.WaitFor(t, "traffic through eu-2", func() bool { _, b := testfixture.Get(url); return b == "one" })
	startNode(t, e, tok, "eu-1", filepath.Join(t.TempDir(), "eu-1"))

	var lb v1.HTTPLoadBalancer
	testfixture.WaitFor(t, "the failure in the load balancer's rollout line", func() bool {
		admin.Get(ctx, "HTTPLoadBalancer", "retail", "shop", &lb)
		return strings.HasPrefix(lb.Status.Rollout, "applied 1/2 sites; 1 failed: eu-1: ")
	})
	if want := fmt.Sprintf("127.0.0.1:%d", port); !strings.Contains(lb.Status.Rollout, want) {
		t.Fatalf("rollout line %q does not name the listener %s", lb.Status.Rollout, want)
	}
	if strings.Contains(lb.Status.Rollout, "eu-2") {
		t.Fatalf("rollout line %q blames the node that serves", lb.Status.Rollout)
	}
	// The pool the load balancer uses applied everywhere.
	var pool v1.OriginPool
	testfixture.WaitFor(t, "the pool's rollout line", func() bool {
		admin.Get(ctx, "OriginPool", "retail", "shop", &pool)
		return pool.Status.Rollout == "applied 2/2 sites"
	})
	// The Site shows the object, not a node-level error.
	var s v1.Site
	testfixture.WaitFor(t, "eu-1's status errors", func() bool {
		admin.Get(ctx, "Site", "", "eu-1", &s)
		return len(s.Status.Errors) == 1
	})
	if !strings.HasPrefix(s.Status.Errors[0], "HTTPLoadBalancer retail/shop: ") {
		t.Fatalf("eu-1 status error %q is not attributed to the load balancer", s.Status.Errors[0])
	}
}

// TestListenerRetriedWhenPortFrees: a listener that could not bind
// because another process held the port starts by itself once the port
// is free (the node applies again with backoff, no update needed), and the
// node's new ack clears the failure from the rollout line and the Site.
func TestListenerRetriedWhenPortFrees(t *testing.T) {
	hold, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Close()
	port := hold.Addr().(*net.TCPAddr).Port
	e, tok, url, _ := startShop(t, port)
	admin := e.Client(t, "")
	ctx := context.Background()
	startNode(t, e, tok, "eu-1", filepath.Join(t.TempDir(), "eu-1"))

	var lb v1.HTTPLoadBalancer
	testfixture.WaitFor(t, "the bind failure in the rollout line", func() bool {
		admin.Get(ctx, "HTTPLoadBalancer", "retail", "shop", &lb)
		return strings.HasPrefix(lb.Status.Rollout, "applied 0/1 sites; 1 failed: eu-1: ") && strings.Contains(lb.Status.Rollout, "address already in use")
	})
	// Still failing after a few retries while the port is held.
	time.Sleep(1500 * time.Millisecond)
	if admin.Get(ctx, "HTTPLoadBalancer", "retail", "shop", &lb); !strings.Contains(lb.Status.Rollout, "1 failed") {
		t.Fatalf("rollout %q while the port is still taken", lb.Status.Rollout)
	}
	hold.Close()
	testfixture.WaitFor(t, "traffic once the port is free", func() bool { _, b := testfixture.Get(url); return b == "one" })
	testfixture.WaitFor(t, "the rollout line clear", func() bool {
		admin.Get(ctx, "HTTPLoadBalancer", "retail", "shop", &lb)
		return lb.Status.Rollout == "applied 1/1 sites"
	})
	var s v1.Site
	testfixture.WaitFor(t, "eu-1's status errors cleared", func() bool {
		admin.Get(ctx, "Site", "", "eu-1", &s)
		return len(s.Status.Errors) == 0
	})
}

// TestDecommissionStopsServing: a decommissioned site's node removes the
// tenant's configuration and its last-known-good copy and ends with a
// clear error, whether it is connected when that happens or finds out
// when it comes back.
func TestDecommissionStopsServing(t *testing.T) {
	e, tok, url, _ := startShop(t, testfixture.FreePort(t))
	admin := e.Client(t, "")
	ctx := context.Background()

	// Connected when decommissioned.
	dirA := filepath.Join(t.TempDir(), "a")
	a := startNode(t, e, tok, "station-a", dirA)
	testfixture.WaitFor(t, "traffic through station-a", func() bool { _, b := testfixture.Get(url); return b == "one" })
	if err := admin.Patch(ctx, "Site", "", "station-a", []byte(`{"spec":{"decommissioned":true}}`), nil); err != nil {
		t.Fatal(err)
	}
	waitEnd(t, a)
	checkDecommissioned(t, a, dirA, url, "station-a")

	// A restart with the same data directory does not bring it back.
	a2 := startNode(t, e, "", "station-a", dirA)
	waitEnd(t, a2)
	checkDecommissioned(t, a2, dirA, url, "station-a")

	// Offline when decommissioned: it serves its last-known-good copy
	// until the console tells it, at its next connection.
	dirB := filepath.Join(t.TempDir(), "b")
	b := startNode(t, e, tok, "station-b", dirB)
	testfixture.WaitFor(t, "traffic through station-b", func() bool { _, body := testfixture.Get(url); return body == "one" })
	testfixture.WaitFor(t, "station-b acknowledged", func() bool {
		var s v1.Site
		admin.Get(ctx, "Site", "", "station-b", &s)
		return s.Status.AppliedVersion != "" && s.Status.AppliedVersion == b.a.Version()
	})
	b.stop()
	if err := admin.Patch(ctx, "Site", "", "station-b", []byte(`{"spec":{"decommissioned":true}}`), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dirB, "snapshot.enc")); err != nil {
		t.Fatalf("station-b has no last-known-good copy before it learns of the decommission: %v", err)
	}
	b2 := startNode(t, e, "", "station-b", dirB)
	waitEnd(t, b2)
	checkDecommissioned(t, b2, dirB, url, "station-b")
}

func waitEnd(t *testing.T, n *runningNode) {
	t.Helper()
	select {
	case <-n.done:
	case <-time.After(15 * time.Second):
		t.Fatal("the node kept running after its site was decommissioned")
	}
}

func checkDecommissioned(t *testing.T, n *runningNode, dir, url, site string) {
	t.Helper()
	if !errors.Is(n.err, agent.ErrDecommissioned) || !strings.Contains(n.err.Error(), fmt.Sprintf("site %q is decommissioned", site)) {
		t.Fatalf("Run ended with %v, want the decommissioned error for %s", n.err, site)
	}
	if c, body := testfixture.Get(url); c != 0 {
		t.Fatalf("the decommissioned node still serves: %d %q", c, body)
	}
	if n.a.Version() != "" {
		t.Fatalf("the decommissioned node still reports version %q", n.a.Version())
	}
	for _, f := range []string{"snapshot.enc", "state.key"} {
		if _, err := os.Stat(filepath.Join(dir, f)); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s still in the data directory after decommissioning: %v", f, err)
		}
	}
}
