package cli

import (
	"bytes"
	"strings"
	"testing"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/client"
)

func TestNetworkPolicyWideColumns(t *testing.T) {
	ki, ok := v1.LookupKind("netpol")
	if !ok {
		t.Fatal("NetworkPolicy is not registered under netpol")
	}
	raw := rawObj(t, `{"kind":"NetworkPolicy","metadata":{"name":"edge","namespace":"retail"},"spec":{"mode":"dryRun","defaultAction":"deny","listenerPorts":[8443,9000],"sites":{"virtualSite":"eu"},"ingress":[{"name":"a","action":"allow"},{"name":"b","action":"deny"}]}}`)
	var buf bytes.Buffer
	if err := printList(&buf, outWide, ki, []*client.Raw{raw}, printOptions{now: testNow}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("output:\n%s", buf.String())
	}
	for _, h := range []string{"MODE", "RULES", "DEFAULT", "LISTENER-PORTS", "VIRTUAL-SITE"} {
		if !strings.Contains(lines[0], h) {
			t.Errorf("header %q lacks %s", lines[0], h)
		}
	}
	if f := strings.Fields(lines[1]); !strings.Contains(lines[1], "dryRun") || !strings.Contains(lines[1], "deny") ||
		!strings.Contains(lines[1], "8443,9000") || !strings.Contains(strings.Join(f, " "), "8443,9000 eu") {
		t.Errorf("row %q", lines[1])
	}
}
