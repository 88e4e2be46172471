package fanout

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/client"
	"github.com/meridian-platform/meridian/internal/console"
)

// Options configure a fan-out measurement.
type Options struct {
	// Sites is the number of simulated nodes.
	Sites int
	// Console returns the command that runs `meridian console` with args
	// (e.g. exec.Command(self, append([]string{"console"}, args...)...)).
	Console func(args []string) *exec.Cmd
	// DataDir is the console's data directory (a fresh one).
	DataDir string
	// Parallel registrations (default 16).
	Parallel int
	// Log receives progress lines (default io.Discard).
	Log io.Writer
	// HeapProfile, when set, is where the console writes a heap profile
	// as it is stopped after the change was measured (all streams still
	// open).
	HeapProfile string
}

// Result is printed as one JSON line.
type Result struct {
	Sites        int     `json:"sites"`
	P50ms        float64 `json:"p50_ms"`
	P99ms        float64 `json:"p99_ms"`
	MaxMs        float64 `json:"max_ms"`
	ConsoleRSSMB float64 `json:"console_rss_mb"`
	// ConsoleAnonMB and ConsoleFileMB split the resident set: heap, stacks
	// and other private memory; pages of mapped files (the store).
	ConsoleAnonMB float64 `json:"console_rss_anon_mb"`
	ConsoleFileMB float64 `json:"console_rss_file_mb"`
	ConsoleCPUs   float64 `json:"console_cpu_s"`
	// ConsoleFDs is how many files (sockets) the console has open then.
	ConsoleFDs int     `json:"console_fds"`
	ResyncS    float64 `json:"resync_s"`
	RegisterS  float64 `json:"register_s"`
	ConnectS   float64 `json:"connect_s"`
}

type consoleProc struct {
	cmd   *exec.Cmd
	url   string
	token string
	tnt   string
	// exited is closed when the process has ended, with err its result.
	exited chan struct{}
	err    error
}

// check returns an error once the console process has ended: a bench
// then stops at once instead of waiting for sites that cannot sync.
func (p *consoleProc) check() error {
	select {
	case <-p.exited:
		return fmt.Errorf("the console process exited (%v); run with -v to see its errors", p.err)
	default:
		return nil
	}
}

func startConsole(o Options, listen string, heapProfile string) (*consoleProc, error) {
	cmd := o.Console([]string{"--data-dir", o.DataDir, "--listen", listen, "--log-level", "error"})
	if heapProfile != "" {
		if cmd.Env == nil {
			cmd.Env = os.Environ()
		}
		cmd.Env = append(cmd.Env, console.HeapProfileEnv+"="+heapProfile)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = o.Log
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting console: %w", err)
	}
	p := &consoleProc{cmd: cmd, exited: make(chan struct{})}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		tokenNext := false
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "Meridian console listening on "):
				p.url = strings.TrimPrefix(line, "Meridian console listening on ")
				if !strings.Contains(line, "First start") {
					go func() {
						// Non-first starts print nothing more.
						time.Sleep(200 * time.Millisecond)
						select {
						case <-ready:
						default:
							close(ready)
						}
					}()
				}
			case strings.HasPrefix(line, "First start: created tenant "):
				if q := strings.Split(line, `"`); len(q) >= 2 {
					p.tnt = q[1]
				}
			case strings.HasPrefix(line, "Admin token"):
				tokenNext = true
			case tokenNext:
				p.token = strings.TrimSpace(line)
				tokenNext = false
				select {
				case <-ready:
				default:
					close(ready)
				}
			}
		}
		io.Copy(io.Discard, out)
	}()
	go func() { p.err = cmd.Wait(); close(p.exited) }()
	select {
	case <-ready:
	case <-p.exited:
		return nil, fmt.Errorf("console exited: %v", p.err)
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		return nil, errors.New("console did not start")
	}
	// Wait for the API.
	for i := 0; i < 200; i++ {
		if c, err := net.DialTimeout("tcp", listen, time.Second); err == nil {
			c.Close()
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	return p, nil
}

func (p *consoleProc) stop() {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(20 * time.Second):
		p.cmd.Process.Kill()
		<-p.exited
	}
}

// procStats returns the process's resident set in MiB (all, anonymous,
// file-backed) and its CPU seconds.
func procStats(pid int) (rssMB, anonMB, fileMB, cpuS float64) {
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			f := strings.Fields(l)
			if len(f) < 2 {
				continue
			}
			kb, _ := strconv.ParseFloat(f[1], 64)
			switch f[0] {
			case "VmRSS:":
				rssMB = kb / 1024
			case "RssAnon:":
				anonMB = kb / 1024
			case "RssFile:":
				fileMB = kb / 1024
			}
		}
	}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
		s := string(b)
		if i := strings.LastIndexByte(s, ')'); i > 0 {
			f := strings.Fields(s[i+1:])
			if len(f) > 13 {
				u, _ := strconv.ParseFloat(f[11], 64)
				st, _ := strconv.ParseFloat(f[12], 64)
				cpuS = (u + st) / 100
			}
		}
	}
	return rssMB, anonMB, fileMB, cpuS
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

const objects = `
apiVersion: meridian/v1
kind: Namespace
metadata: {name: bench}
---
apiVersion: meridian/v1
kind: VirtualSite
metadata: {name: all}
spec: {selector: {}}
---
apiVersion: meridian/v1
kind: OriginPool
metadata: {name: app, namespace: bench}
spec: {endpoints: [{address: "127.0.0.1:10001"}]}
---
apiVersion: meridian/v1
kind: HTTPLoadBalancer
metadata: {name: app, namespace: bench}
spec:
  domains: ["*"]
  listeners: [{port: 8080}]
  defaultPool: app
  sites: {virtualSite: all}
`

// Run starts the console, registers and connects the simulated nodes,
// changes a load balancer's pool that every site carries and measures the
// time until each site has it; then restarts the console and measures the
// time until every node is back in sync.
func Run(ctx context.Context, o Options) (*Result, error) {
	if o.Sites <= 0 || o.Console == nil || o.DataDir == "" {
		return nil, errors.New("fanout: Sites, Console and DataDir are required")
	}
	if o.Parallel <= 0 {
		o.Parallel = 16
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	logf := func(f string, a ...any) { fmt.Fprintf(o.Log, "fanout: "+f+"\n", a...) }
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	cp, err := startConsole(o, addr, o.HeapProfile)
	if err != nil {
		return nil, err
	}
	defer func() { cp.stop() }()
	caPEM, err := os.ReadFile(filepath.Join(o.DataDir, "ca.crt"))
	if err != nil {
		return nil, err
	}
	admin, err := client.New(client.Config{Server: cp.url, Token: cp.token, CAData: caPEM, Tenant: cp.tnt})
	if err != nil {
		return nil, err
	}
	objs, err := v1.DecodeAll([]byte(objects))
	if err != nil {
		return nil, err
	}
	for _, obj := range objs {
		if err := admin.Create(ctx, obj); err != nil {
			return nil, fmt.Errorf("creating %s: %w", obj.GetMetadata().Name, err)
		}
	}
	tok := &v1.SiteToken{Spec: v1.SiteTokenSpec{MaxUses: o.Sites, AutoApprove: true, Expires: v1.Duration{Duration: 24 * time.Hour}}}
	tok.APIVersion, tok.Kind, tok.Metadata.Name = v1.APIVersion, "SiteToken", "fanout"
	if err := admin.Create(ctx, tok); err != nil {
		return nil, fmt.Errorf("creating site token: %w", err)
	}
	f, err := newFleet(cp.url, caPEM)
	if err != nil {
		return nil, err
	}
	res := &Result{Sites: o.Sites}
	t0 := time.Now()
	if err := f.register(ctx, tok.Status.Token, "sim", o.Sites, o.Parallel); err != nil {
		return nil, err
	}
	res.RegisterS = time.Since(t0).Seconds()
	logf("registered %d sites in %.1fs", o.Sites, res.RegisterS)

	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	t0 = time.Now()
	for i, n := range f.nodes {
		go f.run(rctx, n, addr)
		if i%100 == 99 {
			time.Sleep(10 * time.Millisecond) // do not open 10,000 TLS handshakes in one burst
		}
	}
	if err := waitAll(ctx, cp, f, 10*time.Minute, func(n *simNode) bool { v, _, _ := n.state(); return v != "" }); err != nil {
		return nil, fmt.Errorf("initial sync: %w", err)
	}
	res.ConnectS = time.Since(t0).Seconds()
	logf("all %d sites connected and synced in %.1fs", o.Sites, res.ConnectS)

	// The change.
	before := map[*simNode]string{}
	for _, n := range f.nodes {
		v, _, _ := n.state()
		before[n] = v
	}
	start := time.Now()
	if err := admin.Patch(ctx, "OriginPool", "bench", "app", []byte(`{"spec":{"endpoints":[{"address":"127.0.0.1:10002"}]}}`), nil); err != nil {
		return nil, err
	}
	if err := waitAll(ctx, cp, f, 5*time.Minute, func(n *simNode) bool { v, _, _ := n.state(); return v != before[n] }); err != nil {
		return nil, fmt.Errorf("change: %w", err)
	}
	lat := make([]float64, 0, len(f.nodes))
	for _, n := range f.nodes {
		_, at, _ := n.state()
		lat = append(lat, float64(at.Sub(start).Microseconds())/1000)
	}
	sort.Float64s(lat)
	res.P50ms, res.P99ms, res.MaxMs = lat[len(lat)/2], lat[(len(lat)*99)/100], lat[len(lat)-1]
	res.ConsoleRSSMB, res.ConsoleAnonMB, res.ConsoleFileMB, res.ConsoleCPUs = procStats(cp.cmd.Process.Pid)
	if fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", cp.cmd.Process.Pid)); err == nil {
		res.ConsoleFDs = len(fds)
	}
	logf("change reached every site: p50 %.0fms p99 %.0fms max %.0fms; console RSS %.0f MiB (anonymous %.0f, files %.0f), %d open files",
		res.P50ms, res.P99ms, res.MaxMs, res.ConsoleRSSMB, res.ConsoleAnonMB, res.ConsoleFileMB, res.ConsoleFDs)

	// Console restart.
	streams := map[*simNode]int{}
	for _, n := range f.nodes {
		_, _, s := n.state()
		streams[n] = s
	}
	cp.stop()
	t1 := time.Now()
	if cp, err = startConsole(o, addr, ""); err != nil {
		return nil, err
	}
	if err := waitAll(ctx, cp, f, 10*time.Minute, func(n *simNode) bool { _, _, s := n.state(); return s > streams[n] }); err != nil {
		return nil, fmt.Errorf("resync: %w", err)
	}
	res.ResyncS = time.Since(t1).Seconds()
	logf("all sites back in sync %.1fs after the console restart", res.ResyncS)
	return res, nil
}

func waitAll(ctx context.Context, cp *consoleProc, f *fleet, timeout time.Duration, done func(*simNode) bool) error {
	deadline := time.Now().Add(timeout)
	for {
		if err := cp.check(); err != nil {
			return err
		}
		missing := 0
		var some []string
		for _, n := range f.nodes {
			if !done(n) {
				missing++
				if len(some) < 5 {
					_, _, streams := n.state()
					some = append(some, fmt.Sprintf("%s (%d streams delivered, last error: %v)", n.name, streams, n.lastError()))
				}
			}
		}
		if missing == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d sites not there after %s, e.g. %s", missing, len(f.nodes), timeout, strings.Join(some, "; "))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}
