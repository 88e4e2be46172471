package apiserver

import (
	"context"
	"errors"
	"fmt"
	mathrand "math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/internal/audit"
	"github.com/meridian-platform/meridian/internal/store"
)

// Limits of one group commit. Every plan keeps its own revision (so that
// each object write has its own resourceVersion and a watch resumed from
// any event's misses nothing): on a store.Batcher (bbolt) a batch is one
// TxnBatch, one transaction per plan, the audit writes in the last; on
// other stores (etcd, one revision per transaction) every plan is its own
// transaction with its own audit record, within etcd's defaults (128
// operations per transaction branch, 1.5 MiB per request).
const (
	maxBatchPlans = 64
	// maxBatchOps bounds the writes of a TxnBatch (bbolt has no limit of
	// its own; this keeps one commit short).
	maxBatchOps   = 4096
	maxBatchBytes = 1 << 20
	// commitTimeout bounds one batch's store transaction: the batch serves
	// several requests, so no single request's context may cancel it.
	commitTimeout = 30 * time.Second
)

// batchLimits are the bounds selectBatch applies.
type batchLimits struct {
	plans, ops, bytes int
}

// batchLimitsFor returns the batch bounds for the server's store.
func (s *Server) batchLimitsFor() batchLimits {
	if _, ok := store.AsBatcher(s.st); ok {
		return batchLimits{plans: maxBatchPlans, ops: maxBatchOps, bytes: maxBatchBytes}
	}
	return batchLimits{plans: 1, ops: maxOpsPerTxn, bytes: maxBatchBytes}
}

// groupCommit commits the writes of each tenant in batches: every write
// appends to its tenant's audit chain, so the writes of a tenant that reach
// commit together go into ONE store transaction (one head update, one
// fsync) instead of waiting for each other. A tenant with pending writes
// has one committer goroutine, which exits once the queue is empty.
type groupCommit struct {
	mu     sync.Mutex
	queues map[string]*commitQueue
}

type commitQueue struct {
	pending []*pendingWrite
}

// pendingWrite is one plan waiting for its batch.
type pendingWrite struct {
	ctx  context.Context
	p    *writePlan
	rec  audit.Record
	done chan commitResult // buffered: answered exactly once
	// answered is set (by the committer goroutine) with the answer.
	answered bool
}

type commitResult struct {
	rev int64
	err error
}

func (w *pendingWrite) answer(rev int64, err error) {
	w.answered = true
	w.done <- commitResult{rev: rev, err: err}
}

// submit queues p (whose transaction holds no audit writes yet) for its
// tenant's committer and waits for the outcome: the revision it was written
// at, or the error commit gives a write that failed on its own (already
// exists, conflict on a pinned resourceVersion, errRetry to plan again).
func (s *Server) submit(ctx context.Context, p *writePlan) (int64, error) {
	ws, err := s.enqueue(ctx, []*writePlan{p})
	if err != nil {
		return 0, err
	}
	// Once queued, a write is waited for even if ctx ends, so that the
	// answer says whether it was applied (the batch has its own timeout).
	r := <-ws[0].done
	return r.rev, r.err
}

// submitAll queues plans of one tenant together, in order (the committer
// batches them, each at its own revision), waits for every answer and
// returns the first error in plan order.
func (s *Server) submitAll(ctx context.Context, plans []*writePlan) error {
	ws, err := s.enqueue(ctx, plans)
	if err != nil {
		return err
	}
	var first error
	for _, w := range ws {
		if r := <-w.done; r.err != nil && first == nil {
			first = r.err
		}
	}
	return first
}

// enqueue prepares the audit record of each plan and appends them to their
// tenant's queue, starting its committer when it has none.
func (s *Server) enqueue(ctx context.Context, plans []*writePlan) ([]*pendingWrite, error) {
	ws := make([]*pendingWrite, len(plans))
	for i, p := range plans {
		touchRBACVersion(p)
		rec, err := s.auditRecord(ctx, p)
		if err != nil {
			return nil, err
		}
		ws[i] = &pendingWrite{ctx: ctx, p: p, rec: rec, done: make(chan commitResult, 1)}
	}
	g := &s.group
	g.mu.Lock()
	if g.queues == nil {
		g.queues = map[string]*commitQueue{}
	}
	started := map[string]*commitQueue{}
	for _, w := range ws {
		q := g.queues[w.p.tenant]
		if q == nil {
			q = &commitQueue{}
			g.queues[w.p.tenant] = q
			started[w.p.tenant] = q
		}
		q.pending = append(q.pending, w)
	}
	g.mu.Unlock()
	for tenant, q := range started {
		go s.runCommits(tenant, q)
	}
	return ws, nil
}

// runCommits commits the tenant's queue batch by batch until it is empty.
func (s *Server) runCommits(tenant string, q *commitQueue) {
	g := &s.group
	for {
		g.mu.Lock()
		if len(q.pending) == 0 {
			delete(g.queues, tenant)
			g.mu.Unlock()
			return
		}
		batch, rest := selectBatch(q.pending, s.batchLimitsFor())
		q.pending = rest
		g.mu.Unlock()
		if len(batch) > 0 {
			s.commitSafely(tenant, batch)
		}
	}
}

// commitSafely is commitBatch answering the writes it left unanswered if
// it panics, so that no request waits forever and the queue goes on.
func (s *Server) commitSafely(tenant string, batch []*pendingWrite) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("group commit failed", "tenant", tenant, "panic", r)
			for _, w := range batch {
				if !w.answered {
					w.answer(0, errInternal(fmt.Errorf("committing %s %q: %v", w.p.info.Kind, w.p.ref.Name, r)))
				}
			}
		}
	}()
	s.commitBatch(tenant, batch)
}

// isTouch tells ops that only mark a guard as changed: several plans of a
// batch may touch one guard, which is then written once.
func isTouch(op store.Op) bool {
	return op.Type == store.OpPut && strings.HasPrefix(op.Key, prefixGuard)
}

// keySets are the keys written and compared by a set of plans.
type keySets struct {
	written  map[string]bool  // key -> every write of it is a touch
	compared map[string]int64 // key -> ModRevision compared
}

func newKeySets() keySets {
	return keySets{written: map[string]bool{}, compared: map[string]int64{}}
}

func (k keySets) add(t store.Txn) {
	for _, op := range t.Ops {
		touch, seen := k.written[op.Key]
		k.written[op.Key] = isTouch(op) && (!seen || touch)
	}
	for _, c := range t.Compares {
		k.compared[c.Key] = c.ModRevision
	}
}

// interferes reports whether a plan with transaction t may not share a
// transaction with (or overtake) the plans whose keys are in k: it writes a
// key they write (other than touching the same guard), it compares a key
// they write (the compare would be checked before their change), it writes
// a key they compare (overtaking only: checkCompared), or it compares a key
// they compare at another revision (one of the two is stale).
func (k keySets) interferes(t store.Txn, checkCompared bool) bool {
	for _, op := range t.Ops {
		if touch, ok := k.written[op.Key]; ok && !(touch && isTouch(op)) {
			return true
		}
		if _, ok := k.compared[op.Key]; ok && checkCompared {
			return true
		}
	}
	for _, c := range t.Compares {
		if _, ok := k.written[c.Key]; ok {
			return true
		}
		if rev, ok := k.compared[c.Key]; ok && rev != c.ModRevision {
			return true
		}
	}
	return false
}

func txnBytes(t store.Txn) int {
	n := 0
	for _, op := range t.Ops {
		n += len(op.Key) + len(op.Value)
	}
	for _, c := range t.Compares {
		n += len(c.Key)
	}
	return n
}

// selectBatch takes from the head of the queue the plans that can be
// committed together. A plan that interferes with an earlier plan of the
// batch, or with an earlier plan it left waiting, waits for the next batch
// in its place in the queue. Writes whose request ended are answered.
func selectBatch(pending []*pendingWrite, lim batchLimits) (batch, rest []*pendingWrite) {
	in, waiting := newKeySets(), newKeySets()
	ops, cmps, size := 0, 0, 0
	for i, w := range pending {
		if err := w.ctx.Err(); err != nil {
			w.answer(0, errInternal(fmt.Errorf("writing %s %q: %w", w.p.info.Kind, w.p.ref.Name, err)))
			continue
		}
		pops, pcmps, psize := len(w.p.txn.Ops)+1, len(w.p.txn.Compares), txnBytes(w.p.txn)
		if len(batch) >= lim.plans || (len(batch) > 0 &&
			(ops+pops > lim.ops || cmps+pcmps > lim.ops || size+psize > lim.bytes)) {
			// The rest waits as it is (a long queue, e.g. a cascade
			// delete on etcd, is not copied for every batch); writes
			// whose request ended are answered when their turn comes.
			if len(rest) == 0 {
				rest = pending[i:]
			} else {
				rest = append(rest, pending[i:]...)
			}
			break
		}
		if in.interferes(w.p.txn, false) || waiting.interferes(w.p.txn, true) {
			rest = append(rest, w)
			waiting.add(w.p.txn)
			continue
		}
		batch = append(batch, w)
		in.add(w.p.txn)
		ops, cmps, size = ops+pops, cmps+pcmps, size+psize
	}
	return batch, rest
}

// batchTxns makes one transaction per plan, in batch order, and puts the
// audit compares and writes (the records of the whole batch, one head) in
// the last: every plan's writes get their own revision and the batch is
// still one atomic commit (store.Batcher).
func batchTxns(batch []*pendingWrite, auditOps []store.Op, auditCmps []store.Compare) []store.Txn {
	ts := make([]store.Txn, len(batch))
	for i, w := range batch {
		ts[i] = store.Txn{
			Compares: append([]store.Compare(nil), w.p.txn.Compares...),
			Ops:      append([]store.Op(nil), w.p.txn.Ops...),
		}
	}
	last := &ts[len(ts)-1]
	last.Compares = append(append([]store.Compare(nil), auditCmps...), last.Compares...)
	last.Ops = append(last.Ops, auditOps...)
	return ts
}

func comparesKey(t store.Txn, key string) bool {
	for _, c := range t.Compares {
		if c.Key == key {
			return true
		}
	}
	return false
}

// commitBatch writes a batch in one transaction with its audit records
// chained in order, and answers every plan. On a conflict on the chain
// head the records are prepared again; on a conflict on another key, the
// plans that compared it fail as they would alone and the others are
// written without them.
func (s *Server) commitBatch(tenant string, batch []*pendingWrite) {
	if _, ok := store.AsBatcher(s.st); !ok && len(batch) > 1 {
		// One revision per transaction: plan by plan.
		for _, w := range batch {
			s.commitBatch(tenant, []*pendingWrite{w})
		}
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(batch[0].ctx), commitTimeout)
	defer cancel()
	for headTries := 0; len(batch) > 0; {
		recs := make([]audit.Record, len(batch))
		now := s.now().UTC()
		for i, w := range batch {
			recs[i] = w.rec
			recs[i].Time = now
		}
		aops, acmps, _, err := s.opts.Audit.PrepareBatch(ctx, tenant, recs)
		if err != nil {
			for _, w := range batch {
				w.answer(0, errInternal(fmt.Errorf("preparing audit record: %w", err)))
			}
			return
		}
		revs, err := s.writeBatch(ctx, batchTxns(batch, aops, acmps))
		if err == nil {
			for i, w := range batch {
				w.answer(revs[i], nil)
			}
			return
		}
		if s.opts.Audit.IsHeadConflict(err, tenant) {
			// Another console (or a standalone audit append) won the
			// head: chain the records again after its record.
			headTries++
			if headTries > maxTxnRetries {
				for _, w := range batch {
					w.answer(0, errRetry)
				}
				return
			}
			select {
			case <-ctx.Done():
			case <-time.After(time.Duration(mathrand.Int64N(int64(time.Millisecond) << min(headTries, 5)))):
			}
			continue
		}
		var ce *store.ConflictError
		if errors.As(err, &ce) {
			var keep []*pendingWrite
			for _, w := range batch {
				if comparesKey(w.p.txn, ce.Key) {
					w.answer(0, conflictErr(w.p, ce.Key))
				} else {
					keep = append(keep, w)
				}
			}
			if len(keep) == len(batch) {
				// A compare nobody made: let every plan start over.
				for _, w := range batch {
					w.answer(0, errRetry)
				}
				return
			}
			batch = keep
			continue
		}
		if len(batch) > 1 {
			// Not a conflict (a store error, a limit): commit the plans
			// one by one so that only the one at fault fails.
			for _, w := range batch {
				s.commitBatch(tenant, []*pendingWrite{w})
			}
			return
		}
		p := batch[0].p
		switch {
		case errors.Is(err, store.ErrTooManyOps):
			batch[0].answer(0, newErr(http.StatusRequestEntityTooLarge, v1.StatusReasonRequestEntityTooLarge,
				"writing %s %q takes %d store operations (with its references, history and audit record), more than the store accepts in one transaction (%d on etcd by default): refer to fewer objects from one object",
				p.info.Kind, p.ref.Name, len(p.txn.Ops), store.MaxTxnOps))
			return
		case errors.Is(err, store.ErrTxnTooLarge):
			batch[0].answer(0, newErr(http.StatusRequestEntityTooLarge, v1.StatusReasonRequestEntityTooLarge,
				"writing %s %q takes %d bytes (the object and its history entry), more than the store accepts in one transaction (1.5 MiB on etcd by default): make the object smaller",
				p.info.Kind, p.ref.Name, txnBytes(p.txn)))
			return
		}
		batch[0].answer(0, errInternal(fmt.Errorf("writing %s %q: %w", p.info.Kind, p.ref.Name, err)))
		return
	}
}

// writeBatch commits ts (one per plan) atomically, each at its own
// revision: with store.Batcher, or as the one transaction it then is.
func (s *Server) writeBatch(ctx context.Context, ts []store.Txn) ([]int64, error) {
	if b, ok := store.AsBatcher(s.st); ok {
		return b.TxnBatch(ctx, ts)
	}
	if len(ts) != 1 {
		return nil, fmt.Errorf("committing %d transactions at once: the store gives one revision per transaction", len(ts))
	}
	rev, err := s.st.Txn(ctx, ts[0])
	return []int64{rev}, err
}

// conflictErr is the answer to a write whose transaction failed on key:
// on the object's own key a create finds it exists and a write pinned to a
// resourceVersion conflicts; anything else (a referenced object, the
// namespace, a guard, an unpinned object changed meanwhile) is planned
// again.
func conflictErr(p *writePlan, key string) error {
	if key == objKey(p.tenant, p.ref) {
		switch {
		case p.verb == "create":
			return errAlreadyExists(p.info.Kind, p.ref.Name)
		case p.pinned:
			return conflictOn(p.info, p.ref)
		}
	}
	return errRetry
}
