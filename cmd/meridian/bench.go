package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/meridian-platform/meridian/internal/distrib/fanout"
)

// newBenchCommand returns `meridian bench`: measurements that need the
// binary itself (the data-plane benchmarks against nginx and HAProxy are
// `make bench`).
func newBenchCommand(out, errOut io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure the platform on this machine",
	}
	var sites, parallel int
	var verbose bool
	var heapProfile string
	fan := &cobra.Command{
		Use:   "fanout",
		Short: "Time a change reaching N sites: one console process, N simulated nodes on real mTLS gRPC streams",
		Long: `Start one 'meridian console' process and N simulated nodes (each a real
mTLS gRPC sync stream; snapshots kept in memory), change a load balancer
that every site carries, and measure the time until every site has
acknowledged it; then restart the console and time until all N are back in
sync. Prints one JSON line: sites, p50_ms, p99_ms, max_ms, console_rss_mb,
console_rss_anon_mb, console_rss_file_mb, console_cpu_s, resync_s.`,
		Example: `  meridian bench fanout --sites 10000
  meridian bench fanout --sites 1000 -v`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			self, err := os.Executable()
			if err != nil {
				return fmt.Errorf("finding the meridian binary: %w", err)
			}
			dir, err := os.MkdirTemp("", "meridian-fanout-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			if heapProfile != "" {
				if heapProfile, err = filepath.Abs(heapProfile); err != nil {
					return fmt.Errorf("--heap-profile: %w", err)
				}
			}
			o := fanout.Options{Sites: sites, Parallel: parallel, DataDir: dir, HeapProfile: heapProfile,
				Console: func(args []string) *exec.Cmd { return exec.Command(self, append([]string{"console"}, args...)...) }}
			if verbose {
				o.Log = errOut
			}
			ctx, cancel := signalContext(cmd)
			defer cancel()
			res, err := fanout.Run(ctx, o)
			if err != nil {
				return err
			}
			return json.NewEncoder(out).Encode(res)
		},
	}
	fan.Flags().IntVar(&sites, "sites", 10000, "number of simulated sites")
	fan.Flags().IntVar(&parallel, "parallel", 16, "concurrent registrations")
	fan.Flags().StringVar(&heapProfile, "heap-profile", "", "write the console's heap profile to this file after the change reached every site (`go tool pprof`)")
	fan.Flags().BoolVarP(&verbose, "verbose", "v", false, "print progress on standard error")
	cmd.AddCommand(fan)
	return cmd
}
