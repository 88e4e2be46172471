package dptest

import (
	"bytes"
	"encoding/json"
	"sync"
	"testing"
	"time"
)

// Lines is an io.Writer that keeps the JSON lines written to it (an access
// log), safe for concurrent use.
type Lines struct {
	mu  sync.Mutex
	buf []byte
}

// Write appends p.
func (l *Lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	l.buf = append(l.buf, p...)
	l.mu.Unlock()
	return len(p), nil
}

// Objects decodes the complete lines written so far, each a JSON object;
// a line that is not one fails tb.
func (l *Lines) Objects(tb testing.TB) []map[string]any {
	tb.Helper()
	l.mu.Lock()
	b := bytes.Clone(l.buf)
	l.mu.Unlock()
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		b = b[:i+1]
	} else {
		b = nil
	}
	var out []map[string]any
	for _, line := range bytes.Split(b, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			tb.Fatalf("access-log line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

// Wait returns the first line for which match is true, polling until
// timeout has passed (then it fails tb).
func (l *Lines) Wait(tb testing.TB, timeout time.Duration, what string, match func(map[string]any) bool) map[string]any {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		for _, m := range l.Objects(tb) {
			if match(m) {
				return m
			}
		}
		if time.Now().After(deadline) {
			tb.Fatalf("no access-log line for %s within %v", what, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
