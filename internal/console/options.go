package console

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"time"
)

// Store backends.
const (
	StoreBolt = "bolt"
	StoreEtcd = "etcd"
)

// MasterKeyEnv is the environment variable a master key may be given in
// (base64), instead of --master-key-file.
const MasterKeyEnv = "MERIDIAN_MASTER_KEY"

// Options configures a console.
type Options struct {
	// DataDir holds the bbolt file, the generated master key (embedded
	// default only) and the console CA certificate.
	DataDir string
	// Listen is the TLS listen address of the REST API.
	Listen string
	// Store is "bolt" (default) or "etcd".
	Store string
	// EtcdEndpoints are the client URLs of the etcd cluster (Store etcd).
	EtcdEndpoints []string
	// EtcdPrefix namespaces every key in etcd (default "/meridian").
	EtcdPrefix string
	// MasterKeyFile holds the master key. With bolt and no file given, a
	// key is generated into DataDir; with etcd it is required (or
	// $MERIDIAN_MASTER_KEY), so that every replica uses the same one.
	MasterKeyFile string
	// Hosts are extra DNS names or IPs for the console's serving
	// certificate (the listen host, localhost and 127.0.0.1 are always in).
	Hosts []string
	// AdminPassword, on first start, lets the bootstrap admin log in with a
	// password as well as with the printed token.
	AdminPassword string
	// Logger receives the console's logs; nil means slog.Default().
	Logger *slog.Logger
	// SiteClock is the clock the site registry checks certificates with
	// (validity, the re-enrolment grace); nil means time.Now. Tests move
	// it to act out a node that was offline for days.
	SiteClock func() time.Time
}

func (o *Options) setDefaults() error {
	if o.DataDir == "" {
		return errors.New("console options: data directory is required")
	}
	abs, err := filepath.Abs(o.DataDir)
	if err != nil {
		return fmt.Errorf("console options: data directory: %w", err)
	}
	o.DataDir = abs
	if o.Listen == "" {
		o.Listen = "127.0.0.1:7443"
	}
	if _, _, err := net.SplitHostPort(o.Listen); err != nil {
		return fmt.Errorf("console options: --listen %q: %w", o.Listen, err)
	}
	if o.Store == "" {
		o.Store = StoreBolt
	}
	switch o.Store {
	case StoreBolt:
	case StoreEtcd:
		if len(o.EtcdEndpoints) == 0 {
			return errors.New("console options: --etcd-endpoints is required with --store etcd")
		}
		for i, e := range o.EtcdEndpoints {
			if !strings.HasPrefix(e, "http://") && !strings.HasPrefix(e, "https://") {
				return fmt.Errorf("console options: --etcd-endpoints[%d] %q: must be an http:// or https:// URL", i, e)
			}
		}
	default:
		return fmt.Errorf("console options: --store %q: must be %q or %q", o.Store, StoreBolt, StoreEtcd)
	}
	if o.EtcdPrefix == "" {
		o.EtcdPrefix = "/meridian"
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return nil
}

// BoltPath is where the embedded store lives inside a data directory.
func BoltPath(dataDir string) string { return filepath.Join(dataDir, "meridian.db") }

// MasterKeyPath is where the embedded default generates its master key.
func MasterKeyPath(dataDir string) string { return filepath.Join(dataDir, "master.key") }

// CACertPath is where the console writes its CA certificate (public) for
// clients to trust.
func CACertPath(dataDir string) string { return filepath.Join(dataDir, "ca.crt") }
