package agent

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"testing"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/internal/distrib"
)

// FuzzHandleUpdate feeds arbitrary updates (what arrives from the
// network) to the node: it must never panic, and an update it accepts
// must be saved and readable again.
func FuzzHandleUpdate(f *testing.F) {
	f.Add([]byte(`{"tenant":"t","version":"1-ab","full":true,"objects":[{"apiVersion":"meridian/v1","kind":"OriginPool","metadata":{"name":"p","namespace":"n"},"spec":{"endpoints":[{"address":"127.0.0.1:1"}]}}]}`))
	f.Add([]byte(`{"version":"2-cd","base":"1-ab","deleted":[{"kind":"OriginPool","namespace":"n","name":"p"}]}`))
	f.Add([]byte(`{"version":"3","full":true,"objects":[{"kind":"Nope"},{"kind":"OriginPool","spec":7},null,"x"]}`))
	dir := f.TempDir()
	a, err := New(Options{ConsoleURL: "https://127.0.0.1:1", DataDir: dir, Applier: nopApplier{},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var up distrib.Update
		if json.Unmarshal(data, &up) != nil {
			return
		}
		ack, err := a.handle(context.Background(), &up)
		if err != nil || ack == nil || ack.Resync {
			return
		}
		lg, err := a.loadLastGood()
		if err != nil || lg == nil || lg.Version != up.Version {
			t.Fatalf("accepted update %q not saved: %v", up.Version, err)
		}
	})
}

type nopApplier struct{}

func (nopApplier) Apply(context.Context, []v1.Object) []distrib.ObjectError { return nil }
