package bolt

import (
	"bytes"
	"testing"
)

func TestLogRoundTrip(t *testing.T) {
	in := []logEvent{
		{typ: evPut, key: []byte("a"), create: 7, value: []byte("new")},
		{typ: evPut, key: []byte("b/c"), create: 3, value: []byte{}, hasPrev: true, prev: kvRec{create: 3, mod: 5, value: []byte("old")}},
		{typ: evDel, key: []byte("d"), create: 2, hasPrev: true, prev: kvRec{create: 2, mod: 2, value: bytes.Repeat([]byte{0xff}, 300)}},
	}
	rec := encodeLog(12345, in)
	if at, err := logTime(rec); err != nil || at != 12345 {
		t.Fatalf("time = %d, %v", at, err)
	}
	var out []logEvent
	if err := decodeLog(rec, func(e *logEvent) error { out = append(out, *e); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(out) != len(in) {
		t.Fatalf("%d events back, want %d", len(out), len(in))
	}
	for i := range in {
		a, b := in[i], out[i]
		if a.typ != b.typ || !bytes.Equal(a.key, b.key) || a.create != b.create || !bytes.Equal(a.value, b.value) ||
			a.hasPrev != b.hasPrev || a.prev.create != b.prev.create || a.prev.mod != b.prev.mod || !bytes.Equal(a.prev.value, b.prev.value) {
			t.Fatalf("event %d = %+v, want %+v", i, b, a)
		}
	}
	// Every truncation is reported, never a panic or a silent short read.
	for n := 0; n < len(rec); n++ {
		if err := decodeLog(rec[:n], func(*logEvent) error { return nil }); err == nil {
			t.Fatalf("record cut to %d of %d bytes decoded without error", n, len(rec))
		}
	}
}

// FuzzDecodeLog feeds damaged records to the decoder: it must fail cleanly.
func FuzzDecodeLog(f *testing.F) {
	f.Add(encodeLog(1, []logEvent{{typ: evPut, key: []byte("k"), create: 1, value: []byte("v")}}))
	f.Add(encodeLog(2, []logEvent{{typ: evDel, key: []byte("k"), create: 1, hasPrev: true, prev: kvRec{create: 1, mod: 1, value: []byte("v")}}}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = decodeLog(b, func(e *logEvent) error {
			if len(e.key) > len(b) || len(e.value) > len(b) || len(e.prev.value) > len(b) {
				t.Fatalf("decoded slices longer than the record")
			}
			return nil
		})
		_, _ = decodeKV(b)
	})
}
