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
	rev int64
	err error
}

type txnReq struct {
	t    store.Txn
	done chan txnResult
}

// committed changes of one revision, handed to watchers.
type revEvents struct {
	rev    int64
	events []store.Event
}

// Txn applies t atomically. Transactions submitted concurrently are
// committed together in one bbolt transaction and one fsync; each is still
// checked and applied on its own, in submission order, at its own revision.
// Once submitted a transaction is waited for even if ctx ends, so that the
// answer always says whether it was applied.
func (s *Store) Txn(ctx context.Context, t store.Txn) (int64, error) {
	if err := t.Validate(); err != nil {
		return 0, err
	}
	for _, op := range t.Ops {
		if len(op.Key) > bbolt.MaxKeySize {
			return 0, fmt.Errorf("store: key of %d bytes is longer than %d", len(op.Key), bbolt.MaxKeySize)
		}
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if len(t.Ops) == 0 {
		return s.checkOnly(t.Compares)
	}
	// Copy values: the caller may reuse its buffers once Txn returns, and
	// watchers receive these slices.
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
	req := &txnReq{t: store.Txn{Compares: t.Compares, Ops: ops}, done: make(chan txnResult, 1)}
	s.closeMu.RLock()
	if s.closed {
		s.closeMu.RUnlock()
		return 0, store.ErrClosed
	}
	select {
	case s.reqs <- req:
	case <-ctx.Done():
		s.closeMu.RUnlock()
		return 0, ctx.Err()
	}
	s.closeMu.RUnlock()
	res := <-req.done
	return res.rev, res.err
}

// checkOnly evaluates compares without writing.
func (s *Store) checkOnly(cmps []store.Compare) (int64, error) {
	var rev int64
	err := s.view(func(tx *bbolt.Tx) error {
		var err error
		if rev, _, err = readMeta(tx); err != nil {
			return err
		}
		return checkCompares(tx.Bucket(bucketKV), cmps)
	})
	if err != nil {
		return 0, err
	}
	return rev, nil
}

func checkCompares(kv *bbolt.Bucket, cmps []store.Compare) error {
	for _, c := range cmps {
		var have int64
		if v := kv.Get([]byte(c.Key)); v != nil {
			rec, err := decodeKV(v)
			if err != nil {
				return fmt.Errorf("reading %q: %w", c.Key, err)
			}
			have = rec.mod
		}
		if have != c.ModRevision {
			return &store.ConflictError{Key: c.Key, Want: c.ModRevision, Have: have}
		}
	}
	return nil
}

// maxBatchBytes stops a group commit from taking more transactions once
// their values add up to this much.
const maxBatchBytes = 16 << 20

func (r *txnReq) size() int {
	n := 0
	for _, op := range r.t.Ops {
		n += len(op.Key) + len(op.Value)
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
			if err := checkCompares(kvb, req.t.Compares); err != nil {
				results[i].err = err
				continue
			}
			next := cur + 1
			var evs []logEvent
			for _, op := range req.t.Ops {
				key := []byte(op.Key)
				e := logEvent{key: key}
				if old := kvb.Get(key); old != nil {
					prev, err := decodeKV(old)
					if err != nil {
						return fmt.Errorf("reading %q: %w", op.Key, err)
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
						return fmt.Errorf("writing %q: %w", op.Key, err)
					}
				case store.OpDelete:
					if !e.hasPrev {
						continue
					}
					e.typ, e.create = evDel, e.prev.create
					if err := kvb.Delete(key); err != nil {
						return fmt.Errorf("deleting %q: %w", op.Key, err)
					}
				}
				evs = append(evs, e)
			}
			if len(evs) == 0 {
				results[i].rev = cur
				continue
			}
			cur = next
			if err := logb.Put(u64(cur), encodeLog(now, evs)); err != nil {
				return fmt.Errorf("logging revision %d: %w", cur, err)
			}
			results[i].rev = cur
			pe := revEvents{rev: cur, events: make([]store.Event, len(evs))}
			for j := range evs {
				pe.events[j] = toEvent(cur, &evs[j], false)
			}
			pubs = append(pubs, pe)
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
