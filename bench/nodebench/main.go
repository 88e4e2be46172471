// Command nodebench runs a standalone Meridian node for the benchmarks when
// the meridian binary at hand has no `node` command yet, or (with
// -evloop-listen) the experimental event-loop proxy of
// internal/dataplane/evloop in front of one origin.
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
	evListen := flag.String("evloop-listen", "", "run the experimental event-loop proxy on this address instead of a node")
	evOrigin := flag.String("evloop-origin", "127.0.0.1:18000", "origin of the event-loop proxy")
	evLoops := flag.Int("evloop-loops", 0, "event loops (default GOMAXPROCS)")
	evRaw := flag.Bool("evloop-rawblock", false, "idle event loops keep their P while waiting (evloop.Config.RawBlock)")
	evPerLoop := flag.Bool("evloop-listener-per-loop", false, "one SO_REUSEPORT listener per event loop (evloop.Config.ListenerPerLoop)")
	evProfile := flag.String("evloop-cpuprofile", "", "write a CPU profile of the event-loop proxy to this file on exit")
	flag.Parse()
	if *evListen != "" {
		if err := runEvloop(*evListen, *evOrigin, *evLoops, *evRaw, *evPerLoop, *evProfile); err != nil {
			fmt.Fprintln(os.Stderr, "nodebench:", err)
			os.Exit(1)
		}
		return
	}
	opts := node.Options{ConfigPath: *cfg, AdminListen: *admin, EnablePprof: *pprof}
	if *logOff {
		opts.AccessLog = io.Discard
	}
	if err := node.RunStandalone(context.Background(), opts); err != nil {
		fmt.Fprintln(os.Stderr, "nodebench:", err)
		os.Exit(1)
	}
}
