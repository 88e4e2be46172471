package secroute_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/meridian-platform/meridian/internal/dataplane/config"
)

// The security examples decode, validate and compile on a node with both
// GeoIP databases; without them the geo policies are reported by field.
func TestSecurityExamples(t *testing.T) {
	files, _ := filepath.Glob("../../examples/security/*.yaml")
	files = append(files, "../../examples/standalone/secured.yaml")
	if len(files) < 2 {
		t.Fatalf("examples not found: %v", files)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		objs := decodeAll(t, string(b))
		tab := config.Compile(objs, config.WithGeoIP(true, true))
		if len(tab.Errors) > 0 {
			t.Fatalf("%s: %v", f, tab.Errors)
		}
		if len(tab.HTTP) != 1 {
			t.Fatalf("%s: %d HTTP listeners", f, len(tab.HTTP))
		}
		if filepath.Base(f) == "payments.yaml" {
			tab = config.Compile(objs, config.WithGeoIP(false, false))
			if len(tab.Errors) != 4 { // two policies, the binding and the load balancer
				t.Errorf("%s without GeoIP: %v", f, tab.Errors)
			}
		}
	}
}
