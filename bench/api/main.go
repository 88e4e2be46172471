// Command api measures the console's REST API: create, get and list latency
// (p50, p99) and throughput with N objects, on bbolt and on etcd, and the
// console's resident memory holding M objects. It starts real `meridian
// console` processes (and, for etcd, an in-process etcd server) on loopback.
//
//	go run ./bench/api -n 10000 -mem 100000
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/client"
	"github.com/meridian-platform/meridian/internal/pki"
	"github.com/meridian-platform/meridian/internal/store/etcd/etcdtest"
)

func main() {
	n := flag.Int("n", 10000, "objects for the latency runs")
	memN := flag.Int("mem", 100000, "objects for the memory run (0 skips it)")
	conc := flag.Int("c", 8, "concurrent clients")
	stores := flag.String("stores", "bolt,etcd", "backends to measure")
	bin := flag.String("bin", "", "meridian binary (default: built from ./cmd/meridian)")
	flag.Parse()
	if err := run(*n, *memN, *conc, strings.Split(*stores, ","), *bin); err != nil {
		fmt.Fprintln(os.Stderr, "bench/api:", err)
		os.Exit(1)
	}
}

func run(n, memN, conc int, stores []string, bin string) error {
	tmp, err := os.MkdirTemp("", "meridian-apibench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if bin == "" {
		bin = filepath.Join(tmp, "meridian")
		b := exec.Command("go", "build", "-o", bin, "./cmd/meridian")
		b.Stdout, b.Stderr = os.Stderr, os.Stderr
		if err := b.Run(); err != nil {
			return fmt.Errorf("building meridian: %w", err)
		}
	}
	fmt.Printf("| store | op | objects | p50 | p99 | ops/s |\n|---|---|---:|---:|---:|---:|\n")
	for _, st := range stores {
		dir := filepath.Join(tmp, st)
		args, stop, err := storeArgs(st, dir)
		if err != nil {
			return err
		}
		c, kill, err := startConsole(bin, dir, args)
		if err != nil {
			stop()
			return err
		}
		err = measure(c, st, n, conc)
		kill()
		stop()
		if err != nil {
			return err
		}
	}
	if memN > 0 {
		dir := filepath.Join(tmp, "mem")
		c, kill, err := startConsole(bin, dir, nil)
		if err != nil {
			return err
		}
		defer kill()
		if err := fill(c.cl, "mem", memN, conc, nil); err != nil {
			return err
		}
		time.Sleep(2 * time.Second)
		rss, err := rssOf(c.pid)
		if err != nil {
			return err
		}
		fmt.Printf("\nconsole resident memory with %d objects (bolt): %.1f MiB\n", memN, float64(rss)/(1<<20))
	}
	return nil
}

func storeArgs(kind, dir string) ([]string, func(), error) {
	if kind != "etcd" {
		return nil, func() {}, nil
	}
	srv, err := etcdtest.StartServer(filepath.Join(dir, "etcd"))
	if err != nil {
		return nil, nil, fmt.Errorf("starting etcd: %w", err)
	}
	key := filepath.Join(dir, "master.key")
	if _, _, err := pki.GenerateMasterKeyFile(key); err != nil {
		srv.Close()
		return nil, nil, err
	}
	return []string{"--store", "etcd", "--etcd-endpoints", strings.Join(srv.Endpoints(), ","), "--master-key-file", key}, srv.Close, nil
}

type consoleProc struct {
	cl  *client.Client
	pid int
}

var (
	reURL   = regexp.MustCompile(`listening on (https://\S+)`)
	reToken = regexp.MustCompile(`Admin token \(shown once, keep it safe\):\s+(\S+)`)
)

func startConsole(bin, dir string, extra []string) (*consoleProc, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(bin, append([]string{"console", "--data-dir", dir, "--listen", addr, "--log-level", "error"}, extra...)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, nil, err
	}
	kill := func() { _ = cmd.Process.Signal(os.Interrupt); _ = cmd.Wait() }
	var url, token string
	sc := bufio.NewScanner(out)
	var text strings.Builder
	deadline := time.Now().Add(60 * time.Second)
	for sc.Scan() && time.Now().Before(deadline) {
		text.WriteString(sc.Text() + "\n")
		if m := reURL.FindStringSubmatch(text.String()); m != nil {
			url = m[1]
		}
		if m := reToken.FindStringSubmatch(text.String()); m != nil {
			token = m[1]
			break
		}
	}
	go func() {
		for sc.Scan() {
		}
	}()
	if url == "" || token == "" {
		kill()
		return nil, nil, fmt.Errorf("console did not start:\n%s", text.String())
	}
	ca, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
	if err != nil {
		kill()
		return nil, nil, err
	}
	cl, err := client.New(client.Config{Server: url, Token: token, CAData: ca, Tenant: "default", MaxRetries: -1})
	if err != nil {
		kill()
		return nil, nil, err
	}
	// Lift the tenant's API rate limit so the benchmark measures the API,
	// not the limiter.
	ctx := context.Background()
	sys, err := client.New(client.Config{Server: url, Token: token, CAData: ca, MaxRetries: -1})
	if err != nil {
		kill()
		return nil, nil, err
	}
	patch := []byte(`{"spec":{"limits":{"requestsPerSecond":1000000,"burst":1000000}}}`)
	if err := sys.Patch(ctx, "Tenant", "", "default", patch, nil); err != nil {
		kill()
		return nil, nil, fmt.Errorf("raising the tenant rate limit: %w", err)
	}
	return &consoleProc{cl: cl, pid: cmd.Process.Pid}, kill, nil
}

func pool(ns string, i int) *v1.OriginPool {
	p := &v1.OriginPool{}
	p.APIVersion, p.Kind = v1.APIVersion, "OriginPool"
	p.Metadata.Name = fmt.Sprintf("pool-%06d", i)
	p.Metadata.Namespace = ns
	p.Metadata.Labels = map[string]string{"app": "bench", "shard": strconv.Itoa(i % 16)}
	p.Spec.Endpoints = []v1.OriginEndpoint{{Address: fmt.Sprintf("10.%d.%d.%d:8080", i>>16&255, i>>8&255, i&255), Weight: 1}}
	return p
}

// fill creates n pools in namespace ns with conc workers, recording each
// create's latency into lat when given.
func fill(cl *client.Client, ns string, n, conc int, lat []time.Duration) error {
	ctx := context.Background()
	nsObj := &v1.Namespace{}
	nsObj.APIVersion, nsObj.Kind = v1.APIVersion, "Namespace"
	nsObj.Metadata.Name = ns
	if err := cl.Create(ctx, nsObj); err != nil && !client.IsAlreadyExists(err) {
		return fmt.Errorf("creating namespace: %w", err)
	}
	var next atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				t0 := time.Now()
				if err := cl.Create(ctx, pool(ns, i)); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				if lat != nil {
					lat[i] = time.Since(t0)
				}
			}
		}()
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return fmt.Errorf("creating pools: %w", err)
	}
	return nil
}

func measure(c *consoleProc, storeName string, n, conc int) error {
	ctx := context.Background()
	lat := make([]time.Duration, n)
	t0 := time.Now()
	if err := fill(c.cl, "bench", n, conc, lat); err != nil {
		return err
	}
	report(storeName, fmt.Sprintf("create (%d clients)", conc), n, lat, time.Since(t0))

	// Latency of one client alone, with the n objects in place.
	one := min(1000, n)
	olat := make([]time.Duration, one)
	t0 = time.Now()
	for i := 0; i < one; i++ {
		s := time.Now()
		if err := c.cl.Create(ctx, pool("bench", n+i)); err != nil {
			return fmt.Errorf("create: %w", err)
		}
		olat[i] = time.Since(s)
	}
	report(storeName, "create (1 client)", n, olat, time.Since(t0))
	n += one

	gets := n
	glat := make([]time.Duration, gets)
	var next atomic.Int64
	var wg sync.WaitGroup
	var gerr atomic.Value
	t0 = time.Now()
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var p v1.OriginPool
			for {
				i := int(next.Add(1)) - 1
				if i >= gets {
					return
				}
				s := time.Now()
				if err := c.cl.Get(ctx, "OriginPool", "bench", fmt.Sprintf("pool-%06d", rand.IntN(n)), &p); err != nil {
					gerr.CompareAndSwap(nil, err)
					return
				}
				glat[i] = time.Since(s)
			}
		}()
	}
	wg.Wait()
	if err, _ := gerr.Load().(error); err != nil {
		return fmt.Errorf("get: %w", err)
	}
	report(storeName, fmt.Sprintf("get (%d clients)", conc), n, glat, time.Since(t0))

	// Paged lists of 500 over the whole namespace, read at one revision.
	const rounds = 20
	llat := make([]time.Duration, 0, rounds)
	t0 = time.Now()
	for r := 0; r < rounds; r++ {
		s := time.Now()
		l, err := c.cl.List(ctx, "OriginPool", "bench", client.ListOptions{Limit: 500, AllPages: true})
		if err != nil {
			return fmt.Errorf("list: %w", err)
		}
		if len(l.Items) != n {
			return fmt.Errorf("list returned %d items, want %d", len(l.Items), n)
		}
		llat = append(llat, time.Since(s))
	}
	report(storeName, "list all (pages of 500)", n, llat, time.Since(t0))
	s := time.Now()
	l, err := c.cl.List(ctx, "OriginPool", "bench", client.ListOptions{LabelSelector: "shard=3", AllPages: true})
	if err != nil {
		return fmt.Errorf("list with selector: %w", err)
	}
	fmt.Printf("| %s | list -l shard=3 (%d items) | %d | %s | | |\n", storeName, len(l.Items), n, time.Since(s).Round(time.Microsecond))
	return nil
}

func report(storeName, op string, n int, lat []time.Duration, total time.Duration) {
	s := slices.Clone(lat)
	slices.Sort(s)
	q := func(p float64) time.Duration { return s[min(len(s)-1, int(float64(len(s))*p))] }
	fmt.Printf("| %s | %s | %d | %s | %s | %.0f |\n", storeName, op, n, q(0.50).Round(time.Microsecond),
		q(0.99).Round(time.Microsecond), float64(len(s))/total.Seconds())
}

func rssOf(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}
