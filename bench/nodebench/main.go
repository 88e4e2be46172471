// Command nodebench runs a standalone Meridian node for the benchmarks when
// the meridian binary at hand has no `node` command yet.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/meridian-platform/meridian/internal/node"
)

func main() {
	cfg := flag.String("config", "", "configuration file or folder")
	admin := flag.String("admin", "", "admin listener address")
	logOff := flag.Bool("quiet-access-log", false, "discard the access log")
	pprof := flag.Bool("pprof", false, "serve /debug/pprof on the admin listener")
	flag.Parse()
	opts := node.Options{ConfigPath: *cfg, AdminListen: *admin, EnablePprof: *pprof}
	if *logOff {
		opts.AccessLog = io.Discard
	}
	if err := node.RunStandalone(context.Background(), opts); err != nil {
		fmt.Fprintln(os.Stderr, "nodebench:", err)
		os.Exit(1)
	}
}
