package bolt

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meridian-platform/meridian/internal/store"
)

// The crash test runs this same test binary as a child that writes until
// it is killed with SIGKILL, then checks the file it left behind.
const (
	crashEnvPath  = "MERIDIAN_BOLT_CRASH_PATH"
	crashEnvStart = "MERIDIAN_BOLT_CRASH_START"
	crashKeys     = 4 // keys written by every transaction
	crashShared   = 8 // shared keys overwritten by transactions
)

// crashValue is the deterministic content transaction n writes to its key k;
// sizes vary so commits span several pages.
func crashValue(n, k int) []byte {
	marker := fmt.Sprintf("txn=%d key=%d;", n, k)
	size := 512 + (n*7919+k*104729)%(24<<10)
	return bytes.Repeat([]byte(marker), size/len(marker)+1)[:size]
}

func parseCrashValue(v []byte) (n int, ok bool) {
	i := bytes.IndexByte(v, ';')
	if i < 0 {
		return 0, false
	}
	var k int
	if _, err := fmt.Sscanf(string(v[:i]), "txn=%d key=%d", &n, &k); err != nil {
		return 0, false
	}
	return n, bytes.Equal(v, crashValue(n, k))
}

func crashTxn(n int) store.Txn {
	var ops []store.Op
	for k := range crashKeys {
		ops = append(ops, store.Put(fmt.Sprintf("crash/%08d/%d", n, k), crashValue(n, k)))
	}
	ops = append(ops, store.Put(fmt.Sprintf("shared/%d", n%crashShared), crashValue(n, 0)))
	if n%5 == 0 && n >= 10 {
		// Deletes are part of transactions too.
		ops = append(ops, store.Delete(fmt.Sprintf("gone/%08d", n-10)))
	}
	ops = append(ops, store.Put(fmt.Sprintf("gone/%08d", n), crashValue(n, 1)))
	return store.Txn{Ops: ops}
}

// TestCrashChild is the child side of TestCrash; it does nothing unless
// started by it.
func TestCrashChild(t *testing.T) {
	path := os.Getenv(crashEnvPath)
	if path == "" {
		t.Skip("child process of TestCrash")
	}
	start, _ := strconv.Atoi(os.Getenv(crashEnvStart))
	s, err := Open(path, Options{CompactionInterval: 20 * time.Millisecond, HistoryRevisions: 100, HistoryWindow: -1})
	if err != nil {
		fmt.Printf("open failed: %v\n", err)
		os.Exit(2)
	}
	var next atomic.Int64
	next.Store(int64(start))
	var mu sync.Mutex
	var wg sync.WaitGroup
	deadline := time.Now().Add(30 * time.Second) // never outlive a lost parent
	for range 4 {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				n := int(next.Add(1) - 1)
				rev, err := s.Txn(context.Background(), crashTxn(n))
				if err != nil {
					fmt.Printf("txn %d failed: %v\n", n, err)
					os.Exit(2)
				}
				mu.Lock()
				_, err = fmt.Fprintf(os.Stdout, "committed %d %d\n", n, rev)
				mu.Unlock()
				if err != nil {
					os.Exit(2)
				}
			}
		})
	}
	wg.Wait()
	os.Exit(3)
}

func TestCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	path := filepath.Join(t.TempDir(), "meridian.db")
	committed := map[int]int64{} // txn number -> revision, over every round
	start := 0
	for round := range 3 {
		reported := runCrashChild(t, path, start, 40+round*60)
		for n, rev := range reported {
			committed[n] = rev
		}
		// Transactions may have committed without being reported: the next
		// child starts after everything stored.
		start = checkCrashFile(t, path, committed) + 1
	}
}

// runCrashChild runs the child until it reported at least killAfter commits,
// kills it with SIGKILL and returns everything it reported.
func runCrashChild(t *testing.T, path string, start, killAfter int) map[int]int64 {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnvPath+"="+path, crashEnvStart+"="+strconv.Itoa(start))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	reported := map[int]int64{}
	sc := bufio.NewScanner(out)
	killed := false
	for sc.Scan() {
		line := sc.Text()
		var n int
		var rev int64
		if _, err := fmt.Sscanf(line, "committed %d %d", &n, &rev); err != nil {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("child said %q (stderr %s)", line, stderr.String())
		}
		reported[n] = rev
		if !killed && len(reported) >= killAfter {
			// Lines already written before the kill are still read below.
			if err := cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			killed = true
		}
	}
	err = cmd.Wait()
	if !killed {
		t.Fatalf("child exited before it was killed: %v (stderr %s)", err, stderr.String())
	}
	return reported
}

// checkCrashFile checks the file after a kill and returns the highest
// transaction number stored.
func checkCrashFile(t *testing.T, path string, committed map[int]int64) int {
	t.Helper()
	s, err := Open(path, Options{CompactionInterval: -1})
	if err != nil {
		t.Fatalf("reopen after kill: %v", err)
	}
	defer s.Close()
	ctx := context.Background()
	res, err := s.List(ctx, "crash/", store.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	type txnState struct {
		keys int
		rev  int64
	}
	found := map[int]*txnState{}
	var maxRev int64
	for _, kv := range res.Items {
		parts := strings.Split(kv.Key, "/")
		n, _ := strconv.Atoi(parts[1])
		got, ok := parseCrashValue(kv.Value)
		if !ok || got != n {
			t.Fatalf("%s holds a damaged value (%d bytes)", kv.Key, len(kv.Value))
		}
		st := found[n]
		if st == nil {
			st = &txnState{rev: kv.ModRevision}
			found[n] = st
		}
		if kv.ModRevision != st.rev || kv.CreateRevision != kv.ModRevision {
			t.Fatalf("txn %d wrote keys at revisions %d and %d", n, st.rev, kv.ModRevision)
		}
		st.keys++
		maxRev = max(maxRev, kv.ModRevision)
	}
	maxN := 0
	for n, st := range found {
		maxN = max(maxN, n)
		if st.keys != crashKeys {
			t.Fatalf("txn %d is half there: %d of %d keys", n, st.keys, crashKeys)
		}
		if rev, ok := committed[n]; ok && rev != st.rev {
			t.Fatalf("txn %d reported at revision %d, stored at %d", n, rev, st.rev)
		}
	}
	t.Logf("after kill: %d transactions stored, %d reported committed, revision %d", len(found), len(committed), maxRev)
	for n, rev := range committed {
		if found[n] == nil {
			t.Fatalf("txn %d reported committed at revision %d is missing", n, rev)
		}
	}
	// Shared keys hold the value of a transaction that is wholly there.
	for i := range crashShared {
		kv, err := s.Get(ctx, "shared/"+strconv.Itoa(i))
		if err != nil {
			continue
		}
		n, ok := parseCrashValue(kv.Value)
		if !ok || found[n] == nil || found[n].rev != kv.ModRevision {
			t.Fatalf("shared/%d holds txn %d at revision %d, which is not stored whole", i, n, kv.ModRevision)
		}
	}
	rev, err := s.Revision(ctx)
	if err != nil || rev < maxRev {
		t.Fatalf("revision after reopen = %d, %v; want >= %d", rev, err, maxRev)
	}
	// The kept history replays cleanly up to the current revision.
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	_, compact, _ := s.compactedRevision()
	ch, err := s.Watch(wctx, "", compact)
	if err != nil {
		t.Fatal(err)
	}
	last := compact
	for last < rev {
		select {
		case r := <-ch:
			if r.Err != nil {
				t.Fatalf("replay after reopen: %v", r.Err)
			}
			for _, e := range r.Events {
				if e.KV.ModRevision < last || e.KV.ModRevision > rev {
					t.Fatalf("replayed revision %d after %d (current %d)", e.KV.ModRevision, last, rev)
				}
				last = e.KV.ModRevision
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("replay stopped at %d of %d", last, rev)
		}
	}
	next, err := s.Txn(ctx, store.Txn{Ops: []store.Op{store.Put("after-crash", []byte("x"))}})
	if err != nil || next != rev+1 {
		t.Fatalf("txn after reopen = %d, %v; want %d", next, err, rev+1)
	}
	return maxN
}
