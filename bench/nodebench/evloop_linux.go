package main

import (
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"github.com/meridian-platform/meridian/internal/dataplane/evloop"
)

// runEvloop runs the event-loop proxy until SIGINT or SIGTERM.
func runEvloop(listen, origin string, loops int, rawBlock, perLoop bool, profile string) error {
	cfg := evloop.Config{Listen: listen, Origin: origin, Loops: loops, RawBlock: rawBlock, ListenerPerLoop: perLoop}
	if profile != "" {
		f, err := os.Create(profile)
		if err != nil {
			return fmt.Errorf("creating the CPU profile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("starting the CPU profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	p, err := evloop.Start(cfg)
	if err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "nodebench: event-loop proxy on", p.Addr(), "to", cfg.Origin)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	return p.Close()
}
