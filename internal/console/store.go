package console

import (
	"context"
	"fmt"
	"strings"

	"github.com/meridian-platform/meridian/internal/store"
	"github.com/meridian-platform/meridian/internal/store/bolt"
	"github.com/meridian-platform/meridian/internal/store/etcd"
)

// openStore opens the configured backend.
func openStore(ctx context.Context, opts Options) (store.Store, error) {
	switch opts.Store {
	case StoreEtcd:
		return openEtcd(ctx, opts)
	default:
		st, err := bolt.Open(BoltPath(opts.DataDir), bolt.Options{})
		if err != nil {
			return nil, fmt.Errorf("opening store %s: %w", BoltPath(opts.DataDir), err)
		}
		return st, nil
	}
}

func openEtcd(ctx context.Context, opts Options) (store.Store, error) {
	pfx := opts.EtcdPrefix
	if !strings.HasSuffix(pfx, "/") {
		pfx += "/"
	}
	st, err := etcd.New(ctx, etcd.Options{Endpoints: opts.EtcdEndpoints, Prefix: pfx})
	if err != nil {
		return nil, fmt.Errorf("connecting to etcd %s: %w", strings.Join(opts.EtcdEndpoints, ","), err)
	}
	return st, nil
}
