package watchq

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/meridian-platform/meridian/internal/store"
)

func resp(revs ...int64) store.WatchResponse {
	var r store.WatchResponse
	for _, rev := range revs {
		r.Events = append(r.Events, store.Event{Type: store.EventPut, KV: store.KV{Key: "k", ModRevision: rev}})
	}
	return r
}

// drain pumps q into a channel and returns the revisions seen and the
// final error.
func drain(t *testing.T, q *Queue) ([]int64, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out := make(chan store.WatchResponse)
	go func() {
		q.Pump(ctx, nil, out)
		close(out)
	}()
	var revs []int64
	for r := range out {
		if r.Err != nil {
			return revs, r.Err
		}
		for _, e := range r.Events {
			revs = append(revs, e.KV.ModRevision)
		}
	}
	return revs, ctx.Err()
}

func TestQueue(t *testing.T) {
	errBoom := errors.New("boom")
	tests := []struct {
		name     string
		limit    int
		push     []store.WatchResponse
		fail     error
		wantOK   []bool
		wantRevs []int64
		wantErr  error
	}{
		{"within limit then fail", 5, []store.WatchResponse{resp(1, 2), resp(3)}, errBoom, []bool{true, true}, []int64{1, 2, 3}, errBoom},
		{"overflow keeps the gap-free prefix", 3, []store.WatchResponse{resp(1, 2), resp(3), resp(4), resp(5)}, nil, []bool{true, true, false, false}, []int64{1, 2, 3}, store.ErrWatchOverflow},
		{"one big response fits an empty queue", 2, []store.WatchResponse{resp(1, 2, 3, 4), resp(5)}, nil, []bool{true, false}, []int64{1, 2, 3, 4}, store.ErrWatchOverflow},
		{"empty responses are ignored", 1, []store.WatchResponse{resp(), resp(1)}, errBoom, []bool{true, true}, []int64{1}, errBoom},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := New(tc.limit)
			for i, r := range tc.push {
				if ok := q.Push(r); ok != tc.wantOK[i] {
					t.Fatalf("push %d = %v, want %v", i, ok, tc.wantOK[i])
				}
			}
			if tc.fail != nil {
				q.Fail(tc.fail)
				q.Fail(errors.New("second error is ignored"))
			}
			revs, err := drain(t, q)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("ended with %v, want %v", err, tc.wantErr)
			}
			if len(revs) != len(tc.wantRevs) {
				t.Fatalf("revisions %v, want %v", revs, tc.wantRevs)
			}
			for i := range revs {
				if revs[i] != tc.wantRevs[i] {
					t.Fatalf("revisions %v, want %v", revs, tc.wantRevs)
				}
			}
		})
	}
}

func TestPumpStopsOnContext(t *testing.T) {
	q := New(10)
	q.Push(resp(1))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		q.Pump(ctx, nil, make(chan store.WatchResponse)) // nobody reads
		close(done)
	}()
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Pump did not return after cancel")
	}
}
