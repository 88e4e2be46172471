package store

import (
	"context"
	"errors"
	"fmt"
)

// ErrNotFound is returned by Get when the key does not exist.
var ErrNotFound = errors.New("store: key not found")

// ErrCompacted is returned when a read or watch asks for a revision older than
// the oldest one the store still keeps.
var ErrCompacted = errors.New("store: required revision has been compacted")

// ErrFutureRevision is returned when a read asks for a revision not yet written.
var ErrFutureRevision = errors.New("store: required revision is in the future")

// ErrWatchOverflow ends a watch whose consumer fell too far behind the
// writers. Every event delivered before it is valid: re-watch from the
// revision of the last event received.
var ErrWatchOverflow = errors.New("store: watch consumer fell too far behind; re-watch from the last revision received")

// ErrTooManyOps is returned (wrapped) by Txn when the backend refuses a
// transaction for its number of operations or compares (etcd's
// --max-txn-ops, 128 by default). Code meant to run on every backend keeps
// its transactions within MaxTxnOps.
var ErrTooManyOps = errors.New("store: too many operations in one transaction")

// ErrTxnTooLarge is returned (wrapped) by Txn when the backend refuses a
// transaction for its size in bytes (etcd: 1.5 MiB per request by
// default).
var ErrTxnTooLarge = errors.New("store: transaction too large")

// MaxTxnOps is the most operations, and the most compares, a transaction
// may hold to be accepted by every backend (etcd's default --max-txn-ops).
const MaxTxnOps = 128

// ErrClosed is returned by calls on a closed store, and ends open watches.
var ErrClosed = errors.New("store: closed")

// ConflictError reports the first compare of a transaction that failed.
type ConflictError struct {
	Key string
	// Want is the ModRevision the caller expected (0 means "must not exist").
	Want int64
	// Have is the ModRevision the store holds (0 means "does not exist").
	Have int64
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("store: conflict on %q: expected mod revision %d, found %d", e.Key, e.Want, e.Have)
}

// IsConflict reports whether err is (or wraps) a *ConflictError.
func IsConflict(err error) bool {
	var c *ConflictError
	return errors.As(err, &c)
}

// KV is one stored key with its value and revisions.
type KV struct {
	Key   string
	Value []byte
	// CreateRevision is the revision at which the key was last created.
	CreateRevision int64
	// ModRevision is the revision of the last change to the key.
	ModRevision int64
}

// ListOptions selects a page of keys under a prefix.
type ListOptions struct {
	// Revision reads at that revision; 0 reads at the current one.
	Revision int64
	// Limit bounds the number of items returned; 0 means no limit.
	Limit int
	// After, when set, starts the page after this key (exclusive).
	After string
}

// ListResult is one page of a list.
type ListResult struct {
	Items []KV
	// Revision is the revision the page was read at; pass it back in
	// ListOptions.Revision to read the next page at the same revision.
	Revision int64
	// More is true when keys remain after the last item.
	More bool
}

// Compare is a precondition of a transaction on one key's ModRevision.
// ModRevision 0 means the key must not exist.
type Compare struct {
	Key         string
	ModRevision int64
}

// OpType is the kind of write in a transaction.
type OpType int

const (
	// OpPut writes a value.
	OpPut OpType = iota + 1
	// OpDelete removes a key (a no-op when the key does not exist).
	OpDelete
)

// Op is one write in a transaction.
type Op struct {
	Type  OpType
	Key   string
	Value []byte
}

// Put returns an Op writing value to key.
func Put(key string, value []byte) Op { return Op{Type: OpPut, Key: key, Value: value} }

// Delete returns an Op removing key.
func Delete(key string) Op { return Op{Type: OpDelete, Key: key} }

// Txn is an atomic set of compares and writes: either every compare holds
// and every op is applied at one new revision, or nothing changes.
type Txn struct {
	Compares []Compare
	Ops      []Op
}

// EventType says what happened to a key.
type EventType int

const (
	// EventPut is a create or an update.
	EventPut EventType = iota + 1
	// EventDelete is a removal.
	EventDelete
)

// Event is one change seen by a watch. For deletes, KV.Value holds the value
// before deletion and KV.ModRevision the revision of the delete.
type Event struct {
	Type EventType
	KV   KV
	// PrevValue is the value before this change, nil when it was created.
	PrevValue []byte
}

// WatchResponse is a batch of events at increasing revisions, or an error
// that ends the watch (the channel is closed after it).
type WatchResponse struct {
	Events []Event
	Err    error
}

// Store is the console's storage. Keys are '/'-separated strings; revisions
// are store-wide, strictly increasing, and survive restarts.
type Store interface {
	// Get returns a key at the current revision, or ErrNotFound.
	Get(ctx context.Context, key string) (KV, error)
	// List returns the keys under prefix in key order, one page at a time,
	// all read at one revision.
	List(ctx context.Context, prefix string, opts ListOptions) (ListResult, error)
	// Txn applies t atomically and returns the new revision. When a compare
	// fails it returns a *ConflictError and changes nothing. A Txn with no
	// ops returns the current revision.
	Txn(ctx context.Context, t Txn) (int64, error)
	// Watch streams every change under prefix with revision > fromRevision,
	// each exactly once and in order, then live changes, until ctx ends. It
	// fails with ErrCompacted when fromRevision is older than kept history.
	Watch(ctx context.Context, prefix string, fromRevision int64) (<-chan WatchResponse, error)
	// Revision returns the current store revision.
	Revision(ctx context.Context) (int64, error)
	// Compact discards history older than rev.
	Compact(ctx context.Context, rev int64) error
	// Close releases the store.
	Close() error
}

// Batcher is implemented by stores that can apply several transactions as
// one atomic unit while giving each its own revision (bbolt). Callers that
// group independent writes (each of which must have its own
// resourceVersion, as Kubernetes watches require) use it when AsBatcher
// finds it; etcd gives one transaction one revision, so there such writes
// are sent one transaction each.
type Batcher interface {
	// TxnBatch applies ts in order, all or nothing. The compares of ts[i]
	// are checked against the state ts[:i] left; ts[i]'s writes are at
	// one new revision, higher than those of ts[:i]. It returns the
	// revision of each (for a transaction that changes nothing, the
	// revision current at that point). When a compare fails nothing is
	// applied and the error is a *BatchError wrapping the *ConflictError.
	TxnBatch(ctx context.Context, ts []Txn) ([]int64, error)
}

// BatchError says which transaction of a TxnBatch failed.
type BatchError struct {
	// Index is the position of the failed transaction in the batch.
	Index int
	Err   error
}

func (e *BatchError) Error() string {
	return fmt.Sprintf("store: transaction %d of the batch: %v", e.Index, e.Err)
}

func (e *BatchError) Unwrap() error { return e.Err }

// AsBatcher returns s as a Batcher when it (or the store it wraps) is one.
func AsBatcher(s Store) (Batcher, bool) {
	if b, ok := s.(interface{ batcher() (Batcher, bool) }); ok {
		return b.batcher()
	}
	b, ok := s.(Batcher)
	return b, ok
}

// ValidateBatch checks every transaction of a batch (see Txn.Validate).
func ValidateBatch(ts []Txn) error {
	for i, t := range ts {
		if err := t.Validate(); err != nil {
			return &BatchError{Index: i, Err: err}
		}
	}
	return nil
}
