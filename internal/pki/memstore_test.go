package pki

import (
	"context"
	"errors"
	"sort"
	"strings"
	"sync"

	"github.com/meridian-platform/meridian/internal/store"
)

// memStore is a tiny map-based store.Store used until the bolt backend lands.
type memStore struct {
	mu  sync.Mutex
	rev int64
	kvs map[string]store.KV
}

func newMemStore() *memStore { return &memStore{kvs: map[string]store.KV{}} }

func (m *memStore) Get(_ context.Context, key string) (store.KV, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	kv, ok := m.kvs[key]
	if !ok {
		return store.KV{}, store.ErrNotFound
	}
	return kv, nil
}

func (m *memStore) List(_ context.Context, prefix string, o store.ListOptions) (store.ListResult, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var keys []string
	for k := range m.kvs {
		if strings.HasPrefix(k, prefix) && k > o.After {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	res := store.ListResult{Revision: m.rev}
	for i, k := range keys {
		if o.Limit > 0 && i == o.Limit {
			res.More = true
			break
		}
		res.Items = append(res.Items, m.kvs[k])
	}
	return res, nil
}

func (m *memStore) Txn(_ context.Context, t store.Txn) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, c := range t.Compares {
		if have := m.kvs[c.Key].ModRevision; have != c.ModRevision {
			return 0, &store.ConflictError{Key: c.Key, Want: c.ModRevision, Have: have}
		}
	}
	if len(t.Ops) == 0 {
		return m.rev, nil
	}
	m.rev++
	for _, op := range t.Ops {
		if op.Type == store.OpDelete {
			delete(m.kvs, op.Key)
			continue
		}
		kv, ok := m.kvs[op.Key]
		if !ok {
			kv.CreateRevision = m.rev
		}
		kv.Key, kv.Value, kv.ModRevision = op.Key, append([]byte(nil), op.Value...), m.rev
		m.kvs[op.Key] = kv
	}
	return m.rev, nil
}

func (m *memStore) Watch(context.Context, string, int64) (<-chan store.WatchResponse, error) {
	return nil, errors.New("memStore: watch not supported")
}

func (m *memStore) Revision(context.Context) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.rev, nil
}

func (m *memStore) Compact(context.Context, int64) error { return nil }
func (m *memStore) Close() error                         { return nil }
