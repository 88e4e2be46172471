package bolt

import (
	"bytes"
	"context"
	"fmt"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/meridian-platform/meridian/internal/store"
)

type txnResult struct {
	rev  int64
	revs []int64 // TxnBatch: one per transaction
	err  error
}

// txnReq is one Txn (len(ts) == 1, single) or one TxnBatch.
type txnReq struct {
	ts     []store.Txn
	single bool
	done   chan txnResult
}

// committed changes of one revision, handed to watchers.
type revEvents struct {
	rev    int64
	events []store.Event
}

// prepare checks t and copies its values: the caller may reuse its buffers
// once Txn returns, and watchers receive these slices.
func prepare(t store.Txn) (store.Txn, error) {
	if err := t.Validate(); err != nil {
		return store.Txn{}, err
	}
	for _, op := range t.Ops {
		if len(op.Key) > bbolt.MaxKeySize {
			return store.Txn{}, fmt.Errorf("store: key of %d bytes is longer than %d", len(op.Key), bbolt.MaxKeySize)
		}
	}
	ops := make([]store.Op, len(t.Ops))
	for i, op := range t.Ops {
		ops[i] = op
		if op.Type == store.OpPut {
			ops[i].Value = bytes.Clone(op.Value)
			if ops[i].Value == nil {
				ops[i].Value = []byte{}
			}
		}
	}
	return store.Txn{Compares: t.Compares, Ops: ops}, nil
}

// Txn applies t atomically. Transactions submitted concurrently are
// committed together in one bbolt transaction and one fsync; each is still
// checked and applied on its own, in submission order, at its own revision.
// Once submitted a transaction is waited for even if ctx ends, so that the
// answer always says whether it was applied.
func (s *Store) Txn(ctx context.Context, t store.Txn) (int64, error) {
	pt, err := prepare(t)
	if err != nil {
		return 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if len(t.Ops) == 0 {
		return s.checkOnly(t.Compares)
	}
	res, err := s.submit(ctx, &txnReq{ts: []store.Txn{pt}, single: true, done: make(chan txnResult, 1)})
	if err != nil {
		return 0, err
	}
	return res.rev, res.err
}

// TxnBatch applies ts as one atomic unit, each at its own revision (see
// store.Batcher). It shares the group commit (and fsync) of Txn.
func (s *Store) TxnBatch(ctx context.Context, ts []store.Txn) ([]int64, error) {
	pts := make([]store.Txn, len(ts))
	for i, t := range ts {
		pt, err := prepare(t)
		if err != nil {
			return nil, &store.BatchError{Index: i, Err: err}
		}
		pts[i] = pt
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(ts) == 0 {
		return nil, nil
	}
	res, err := s.submit(ctx, &txnReq{ts: pts, done: make(chan txnResult, 1)})
	if err != nil {
		return nil, err
	}
	return res.revs, res.err
}

func (s *Store) submit(ctx context.Context, req *txnReq) (txnResult, error) {
	s.closeMu.RLock()
	if s.closed {
		s.closeMu.RUnlock()
		return txnResult{}, store.ErrClosed
	}
	select {
	case s.reqs <- req:
	case <-ctx.Done():
		s.closeMu.RUnlock()
		return txnResult{}, ctx.Err()
	}
	s.closeMu.RUnlock()
	return <-req.done, nil
}

// checkOnly evaluates compares without writing.
func (s *Store) checkOnly(cmps []store.Compare) (int64, error) {
	var rev int64
	err := s.view(func(tx *bbolt.Tx) error {
		var err error
		if rev, _, err = readMeta(tx); err != nil {
			return err
		}
		return checkCompares(tx.Bucket(bucketKV), cmps, nil)
	})
	if err != nil {
		return 0, err
	}
	return rev, nil
}

// checkCompares checks cmps against the stored keys, or, for the keys in
// pending (key -> ModRevision, 0 when deleted), against what earlier
// transactions of the same batch will have written.
func checkCompares(kv *bbolt.Bucket, cmps []store.Compare, pending map[string]int64) error {
	for _, c := range cmps {
		have, ok := pending[c.Key]
		if !ok {
			if v := kv.Get([]byte(c.Key)); v != nil {
				rec, err := decodeKV(v)
				if err != nil {
					return fmt.Errorf("reading %q: %w", c.Key, err)
				}
				have = rec.mod
			}
		}
		if have != c.ModRevision {
			return &store.ConflictError{Key: c.Key, Want: c.ModRevision, Have: have}
		}
	}
	return nil
}

// checkBatch checks every compare of a TxnBatch as if the transactions
// before it had been applied, starting from revision cur, and returns the
// index of the first that fails.
func checkBatch(kvb *bbolt.Bucket, ts []store.Txn, cur int64) (int, error) {
	pending := map[string]int64{}
	exists := func(key string) bool {
		if rev, ok := pending[key]; ok {
			return rev != 0
		}
		return kvb.Get([]byte(key)) != nil
	}
	for i, t := range ts {
		if err := checkCompares(kvb, t.Compares, pending); err != nil {
			return i, err
		}
		changes := false
		for _, op := range t.Ops {
			if op.Type == store.OpPut || exists(op.Key) {
				changes = true
				break
			}
		}
		if !changes {
			continue
		}
		cur++
		for _, op := range t.Ops {
			if op.Type == store.OpPut {
				pending[op.Key] = cur
			} else {
				pending[op.Key] = 0
			}
		}
	}
	return -1, nil
}

// maxBatchBytes stops a group commit from taking more transactions once
// their values add up to this much.
const maxBatchBytes = 16 << 20

func (r *txnReq) size() int {
	n := 0
	for _, t := range r.ts {
		for _, op := range t.Ops {
			n += len(op.Key) + len(op.Value)
		}
	}
	return n
}

func (s *Store) commitLoop() {
	defer s.commits.Done()
	batch := make([]*txnReq, 0, s.opts.MaxBatch)
	for req := range s.reqs {
		batch = append(batch[:0], req)
		size := req.size()
	drain:
		for len(batch) < s.opts.MaxBatch && size < maxBatchBytes {
			select {
			case r, ok := <-s.reqs:
				if !ok {
					break drain
				}
				batch = append(batch, r)
				size += r.size()
			default:
				break drain
			}
		}
		s.commit(batch)
	}
}

// apply writes one checked transaction at revision cur+1 (when it changes
// anything) and returns the revision it is at and its events.
func apply(kvb, logb *bbolt.Bucket, t store.Txn, cur, now int64) (int64, *revEvents, error) {
	next := cur + 1
	var evs []logEvent
	for _, op := range t.Ops {
		key := []byte(op.Key)
		e := logEvent{key: key}
		if old := kvb.Get(key); old != nil {
			prev, err := decodeKV(old)
			if err != nil {
				return 0, nil, fmt.Errorf("reading %q: %w", op.Key, err)
			}
			prev.value = bytes.Clone(prev.value)
			e.hasPrev, e.prev = true, prev
		}
		switch op.Type {
		case store.OpPut:
			e.typ, e.create, e.value = evPut, next, op.Value
			if e.hasPrev {
				e.create = e.prev.create
			}
			if err := kvb.Put(key, encodeKV(e.create, next, op.Value)); err != nil {
				return 0, nil, fmt.Errorf("writing %q: %w", op.Key, err)
			}
		case store.OpDelete:
			if !e.hasPrev {
				continue
			}
			e.typ, e.create = evDel, e.prev.create
			if err := kvb.Delete(key); err != nil {
				return 0, nil, fmt.Errorf("deleting %q: %w", op.Key, err)
			}
		}
		evs = append(evs, e)
	}
	if len(evs) == 0 {
		return cur, nil, nil
	}
	if err := logb.Put(u64(next), encodeLog(now, evs)); err != nil {
		return 0, nil, fmt.Errorf("logging revision %d: %w", next, err)
	}
	pe := &revEvents{rev: next, events: make([]store.Event, len(evs))}
	for j := range evs {
		pe.events[j] = toEvent(next, &evs[j], false)
	}
	return next, pe, nil
}

// commit applies a batch in one bbolt transaction, publishes the changes to
// watchers and answers every caller.
func (s *Store) commit(batch []*txnReq) {
	results := make([]txnResult, len(batch))
	var pubs []revEvents
	now := time.Now().UnixNano()
	cur := s.committed
	err := s.db.Update(func(tx *bbolt.Tx) error {
		kvb, logb := tx.Bucket(bucketKV), tx.Bucket(bucketLog)
		pubs = pubs[:0]
		cur = s.committed
		for i, req := range batch {
			results[i] = txnResult{}
			if req.single {
				if err := checkCompares(kvb, req.ts[0].Compares, nil); err != nil {
					results[i].err = err
					continue
				}
			} else if at, err := checkBatch(kvb, req.ts, cur); err != nil {
				results[i].err = &store.BatchError{Index: at, Err: err}
				continue
			}
			revs := make([]int64, len(req.ts))
			for j, t := range req.ts {
				rev, pe, err := apply(kvb, logb, t, cur, now)
				if err != nil {
					return err
				}
				cur, revs[j] = rev, rev
				if pe != nil {
					pubs = append(pubs, *pe)
				}
			}
			if req.single {
				results[i].rev = revs[0]
			} else {
				results[i].revs = revs
			}
		}
		if cur == s.committed {
			return nil
		}
		return tx.Bucket(bucketMeta).Put(metaRev, u64(cur))
	})
	if err != nil {
		for i := range results {
			results[i] = txnResult{err: fmt.Errorf("committing transaction: %w", err)}
		}
	} else if s.commitN.Add(1); cur != s.committed {
		s.committed = cur
		s.publish(cur, pubs)
	}
	for i, req := range batch {
		req.done <- results[i]
	}
}

// toEvent converts a logged change at rev; with clone the slices are copied
// (log records read from the file alias memory valid only in the bbolt
// transaction).
func toEvent(rev int64, e *logEvent, clone bool) store.Event {
	cp := func(b []byte) []byte {
		if clone {
			return bytes.Clone(b)
		}
		return b
	}
	ev := store.Event{KV: store.KV{Key: string(e.key), CreateRevision: e.create, ModRevision: rev}}
	if e.hasPrev {
		ev.PrevValue = cp(e.prev.value)
		if ev.PrevValue == nil {
			ev.PrevValue = []byte{}
		}
	}
	switch e.typ {
	case evPut:
		ev.Type = store.EventPut
		ev.KV.Value = cp(e.value)
	case evDel:
		ev.Type = store.EventDelete
		ev.KV.Value = ev.PrevValue
	}
	return ev
}
