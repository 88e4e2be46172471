package main

import (
	"testing"

	"github.com/meridian-platform/meridian/internal/dataplane"
)

func TestNodeProcs(t *testing.T) {
	for _, tc := range []struct {
		env, engine string
		procs, cpus int
		want        int
	}{
		{"", dataplane.EngineEvloop, 2, 2, 3},
		{"", dataplane.EngineEvloop, 8, 8, 9},
		{"2", dataplane.EngineEvloop, 2, 2, 0},   // GOMAXPROCS set: it wins
		{"", dataplane.EngineEvloop, 1, 4, 0},    // a CPU quota of 1
		{"", dataplane.EngineGoroutine, 2, 2, 0}, // no event loops
		{"", dataplane.EngineEvloop, 3, 2, 0},    // procs above the CPUs already
	} {
		if got := nodeProcs(tc.env, tc.engine, tc.procs, tc.cpus); got != tc.want {
			t.Errorf("nodeProcs(%q, %q, %d, %d) = %d, want %d", tc.env, tc.engine, tc.procs, tc.cpus, got, tc.want)
		}
	}
}
