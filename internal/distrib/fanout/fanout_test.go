package fanout

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/meridian-platform/meridian/internal/console"
)

// TestMain lets the test binary play the console process.
func TestMain(m *testing.M) {
	if os.Getenv("MERIDIAN_FANOUT_ROLE") == "console" {
		cmd := console.NewCommand(os.Stdout, os.Stderr)
		cmd.SetArgs(strings.Split(os.Getenv("MERIDIAN_FANOUT_ARGS"), "\x1f"))
		if err := cmd.Execute(); err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func selfConsole(args []string) *exec.Cmd {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "MERIDIAN_FANOUT_ROLE=console", "MERIDIAN_FANOUT_ARGS="+strings.Join(args, "\x1f"))
	return cmd
}

// TestFanout runs a small fan-out (20 sites) by default; set
// MERIDIAN_FANOUT_SITES=10000 for the full measurement.
func TestFanout(t *testing.T) {
	n := 20
	if v := os.Getenv("MERIDIAN_FANOUT_SITES"); v != "" {
		n, _ = strconv.Atoi(v)
	} else if testing.Short() {
		t.Skip("fan-out needs a console process")
	}
	res, err := Run(context.Background(), Options{Sites: n, Console: selfConsole, DataDir: t.TempDir(), Log: testLog{t}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(res)
	t.Logf("%s", b)
	if res.Sites != n || res.MaxMs <= 0 || res.ResyncS <= 0 {
		t.Fatalf("implausible result %s", b)
	}
}

type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Logf("%s", strings.TrimSpace(string(p)))
	return len(p), nil
}
