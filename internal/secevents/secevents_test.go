package secevents

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
)

func TestMaskMatched(t *testing.T) {
	long := strings.Repeat("a", 100)
	tests := []struct{ variable, data, want string }{
		{"ARGS:id", "1' OR 1=1", "1' OR 1=1"},
		{"REQUEST_HEADERS:Authorization", "Bearer abc", "****"},
		{"ARGS:password", "hunter2", "****"},
		{"REQUEST_COOKIES:sessionid", "", ""},
		{"ARGS:card", "pay 4111111111111111 now", "pay **************** now"},
		{"ARGS:n", "1234567", "1234567"},
		{"ARGS:n", "12345678", "********"},
		{"ARGS:x", long, strings.Repeat("a", MaxMatchedData) + "…"},
		{"ARGS:x", strings.Repeat("é", 40), strings.Repeat("é", 32) + "…"},
	}
	for _, tt := range tests {
		if got := MaskMatched(tt.variable, tt.data); got != tt.want {
			t.Errorf("MaskMatched(%q, %q) = %q, want %q", tt.variable, tt.data, got, tt.want)
		}
	}
}

type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func TestWriterWritesJSONLines(t *testing.T) {
	var buf lockedBuf
	var seen int
	w := NewWriter(&buf, WriterOptions{OnEvent: func(*Event) { seen++ }})
	w.Emit(&Event{Kind: KindWAF, Action: ActionBlocked, RequestID: "r1", Status: 403,
		Rules: []RuleHit{{ID: 942100, Message: "SQL injection", Data: "1 or 1=1"}}})
	w.Emit(&Event{Kind: KindPolicy, Action: ActionDenied, RequestID: "r2"})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(&buf.b)
	var got []Event
	for sc.Scan() {
		var e Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		got = append(got, e)
	}
	if len(got) != 2 || got[0].RequestID != "r1" || got[0].Rules[0].ID != 942100 || got[1].Kind != KindPolicy {
		t.Fatalf("events = %+v", got)
	}
	if got[0].Time.IsZero() {
		t.Error("time not set")
	}
	s := w.Stats()
	if s.Emitted != 2 || s.Written != 2 || s.Dropped != 0 || s.ByKind[KindWAF] != 1 || seen != 2 {
		t.Errorf("stats = %+v seen=%d", s, seen)
	}
	w.Emit(&Event{Kind: KindWAF})
	if w.Stats().Dropped != 1 {
		t.Error("emit after close was not counted as dropped")
	}
}

// blockingWriter blocks until released, so the queue fills up.
type blockingWriter struct{ release chan struct{} }

func (b *blockingWriter) Write(p []byte) (int, error) { <-b.release; return len(p), nil }

func TestWriterNeverBlocks(t *testing.T) {
	bw := &blockingWriter{release: make(chan struct{})}
	w := NewWriter(bw, WriterOptions{Queue: 4})
	for i := 0; i < 10000; i++ {
		w.Emit(&Event{Kind: KindRateLimit, Message: strings.Repeat("x", 70000)})
	}
	s := w.Stats()
	if s.Dropped == 0 || s.Emitted > 4+2 {
		t.Fatalf("bounded queue not enforced: %+v", s)
	}
	close(bw.release)
	_ = w.Close()
	if s := w.Stats(); s.Written != s.Emitted {
		t.Errorf("written %d of %d accepted", s.Written, s.Emitted)
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestWriterCountsErrors(t *testing.T) {
	w := NewWriter(failWriter{}, WriterOptions{})
	w.Emit(&Event{Kind: KindAuthn})
	_ = w.Close()
	if w.Stats().WriteErrors == 0 {
		t.Error("write error not counted")
	}
	var _ io.Writer = failWriter{}
}
