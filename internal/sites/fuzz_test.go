package sites_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/meridian-platform/meridian/internal/audit"
	"github.com/meridian-platform/meridian/internal/pki"
	"github.com/meridian-platform/meridian/internal/sites"
	"github.com/meridian-platform/meridian/internal/store/bolt"
)

// FuzzRegisterBody sends arbitrary registration bodies: every answer is a
// well-formed refusal (nothing is registered without a stored token).
func FuzzRegisterBody(f *testing.F) {
	f.Add([]byte(`{"token":"mt_0123456789abcdef0123456789abcdef_AAAA","name":"s1","csr":"x"}`))
	f.Add([]byte(`{"token":"","name":"","csr":""}`))
	f.Add([]byte(`{"token":1}`))
	f.Add([]byte(`{"unknown":true}`))
	f.Add([]byte(`[]`))
	ctx := context.Background()
	st, err := bolt.Open(filepath.Join(f.TempDir(), "s.db"), bolt.Options{})
	if err != nil {
		f.Fatal(err)
	}
	defer st.Close()
	kr, err := pki.NewKeyring(ctx, st, pki.NewMasterKey(), "m")
	if err != nil {
		f.Fatal(err)
	}
	ca, err := pki.LoadOrCreateCA(ctx, st, kr, "console")
	if err != nil {
		f.Fatal(err)
	}
	srv, err := sites.New(ctx, sites.Options{Store: st, CA: ca, Audit: audit.New(st, kr, audit.Options{})})
	if err != nil {
		f.Fatal(err)
	}
	h := srv.Handler()
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, sites.RegisterPath, bytes.NewReader(body)))
		if rec.Code < 400 || rec.Code >= 500 {
			t.Fatalf("answer %d to %q", rec.Code, body)
		}
		if e := sites.DecodeError(rec.Code, rec.Body.Bytes()); e.Message == "" {
			t.Fatalf("no message in %q", rec.Body.String())
		}
	})
}
