package watchq

import (
	"context"
	"sync"

	"github.com/meridian-platform/meridian/internal/store"
)

// Queue buffers watch responses between a producer that must never block
// (the writer publishing a commit) and a consumer reading a channel at its
// own pace. When more than Limit events are waiting the queue stops
// accepting and ends with store.ErrWatchOverflow once the backlog is sent,
// so the consumer resumes from the last revision it saw.
type Queue struct {
	limit int

	mu     sync.Mutex
	items  []store.WatchResponse
	events int
	err    error
	wake   chan struct{}
}

// New returns a queue holding at most limit events (limit < 1 means 1).
func New(limit int) *Queue {
	if limit < 1 {
		limit = 1
	}
	return &Queue{limit: limit, wake: make(chan struct{}, 1)}
}

func (q *Queue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// Push queues r. It reports false when the queue has ended (overflow or
// Fail); the producer should then forget this queue.
func (q *Queue) Push(r store.WatchResponse) bool {
	if len(r.Events) == 0 && r.Err == nil {
		return true
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.err != nil {
		return false
	}
	// A single response larger than the limit is still accepted into an
	// empty queue, otherwise one big transaction would end every watch.
	if q.events > 0 && q.events+len(r.Events) > q.limit {
		q.err = store.ErrWatchOverflow
		q.signal()
		return false
	}
	q.items = append(q.items, r)
	q.events += len(r.Events)
	q.signal()
	return true
}

// Fail ends the queue with err after what is already queued is delivered.
// The first error wins.
func (q *Queue) Fail(err error) {
	q.mu.Lock()
	if q.err == nil {
		q.err = err
	}
	q.mu.Unlock()
	q.signal()
}

// Send delivers r on out unless ctx or stop ends first.
func Send(ctx context.Context, stop <-chan struct{}, out chan<- store.WatchResponse, r store.WatchResponse) bool {
	select {
	case out <- r:
		return true
	case <-ctx.Done():
		return false
	case <-stop:
		return false
	}
}

// Pump moves queued responses to out until the queue ends (its error is
// then sent as the last response), ctx is done or stop is closed. It does
// not close out.
func (q *Queue) Pump(ctx context.Context, stop <-chan struct{}, out chan<- store.WatchResponse) {
	for {
		q.mu.Lock()
		items, err := q.items, q.err
		q.items, q.events = nil, 0
		q.mu.Unlock()
		for _, r := range items {
			if !Send(ctx, stop, out, r) {
				return
			}
		}
		if err != nil && len(items) == 0 {
			Send(ctx, stop, out, store.WatchResponse{Err: err})
			return
		}
		if len(items) > 0 {
			continue // pick up what arrived meanwhile, then the error if any
		}
		select {
		case <-q.wake:
		case <-ctx.Done():
			return
		case <-stop:
			return
		}
	}
}
