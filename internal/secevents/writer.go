package secevents

import (
	"bufio"
	"encoding/json"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// Sink receives events. Emit must not block the request path.
type Sink interface {
	Emit(e *Event)
}

// Stats are the counters of a Writer.
type Stats struct {
	Emitted     uint64 // accepted into the queue
	Dropped     uint64 // refused because the queue was full or the writer closed
	Written     uint64 // written out
	WriteErrors uint64
	ByKind      map[string]uint64 // emitted, by Event.Kind
}

// Writer writes events as JSON lines to an io.Writer from one goroutine.
// Emit never blocks: when the bounded queue is full the event is dropped
// and counted.
type Writer struct {
	q      chan *Event
	out    *bufio.Writer
	w      io.Writer
	done   chan struct{}
	once   sync.Once
	mu     sync.RWMutex // guards closed against sends on a closed queue
	closed bool

	emitted, dropped, written, writeErrors atomic.Uint64
	byKind                                 [6]atomic.Uint64 // waf, policy, ratelimit, authn, network, other
	// onEvent, if set, also sees each event (from the writer goroutine),
	// e.g. to forward it on a telemetry channel.
	onEvent atomic.Pointer[func(*Event)]
}

// WriterOptions configure a Writer.
type WriterOptions struct {
	// Queue is the number of events that may wait (default 4096).
	Queue int
	// FlushInterval bounds how long a written event stays in the buffer
	// (default 1s).
	FlushInterval time.Duration
	// OnEvent is called from the writer goroutine for every event taken
	// from the queue, written out or not (see also SetOnEvent).
	OnEvent func(*Event)
}

// NewWriter starts a writer; Close stops it.
func NewWriter(w io.Writer, opts WriterOptions) *Writer {
	if opts.Queue <= 0 {
		opts.Queue = 4096
	}
	if opts.FlushInterval <= 0 {
		opts.FlushInterval = time.Second
	}
	ew := &Writer{q: make(chan *Event, opts.Queue), w: w, out: bufio.NewWriterSize(w, 64<<10),
		done: make(chan struct{})}
	if opts.OnEvent != nil {
		ew.onEvent.Store(&opts.OnEvent)
	}
	go ew.run(opts.FlushInterval)
	return ew
}

func kindIndex(k string) int {
	switch k {
	case KindWAF:
		return 0
	case KindPolicy:
		return 1
	case KindRateLimit:
		return 2
	case KindAuthn:
		return 3
	case KindNetwork:
		return 4
	}
	return 5
}

// Emit queues an event; the writer owns it afterwards.
func (w *Writer) Emit(e *Event) {
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.closed {
		w.dropped.Add(1)
		return
	}
	select {
	case w.q <- e:
		w.emitted.Add(1)
		w.byKind[kindIndex(e.Kind)].Add(1)
	default:
		w.dropped.Add(1)
	}
}

func (w *Writer) run(flush time.Duration) {
	defer close(w.done)
	t := time.NewTicker(flush)
	defer t.Stop()
	enc := json.NewEncoder(w.out)
	enc.SetEscapeHTML(false)
	for {
		select {
		case e, ok := <-w.q:
			if !ok {
				if err := w.out.Flush(); err != nil {
					w.writeErrors.Add(1)
				}
				return
			}
			if err := enc.Encode(e); err != nil {
				w.writeErrors.Add(1)
			} else {
				w.written.Add(1)
			}
			if fn := w.onEvent.Load(); fn != nil {
				(*fn)(e)
			}
		case <-t.C:
			if w.out.Buffered() > 0 {
				if err := w.out.Flush(); err != nil {
					w.writeErrors.Add(1)
				}
			}
		}
	}
}

// SetOnEvent sets (or, with nil, clears) the function that sees every
// event after it is written, e.g. to forward it to the console. It may be
// called while events flow; fn runs on the writer goroutine and must not
// block for long.
func (w *Writer) SetOnEvent(fn func(*Event)) {
	if fn == nil {
		w.onEvent.Store(nil)
		return
	}
	w.onEvent.Store(&fn)
}

// Close writes what is queued, flushes and stops the writer.
func (w *Writer) Close() error {
	w.once.Do(func() {
		w.mu.Lock()
		w.closed = true
		close(w.q)
		w.mu.Unlock()
	})
	<-w.done
	return nil
}

// Stats returns the counters.
func (w *Writer) Stats() Stats {
	s := Stats{Emitted: w.emitted.Load(), Dropped: w.dropped.Load(), Written: w.written.Load(),
		WriteErrors: w.writeErrors.Load(), ByKind: map[string]uint64{}}
	for i, k := range []string{KindWAF, KindPolicy, KindRateLimit, KindAuthn, KindNetwork, "other"} {
		if n := w.byKind[i].Load(); n > 0 {
			s.ByKind[k] = n
		}
	}
	return s
}
