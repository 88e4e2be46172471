package audit

import (
	"context"
	"testing"

	"github.com/meridian-platform/meridian/internal/store/backendtest"
)

// BenchmarkAppend measures a standalone record (read head, hash, sign, one
// store transaction) on bbolt.
func BenchmarkAppend(b *testing.B) {
	ctx := context.Background()
	st := backendtest.Bolt(b)
	l := New(st, keyringB(b, st), Options{})
	rec := Record{Principal: "User/alice", Verb: "update", Kind: "OriginPool", Namespace: "retail", Name: "shop"}
	for b.Loop() {
		if _, err := l.Append(ctx, "acme", rec); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerify measures verifying a chain of 2,000 records.
func BenchmarkVerify(b *testing.B) {
	ctx := context.Background()
	st := backendtest.Bolt(b)
	l := New(st, keyringB(b, st), Options{})
	for i := 0; i < 2000; i++ {
		if _, err := l.Append(ctx, "acme", Record{Principal: "User/alice", Verb: "update"}); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for b.Loop() {
		if rep, err := l.Verify(ctx, "acme"); err != nil || !rep.OK {
			b.Fatal(rep, err)
		}
	}
}
