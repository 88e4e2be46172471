package etcdtest

import (
	"fmt"
	"net/url"
	"testing"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// Server is a running in-process etcd.
type Server struct {
	e         *embed.Etcd
	endpoints []string
}

// Endpoints returns the client URLs (http on 127.0.0.1).
func (s *Server) Endpoints() []string { return s.endpoints }

// Close stops the server.
func (s *Server) Close() { s.e.Close() }

// ServerOptions tune StartServerWithOptions.
type ServerOptions struct {
	// Fsync keeps etcd's fsyncs (off by default for speed); turn it on
	// when measuring write latency against a backend that does fsync.
	Fsync bool
}

// StartServer starts a single-member etcd keeping its data in dir, listening
// on random loopback ports. It is quiet (logs only to a discarding logger)
// and trades durability for speed (no fsync): it is for tests and local
// experiments, not production.
func StartServer(dir string) (*Server, error) {
	return StartServerWithOptions(dir, ServerOptions{})
}

// StartServerWithOptions is StartServer with options.
func StartServerWithOptions(dir string, opts ServerOptions) (*Server, error) {
	cfg := embed.NewConfig()
	cfg.Name = "meridian-test"
	cfg.Dir = dir
	local := func() []url.URL { return []url.URL{{Scheme: "http", Host: "127.0.0.1:0"}} }
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = local(), local()
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = local(), local()
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.Logger = "zap"
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	cfg.SnapshotCount = 1000
	cfg.SnapshotCatchUpEntries = 100
	cfg.UnsafeNoFsync = !opts.Fsync
	// A single member elects itself after one election timeout: keep it short.
	cfg.TickMs, cfg.ElectionMs = 10, 100
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, fmt.Errorf("starting etcd in %s: %w", dir, err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return nil, fmt.Errorf("starting etcd in %s: %w", dir, err)
	case <-time.After(30 * time.Second):
		e.Close()
		return nil, fmt.Errorf("starting etcd in %s: not ready after 30s", dir)
	}
	s := &Server{e: e}
	for _, l := range e.Clients {
		s.endpoints = append(s.endpoints, "http://"+l.Addr().String())
	}
	return s, nil
}

// Start runs an etcd for the duration of a test and returns its client
// URLs. It is stopped by t.Cleanup.
func Start(t testing.TB) []string {
	t.Helper()
	s, err := StartServer(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s.Endpoints()
}
