package client

import (
	"encoding/json"
	"net/http"
	"testing"
)

// FuzzDecodeAnswers feeds server answers (watch lines, Status bodies,
// objects) to the client's decoders: they must fail cleanly, never panic,
// and a Raw that decodes must survive a round trip.
func FuzzDecodeAnswers(f *testing.F) {
	f.Add([]byte(`{"type":"ADDED","object":{"apiVersion":"meridian/v1","kind":"OriginPool","metadata":{"name":"a"},"spec":{}}}`))
	f.Add([]byte(`{"type":"ERROR","object":{"kind":"Status","code":410,"reason":"Gone","details":{"causes":[{"field":"x"}]}}}`))
	f.Add([]byte(`{"kind":"Status","code":422,"reason":"Invalid","message":"m","details":{"kind":"K","name":"n","causes":[{"field":"spec.a","reason":"r","message":"m"}]}}`))
	f.Add([]byte(`{"metadata":{"creationTimestamp":"bad"}}`))
	f.Add([]byte(`<html>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = decodeEvent(data)
		se := decodeStatusError(400, http.Header{"Retry-After": []string{string(data)}}, data)
		if se.Code == 0 || se.Reason == "" {
			t.Fatalf("status error without code or reason: %+v", se)
		}
		_ = se.Error()
		r, err := ParseRaw(data)
		if err != nil {
			return
		}
		out, err := json.Marshal(r)
		if err != nil {
			t.Fatalf("marshal of a decoded Raw: %v", err)
		}
		r2, err := ParseRaw(out)
		if err != nil {
			t.Fatalf("re-decoding %s: %v", out, err)
		}
		out2, _ := json.Marshal(r2)
		if string(out) != string(out2) {
			t.Fatalf("round trip not stable:\n%s\n%s", out, out2)
		}
	})
}
