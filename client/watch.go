package client

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sync"
)

// Event types of a watch stream.
const (
	Added    = "ADDED"
	Modified = "MODIFIED"
	Deleted  = "DELETED"
	Bookmark = "BOOKMARK"
	Error    = "ERROR"
)

// Event is one change seen by a watch.
type Event struct {
	Type   string
	Object *Raw
	// Status is set for ERROR events (e.g. Gone: the resourceVersion was
	// compacted and the caller must list again).
	Status *StatusError
}

// WatchOptions say what to watch.
type WatchOptions struct {
	LabelSelector string
	// ResourceVersion starts the watch after that revision (exclusive):
	// use the resourceVersion of a list to see every later change once.
	ResourceVersion string
}

// Watcher delivers a watch's events until it is stopped, its context is
// cancelled or the console closes the stream.
type Watcher struct {
	ch     chan Event
	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	err    error
}

// Events returns the channel of events; it is closed when the watch ends.
func (w *Watcher) Events() <-chan Event { return w.ch }

// Stop ends the watch and waits until the event channel is closed.
func (w *Watcher) Stop() {
	w.cancel()
	for range w.ch { //nolint:revive // drain so the reader goroutine can exit
	}
	<-w.done
}

// Err returns why the watch ended (nil after Stop, a context cancel or a
// clean end of the stream), valid once Events is closed.
func (w *Watcher) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Watch opens a watch on kind in namespace (empty: all namespaces).
func (c *Client) Watch(ctx context.Context, kind, namespace string, opts WatchOptions) (*Watcher, error) {
	res := ResourceFor(kind, namespace)
	q := url.Values{}
	q.Set("watch", "true")
	if opts.LabelSelector != "" {
		q.Set("labelSelector", opts.LabelSelector)
	}
	if opts.ResourceVersion != "" {
		q.Set("resourceVersion", opts.ResourceVersion)
	}
	ctx, cancel := context.WithCancel(ctx)
	resp, err := c.send(ctx, request{method: http.MethodGet, path: res.Path(nsFor(res, namespace), "", ""), query: q})
	if err != nil {
		cancel()
		return nil, err
	}
	w := &Watcher{ch: make(chan Event), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		defer close(w.ch)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64*1024), 16<<20)
		for sc.Scan() {
			line := sc.Bytes()
			if len(line) == 0 {
				continue
			}
			ev, err := decodeEvent(line)
			if err != nil {
				w.setErr(fmt.Errorf("watching %s: %w", res.Plural, err))
				return
			}
			select {
			case w.ch <- ev:
			case <-ctx.Done():
				return
			}
		}
		if err := sc.Err(); err != nil && ctx.Err() == nil {
			w.setErr(fmt.Errorf("watching %s: %w", res.Plural, err))
		}
	}()
	return w, nil
}

func (w *Watcher) setErr(err error) {
	w.mu.Lock()
	w.err = err
	w.mu.Unlock()
}

func decodeEvent(line []byte) (Event, error) {
	var wire struct {
		Type   string          `json:"type"`
		Object json.RawMessage `json:"object"`
	}
	if err := json.Unmarshal(line, &wire); err != nil {
		return Event{}, fmt.Errorf("decoding event: %w", err)
	}
	ev := Event{Type: wire.Type}
	switch wire.Type {
	case Added, Modified, Deleted, Bookmark:
		obj, err := ParseRaw(wire.Object)
		if err != nil {
			return Event{}, fmt.Errorf("decoding %s event: %w", wire.Type, err)
		}
		ev.Object = obj
	case Error:
		ev.Status = decodeStatusError(0, http.Header{}, wire.Object)
	default:
		return Event{}, fmt.Errorf("unknown event type %q", wire.Type)
	}
	return ev, nil
}
