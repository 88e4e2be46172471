package e2e

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meridian-platform/meridian/internal/pki"
	"github.com/meridian-platform/meridian/internal/store/etcd/etcdtest"
)

// Two consoles sharing one etcd and one master key serve the same state, and
// a watch on one sees writes made through the other.
func TestTwoConsolesShareEtcd(t *testing.T) {
	endpoints := etcdtest.Start(t)
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "master.key")
	if _, _, err := pki.GenerateMasterKeyFile(keyFile); err != nil {
		t.Fatal(err)
	}
	common := []string{"--store", "etcd", "--etcd-endpoints", strings.Join(endpoints, ","), "--master-key-file", keyFile}

	// Without the master key an etcd console refuses to start.
	out := mustFail(t, nil, "console", "--data-dir", filepath.Join(dir, "c0"), "--listen", "127.0.0.1:0",
		"--store", "etcd", "--etcd-endpoints", strings.Join(endpoints, ","))
	if !strings.Contains(out, "master") {
		t.Errorf("missing master key error: %s", out)
	}

	p1, env1, _ := startConsole(t, filepath.Join(dir, "c1"), common...)
	_ = p1
	p2 := start(t, nil, append([]string{"console", "--data-dir", filepath.Join(dir, "c2"), "--listen", "127.0.0.1:0"}, common...)...)
	url2 := p2.waitFor(reListening, 60*time.Second)[1]
	if strings.Contains(p2.Output(), "Admin token") {
		t.Fatalf("the second console must find the first one's bootstrap:\n%s", p2.Output())
	}
	// Console 2 unwrapped the CA key console 1 created (same CA file).
	ca1, _ := os.ReadFile(filepath.Join(dir, "c1", "ca.crt"))
	ca2, _ := os.ReadFile(filepath.Join(dir, "c2", "ca.crt"))
	if len(ca1) == 0 || string(ca1) != string(ca2) {
		t.Fatalf("consoles sharing etcd must share the CA")
	}
	at2 := []string{"--server", url2, "--certificate-authority", filepath.Join(dir, "c2", "ca.crt")}

	// Watch through console 2, write through console 1.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	watch := exec.CommandContext(ctx, binary, append([]string{"get", "namespaces", "--watch", "-o", "name"}, at2...)...)
	watch.Env = append(os.Environ(), env1...)
	stdout, err := watch.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	watch.Stderr = os.Stderr
	if err := watch.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); _ = watch.Wait() }()
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	time.Sleep(500 * time.Millisecond)
	mustRun(t, env1, "create", "namespace", "written-on-one")
	deadline := time.After(20 * time.Second)
	for seen := false; !seen; {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("watch ended early")
			}
			seen = strings.Contains(l, "written-on-one")
		case <-deadline:
			t.Fatal("the watch on console 2 did not see the namespace created on console 1")
		}
	}
	out = mustRun(t, env1, append([]string{"get", "namespace", "written-on-one"}, at2...)...)
	if !strings.Contains(out, "written-on-one") {
		t.Fatalf("console 2 get: %s", out)
	}
	mustRun(t, env1, append([]string{"audit", "verify"}, at2...)...)
}
