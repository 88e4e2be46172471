package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// binary is the meridian binary built once by TestMain.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "meridian-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "meridian")
	build := exec.Command("go", "build", "-o", binary, "../../cmd/meridian")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building meridian:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is a running meridian process whose output is captured.
type proc struct {
	t    *testing.T
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer
	done chan struct{}
}

func (p *proc) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// waitFor waits until the output matches re and returns the submatches.
func (p *proc) waitFor(re *regexp.Regexp, timeout time.Duration) []string {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if m := re.FindStringSubmatch(p.Output()); m != nil {
			return m
		}
		select {
		case <-p.done:
			if m := re.FindStringSubmatch(p.Output()); m != nil {
				return m
			}
			p.t.Fatalf("process exited before printing %s; output:\n%s", re, p.Output())
		case <-time.After(50 * time.Millisecond):
		}
	}
	p.t.Fatalf("timed out waiting for %s; output:\n%s", re, p.Output())
	return nil
}

// stop sends SIGTERM and waits for a clean exit. When the test failed, it
// logs what the process printed.
func (p *proc) stop() {
	p.t.Helper()
	defer func() {
		if p.t.Failed() {
			p.t.Logf("output of meridian %s:\n%s", strings.Join(p.cmd.Args[1:], " "), p.Output())
		}
	}()
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		p.t.Errorf("process did not stop within 15s; output:\n%s", p.Output())
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// start runs meridian with args in the background; it is stopped at cleanup.
func start(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, done: make(chan struct{})}
	p.cmd = exec.Command(binary, args...)
	p.cmd.Env = append(os.Environ(), env...)
	w := lockedWriter{mu: &p.mu, w: &p.out}
	p.cmd.Stdout, p.cmd.Stderr = w, w
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting meridian %s: %v", strings.Join(args, " "), err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(p.stop)
	return p
}

// run runs a CLI command to completion and returns its output and exit code.
func run(t *testing.T, env []string, stdin string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running meridian %s: %v", strings.Join(args, " "), err)
	}
	return string(out), code
}

// mustRun runs a CLI command that must succeed.
func mustRun(t *testing.T, env []string, args ...string) string {
	t.Helper()
	out, code := run(t, env, "", args...)
	if code != 0 {
		t.Fatalf("meridian %s: exit %d:\n%s", strings.Join(args, " "), code, out)
	}
	return out
}

// mustFail runs a CLI command that must fail and returns its output.
func mustFail(t *testing.T, env []string, args ...string) string {
	t.Helper()
	out, code := run(t, env, "", args...)
	if code == 0 {
		t.Fatalf("meridian %s: succeeded but should fail:\n%s", strings.Join(args, " "), out)
	}
	return out
}

func writeFile(t *testing.T, path, content string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

var (
	reListening = regexp.MustCompile(`listening on (https://\S+)`)
	reToken     = regexp.MustCompile(`Admin token \(shown once, keep it safe\):\s+(\S+)`)
)

// scanLines is a helper for checking CLI tables.
func scanLines(s string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			out = append(out, l)
		}
	}
	return out
}

var reDevReady = regexp.MustCompile(`Press Ctrl-C to stop`)
