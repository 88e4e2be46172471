package apiserver

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/meridian-platform/meridian/internal/store"
	"github.com/meridian-platform/meridian/internal/store/backendtest"
	"github.com/meridian-platform/meridian/internal/store/etcd/etcdtest"
)

// openEtcdT starts an in-process etcd for the test and returns an opener
// of stores under fresh prefixes in it.
func openEtcdT(t testing.TB) storeOpener {
	t.Helper()
	eps := etcdtest.Start(t)
	var n atomic.Int64
	return func(t testing.TB) store.Store {
		t.Helper()
		return backendtest.Etcd(t, eps, fmt.Sprintf("/gc%d/", n.Add(1)))
	}
}

// BenchmarkCreateConcurrentEtcd is BenchmarkCreateConcurrent on the
// in-process etcd.
func BenchmarkCreateConcurrentEtcd(b *testing.B) { benchCreateConcurrent(b, openEtcdT(b)) }
