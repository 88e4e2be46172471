package etcd

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/meridian-platform/meridian/internal/store"
	"github.com/meridian-platform/meridian/internal/store/internal/watchq"
)

// Options configure a Store.
type Options struct {
	// Endpoints are the etcd client URLs.
	Endpoints []string
	// Prefix is put in front of every key (for example "/meridian/"), so
	// several stores can share one cluster. Revisions and compaction are
	// cluster-wide all the same.
	Prefix string
	// TLS, when set, is used to reach etcd (client certificates included).
	TLS *tls.Config
	// Username and Password authenticate to etcd when set.
	Username, Password string
	// DialTimeout bounds connecting and the first request. 0 means 5 s.
	DialTimeout time.Duration
	// Client, when set, is used instead of dialing Endpoints; Close then
	// leaves it open.
	Client *clientv3.Client
	// WatchBacklog is how many events may wait for one slow watcher before
	// its watch ends with store.ErrWatchOverflow. 0 means 10000.
	WatchBacklog int
	// Logger receives the etcd client's logs. nil discards them.
	Logger *zap.Logger
}

// Store is a store.Store kept in etcd.
type Store struct {
	c       *clientv3.Client
	ownsC   bool
	pfx     string
	backlog int
	closed  atomic.Bool
}

var _ store.Store = (*Store)(nil)

// New connects to etcd and checks that it answers.
func New(ctx context.Context, opts Options) (*Store, error) {
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = 5 * time.Second
	}
	if opts.WatchBacklog <= 0 {
		opts.WatchBacklog = 10000
	}
	s := &Store{c: opts.Client, pfx: opts.Prefix, backlog: opts.WatchBacklog}
	if s.c == nil {
		if len(opts.Endpoints) == 0 {
			return nil, errors.New("connecting to etcd: no endpoints")
		}
		lg := opts.Logger
		if lg == nil {
			lg = zap.NewNop()
		}
		c, err := clientv3.New(clientv3.Config{
			Endpoints:   opts.Endpoints,
			DialTimeout: opts.DialTimeout,
			TLS:         opts.TLS,
			Username:    opts.Username,
			Password:    opts.Password,
			Logger:      lg,
			Context:     context.Background(),
		})
		if err != nil {
			return nil, fmt.Errorf("connecting to etcd %v: %w", opts.Endpoints, err)
		}
		s.c, s.ownsC = c, true
	}
	cctx, cancel := context.WithTimeout(ctx, opts.DialTimeout)
	defer cancel()
	if _, err := s.Revision(cctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("connecting to etcd %v: %w", opts.Endpoints, err)
	}
	return s, nil
}

// Client returns the etcd client (for leader election and the like).
func (s *Store) Client() *clientv3.Client { return s.c }

// Close closes the client if New created it.
func (s *Store) Close() error {
	if s.closed.Swap(true) || !s.ownsC {
		return nil
	}
	if err := s.c.Close(); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("closing etcd client: %w", err)
	}
	return nil
}

// mapErr turns etcd's errors into the store's, saying what was being done.
func mapErr(what string, err error) error {
	switch {
	case errors.Is(err, rpctypes.ErrCompacted):
		return fmt.Errorf("%s: %w", what, store.ErrCompacted)
	case errors.Is(err, rpctypes.ErrFutureRev):
		return fmt.Errorf("%s: %w", what, store.ErrFutureRevision)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	case err != nil && strings.Contains(err.Error(), "client connection is closing"):
		return fmt.Errorf("%s: %w", what, store.ErrClosed)
	}
	return fmt.Errorf("%s: %w", what, err)
}

func (s *Store) strip(k []byte) string { return strings.TrimPrefix(string(k), s.pfx) }

func (s *Store) kv(k *mvccpb.KeyValue) store.KV {
	return store.KV{Key: s.strip(k.Key), Value: k.Value, CreateRevision: k.CreateRevision, ModRevision: k.ModRevision}
}

// Get returns key at the current revision.
func (s *Store) Get(ctx context.Context, key string) (store.KV, error) {
	if s.closed.Load() {
		return store.KV{}, store.ErrClosed
	}
	resp, err := s.c.Get(ctx, s.pfx+key)
	if err != nil {
		return store.KV{}, mapErr(fmt.Sprintf("getting %q", key), err)
	}
	if len(resp.Kvs) == 0 {
		return store.KV{}, store.ErrNotFound
	}
	return s.kv(resp.Kvs[0]), nil
}

// rangeKey is the first key of a range: etcd spells "from the start" \x00.
func rangeKey(k string) string {
	if k == "" {
		return "\x00"
	}
	return k
}

// List reads a page of keys under prefix at one revision.
func (s *Store) List(ctx context.Context, prefix string, opts store.ListOptions) (store.ListResult, error) {
	if s.closed.Load() {
		return store.ListResult{}, store.ErrClosed
	}
	if opts.Limit < 0 {
		return store.ListResult{}, fmt.Errorf("listing %q: negative limit %d", prefix, opts.Limit)
	}
	full := s.pfx + prefix
	start := full
	if opts.After != "" && opts.After >= prefix {
		start = s.pfx + opts.After + "\x00"
	}
	ops := []clientv3.OpOption{
		clientv3.WithRange(clientv3.GetPrefixRangeEnd(rangeKey(full))),
		clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend),
	}
	if full == "" {
		ops[0] = clientv3.WithFromKey()
	}
	if opts.Limit > 0 {
		ops = append(ops, clientv3.WithLimit(int64(opts.Limit)))
	}
	if opts.Revision > 0 {
		ops = append(ops, clientv3.WithRev(opts.Revision))
	}
	resp, err := s.c.Get(ctx, rangeKey(start), ops...)
	if err != nil {
		return store.ListResult{}, mapErr(fmt.Sprintf("listing %q at revision %d", prefix, opts.Revision), err)
	}
	res := store.ListResult{Revision: opts.Revision, More: resp.More, Items: make([]store.KV, 0, len(resp.Kvs))}
	if res.Revision == 0 {
		res.Revision = resp.Header.Revision
	}
	for _, kv := range resp.Kvs {
		res.Items = append(res.Items, s.kv(kv))
	}
	return res, nil
}

// Txn maps t to one etcd transaction. When a compare fails, the else branch
// reads every compared key in the same transaction, so the conflict names
// the key that failed at that revision.
func (s *Store) Txn(ctx context.Context, t store.Txn) (int64, error) {
	if s.closed.Load() {
		return 0, store.ErrClosed
	}
	if err := t.Validate(); err != nil {
		return 0, err
	}
	cmps := make([]clientv3.Cmp, len(t.Compares))
	reads := make([]clientv3.Op, len(t.Compares))
	for i, c := range t.Compares {
		k := s.pfx + c.Key
		if c.ModRevision == 0 {
			cmps[i] = clientv3.Compare(clientv3.CreateRevision(k), "=", 0)
		} else {
			cmps[i] = clientv3.Compare(clientv3.ModRevision(k), "=", c.ModRevision)
		}
		reads[i] = clientv3.OpGet(k, clientv3.WithKeysOnly())
	}
	ops := make([]clientv3.Op, len(t.Ops))
	for i, op := range t.Ops {
		switch op.Type {
		case store.OpPut:
			ops[i] = clientv3.OpPut(s.pfx+op.Key, string(op.Value))
		case store.OpDelete:
			ops[i] = clientv3.OpDelete(s.pfx + op.Key)
		}
	}
	resp, err := s.c.Txn(ctx).If(cmps...).Then(ops...).Else(reads...).Commit()
	if errors.Is(err, rpctypes.ErrTooManyOps) {
		return 0, fmt.Errorf("committing a transaction of %d operations and %d compares (etcd's --max-txn-ops is lower; store.MaxTxnOps is %d): %w",
			len(t.Ops), len(t.Compares), store.MaxTxnOps, store.ErrTooManyOps)
	}
	if errors.Is(err, rpctypes.ErrRequestTooLarge) || err != nil && strings.Contains(err.Error(), "trying to send message larger than max") {
		n := 0
		for _, op := range t.Ops {
			n += len(op.Key) + len(op.Value)
		}
		return 0, fmt.Errorf("committing a transaction of %d bytes (over etcd's --max-request-bytes): %w", n, store.ErrTxnTooLarge)
	}
	if err != nil {
		return 0, mapErr("committing transaction", err)
	}
	if resp.Succeeded {
		return resp.Header.Revision, nil
	}
	for i, c := range t.Compares {
		var have int64
		if i < len(resp.Responses) {
			if kvs := resp.Responses[i].GetResponseRange().GetKvs(); len(kvs) > 0 {
				have = kvs[0].ModRevision
			}
		}
		if have != c.ModRevision {
			return 0, &store.ConflictError{Key: c.Key, Want: c.ModRevision, Have: have}
		}
	}
	// Unreachable unless etcd disagrees with itself; still a conflict.
	return 0, &store.ConflictError{Key: t.Compares[0].Key, Want: t.Compares[0].ModRevision, Have: -1}
}

// Revision returns the cluster's current revision.
func (s *Store) Revision(ctx context.Context) (int64, error) {
	if s.closed.Load() {
		return 0, store.ErrClosed
	}
	resp, err := s.c.Get(ctx, rangeKey(s.pfx), clientv3.WithCountOnly())
	if err != nil {
		return 0, mapErr("reading revision", err)
	}
	return resp.Header.Revision, nil
}

// Compact discards the cluster's history before rev (for every prefix:
// etcd compacts the whole keyspace). Compacting at or below an earlier
// compaction is a no-op.
func (s *Store) Compact(ctx context.Context, rev int64) error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	_, err := s.c.Compact(ctx, rev)
	if errors.Is(err, rpctypes.ErrCompacted) {
		return nil
	}
	if err != nil {
		return mapErr(fmt.Sprintf("compacting at revision %d", rev), err)
	}
	return nil
}

// Watch streams the changes under prefix after fromRevision using one etcd
// watch (WithRev(fromRevision+1), WithPrevKV). Responses pass through a
// bounded queue: a consumer more than Options.WatchBacklog events behind
// gets store.ErrWatchOverflow as its last response.
func (s *Store) Watch(ctx context.Context, prefix string, fromRevision int64) (<-chan store.WatchResponse, error) {
	if s.closed.Load() {
		return nil, store.ErrClosed
	}
	if fromRevision < 0 {
		fromRevision = 0
	}
	what := fmt.Sprintf("watching %q from revision %d", prefix, fromRevision)
	// Report a compacted start at once rather than on the channel. A read
	// at a future revision fails too, but watching from one is allowed.
	if fromRevision > 0 {
		_, err := s.c.Get(ctx, rangeKey(s.pfx), clientv3.WithRev(fromRevision), clientv3.WithCountOnly())
		if err != nil && !errors.Is(err, rpctypes.ErrFutureRev) {
			return nil, mapErr(what, err)
		}
	}
	full := s.pfx + prefix
	opts := []clientv3.OpOption{clientv3.WithRev(fromRevision + 1), clientv3.WithPrevKV()}
	if full == "" {
		opts = append(opts, clientv3.WithFromKey())
	} else {
		opts = append(opts, clientv3.WithPrefix())
	}
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	wch := s.c.Watch(wctx, rangeKey(full), opts...)
	q := watchq.New(s.backlog)
	out := make(chan store.WatchResponse, 16)
	go func() {
		defer cancel()
		for resp := range wch {
			if err := resp.Err(); err != nil {
				q.Fail(mapErr(what, err))
				return
			}
			if resp.Canceled {
				q.Fail(fmt.Errorf("%s: canceled by etcd", what))
				return
			}
			if len(resp.Events) == 0 {
				continue // created or progress notification
			}
			evs := make([]store.Event, len(resp.Events))
			for i, e := range resp.Events {
				evs[i] = s.event(e)
			}
			if !q.Push(store.WatchResponse{Events: evs}) {
				return // overflow: cancel the etcd watch
			}
		}
		switch {
		case ctx.Err() != nil:
		case s.c.Ctx().Err() != nil:
			q.Fail(fmt.Errorf("%s: %w", what, store.ErrClosed))
		default:
			q.Fail(fmt.Errorf("%s: etcd closed the watch", what))
		}
	}()
	go func() {
		defer close(out)
		defer cancel()
		q.Pump(ctx, nil, out)
	}()
	return out, nil
}

func (s *Store) event(e *clientv3.Event) store.Event {
	ev := store.Event{KV: s.kv(e.Kv)}
	if e.PrevKv != nil {
		ev.PrevValue = e.PrevKv.Value
		if ev.PrevValue == nil {
			ev.PrevValue = []byte{}
		}
	}
	if e.Type == mvccpb.DELETE {
		ev.Type = store.EventDelete
		ev.KV.Value = ev.PrevValue
		if e.PrevKv != nil {
			ev.KV.CreateRevision = e.PrevKv.CreateRevision
		}
	} else {
		ev.Type = store.EventPut
	}
	return ev
}
