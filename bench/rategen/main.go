package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

const usage = `rategen sends GET requests to an http:// URL at a constant rate over
keep-alive connections and measures each one's latency from the time it
was meant to be sent, so that the generator's delays and the target's
queueing show as latency (no coordinated omission). It prints a table and
a one-line summary (key=value; the line starting with "rategen").

  rategen -url http://127.0.0.1:8080/ -rate 10000 -duration 5s [-out FILE]
  rategen -merge FILE...   (the runs' results together: counts summed,
                            latency distributions merged)

`

func main() {
	os.Exit(mainErr(os.Args[1:], os.Stdout, os.Stderr))
}

func mainErr(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("rategen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage); fs.PrintDefaults() }
	var cfg config
	fs.StringVar(&cfg.url, "url", "", "target `URL` (http://host:port/path)")
	fs.Float64Var(&cfg.rate, "rate", 1000, "requests per second")
	fs.DurationVar(&cfg.duration, "duration", 5*time.Second, "measured window")
	fs.DurationVar(&cfg.warmup, "warmup", 0, "sent at the same rate before the window and not measured")
	fs.IntVar(&cfg.conns, "conns", 64, "keep-alive connections")
	fs.DurationVar(&cfg.timeout, "timeout", 5*time.Second, "per request (from its send) and per connect")
	out := fs.String("out", "", "also write the whole result (for -merge) to `FILE`")
	merge := fs.Bool("merge", false, "merge the result files named as arguments instead of running")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var r *result
	if *merge {
		if fs.NArg() == 0 {
			fmt.Fprintln(stderr, "rategen: -merge: no result files named")
			return 2
		}
		r = &result{}
		for _, name := range fs.Args() {
			o, err := readFile(name)
			if err != nil {
				fmt.Fprintln(stderr, "rategen:", err)
				return 1
			}
			r.merge(o)
		}
	} else {
		if fs.NArg() > 0 {
			fmt.Fprintf(stderr, "rategen: unexpected arguments %q\n", fs.Args())
			return 2
		}
		if cfg.url == "" {
			fmt.Fprintln(stderr, "rategen: -url: required")
			return 2
		}
		if err := cfg.check(); err != nil {
			fmt.Fprintln(stderr, "rategen:", err)
			return 2
		}
		tgt, err := parseTarget(cfg.url)
		if err != nil {
			fmt.Fprintln(stderr, "rategen:", err)
			return 2
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		r, err = run(ctx, cfg, tgt)
		if err != nil && r == nil {
			fmt.Fprintln(stderr, "rategen:", err)
			return 1
		}
		if err != nil {
			fmt.Fprintln(stderr, "rategen: stopped early:", err)
		}
	}
	table(stdout, r)
	fmt.Fprintln(stdout, summary(r))
	if *out != "" {
		if err := writeFile(*out, r); err != nil {
			fmt.Fprintln(stderr, "rategen:", err)
			return 1
		}
	}
	return 0
}

func readFile(name string) (*result, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("reading a result: %w", err)
	}
	defer f.Close()
	return readResult(f, name)
}

func writeFile(name string, r *result) error {
	f, err := os.Create(name)
	if err != nil {
		return fmt.Errorf("writing the result: %w", err)
	}
	if err := writeResult(f, r); err != nil {
		f.Close()
		return fmt.Errorf("writing the result to %s: %w", name, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing the result to %s: %w", name, err)
	}
	return nil
}
