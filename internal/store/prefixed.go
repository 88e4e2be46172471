package store

import (
	"context"
	"errors"
	"strings"
)

// Prefixed returns a view of s in which every key is stored under prefix:
// callers see and use keys without it, and nothing outside prefix is
// visible. Revisions, compaction and Close are those of s (Close closes s).
func Prefixed(s Store, prefix string) Store {
	if prefix == "" {
		return s
	}
	return &prefixed{s: s, p: prefix}
}

type prefixed struct {
	s Store
	p string
}

func (p *prefixed) strip(kv KV) KV {
	kv.Key = strings.TrimPrefix(kv.Key, p.p)
	return kv
}

func (p *prefixed) unwrapErr(err error) error {
	var c *ConflictError
	if errors.As(err, &c) {
		cc := *c
		cc.Key = strings.TrimPrefix(c.Key, p.p)
		return &cc
	}
	return err
}

func (p *prefixed) Get(ctx context.Context, key string) (KV, error) {
	kv, err := p.s.Get(ctx, p.p+key)
	if err != nil {
		return KV{}, err
	}
	return p.strip(kv), nil
}

func (p *prefixed) List(ctx context.Context, prefix string, opts ListOptions) (ListResult, error) {
	if opts.After != "" {
		opts.After = p.p + opts.After
	}
	res, err := p.s.List(ctx, p.p+prefix, opts)
	if err != nil {
		return ListResult{}, err
	}
	for i := range res.Items {
		res.Items[i] = p.strip(res.Items[i])
	}
	return res, nil
}

func (p *prefixed) txn(t Txn) (Txn, error) {
	pt := Txn{Compares: make([]Compare, len(t.Compares)), Ops: make([]Op, len(t.Ops))}
	for i, c := range t.Compares {
		if c.Key == "" {
			return Txn{}, t.Validate()
		}
		c.Key = p.p + c.Key
		pt.Compares[i] = c
	}
	for i, op := range t.Ops {
		if op.Key == "" {
			return Txn{}, t.Validate()
		}
		op.Key = p.p + op.Key
		pt.Ops[i] = op
	}
	return pt, nil
}

func (p *prefixed) Txn(ctx context.Context, t Txn) (int64, error) {
	pt, err := p.txn(t)
	if err != nil {
		return 0, err
	}
	rev, err := p.s.Txn(ctx, pt)
	return rev, p.unwrapErr(err)
}

// batcher makes AsBatcher see through the prefix.
func (p *prefixed) batcher() (Batcher, bool) {
	b, ok := AsBatcher(p.s)
	if !ok {
		return nil, false
	}
	return prefixedBatcher{p: p, b: b}, true
}

type prefixedBatcher struct {
	p *prefixed
	b Batcher
}

func (pb prefixedBatcher) TxnBatch(ctx context.Context, ts []Txn) ([]int64, error) {
	pts := make([]Txn, len(ts))
	for i, t := range ts {
		pt, err := pb.p.txn(t)
		if err != nil {
			return nil, &BatchError{Index: i, Err: err}
		}
		pts[i] = pt
	}
	revs, err := pb.b.TxnBatch(ctx, pts)
	var be *BatchError
	if errors.As(err, &be) {
		return nil, &BatchError{Index: be.Index, Err: pb.p.unwrapErr(be.Err)}
	}
	return revs, err
}

func (p *prefixed) Watch(ctx context.Context, prefix string, fromRevision int64) (<-chan WatchResponse, error) {
	in, err := p.s.Watch(ctx, p.p+prefix, fromRevision)
	if err != nil {
		return nil, err
	}
	out := make(chan WatchResponse)
	go func() {
		defer close(out)
		for r := range in {
			for i := range r.Events {
				r.Events[i].KV = p.strip(r.Events[i].KV)
			}
			select {
			case out <- r:
			case <-ctx.Done():
				// Drain so the inner watch's goroutine can finish.
				for range in {
				}
				return
			}
		}
	}()
	return out, nil
}

func (p *prefixed) Revision(ctx context.Context) (int64, error) { return p.s.Revision(ctx) }

func (p *prefixed) Compact(ctx context.Context, rev int64) error { return p.s.Compact(ctx, rev) }

func (p *prefixed) Close() error { return p.s.Close() }
