package dataplane

// lineBuffer holds access-log lines written on one goroutine (an event
// loop) so that they reach the shared writer in chunks; flushLines
// writes them out from any goroutine.
type lineBuffer interface{ flushLines() }

// attach makes Flush (every 100 ms, and Close) flush b too.
func (a *AccessLogWriter) attach(b lineBuffer) {
	a.subMu.Lock()
	if a.subs == nil {
		a.subs = map[lineBuffer]struct{}{}
	}
	a.subs[b] = struct{}{}
	a.subMu.Unlock()
}

// detach flushes b and forgets it.
func (a *AccessLogWriter) detach(b lineBuffer) {
	a.subMu.Lock()
	delete(a.subs, b)
	a.subMu.Unlock()
	b.flushLines()
}

func (a *AccessLogWriter) flushSubs() {
	a.subMu.Lock()
	defer a.subMu.Unlock()
	for b := range a.subs {
		b.flushLines()
	}
}
