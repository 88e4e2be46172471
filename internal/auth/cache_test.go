package auth

import (
	"errors"
	"sync"
	"testing"

	v1 "github.com/meridian-platform/meridian/api/v1"
)

func TestEvaluatorCache(t *testing.T) {
	var c EvaluatorCache
	p := Principal{Tenant: "acme", Kind: KindAPIToken, Name: "ci"}
	grant := []Binding{{Name: "ci", Role: "viewer", Subjects: []Subject{{Kind: SubjectAPIToken, Name: "ci"}}}}
	builds := 0
	builder := func(bs []Binding) func() (*Evaluator, error) {
		return func() (*Evaluator, error) { builds++; return NewEvaluator("acme", nil, bs), nil }
	}
	steps := []struct {
		version  int64
		bindings []Binding
		allowed  bool
		builds   int
	}{
		{version: 5, bindings: grant, allowed: true, builds: 1},
		{version: 5, bindings: nil, allowed: true, builds: 1},  // same version: cached, no build
		{version: 9, bindings: nil, allowed: false, builds: 2}, // revoked at 9
		{version: 9, bindings: grant, allowed: false, builds: 2},
		{version: 12, bindings: grant, allowed: true, builds: 3},
	}
	for i, s := range steps {
		ev, err := c.Get("acme", s.version, builder(s.bindings))
		if err != nil {
			t.Fatal(err)
		}
		if got := ev.Authorize(p, v1.VerbGet, "OriginPool", "retail").Allowed; got != s.allowed || builds != s.builds {
			t.Fatalf("step %d: allowed %v builds %d, want %v %d", i, got, builds, s.allowed, s.builds)
		}
	}
	if c.Builds() != 3 {
		t.Fatalf("Builds() = %d", c.Builds())
	}
	// A failed build caches nothing and is returned.
	boom := errors.New("store down")
	if _, err := c.Get("acme", 13, func() (*Evaluator, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Fatalf("build error: %v", err)
	}
	ev, _ := c.Get("acme", 12, builder(nil))
	if !ev.Authorize(p, v1.VerbGet, "OriginPool", "retail").Allowed || builds != 3 {
		t.Fatal("entry of version 12 lost after a failed build")
	}
	// Tenants are separate; Forget drops one.
	if ev, _ := c.Get("other", 12, func() (*Evaluator, error) { builds++; return NewEvaluator("other", nil, nil), nil }); ev.Tenant() != "other" || builds != 4 {
		t.Fatal("tenant mix-up")
	}
	c.Forget("acme")
	if _, _ = c.Get("acme", 12, builder(nil)); builds != 5 || c.Builds() != 5 {
		t.Fatalf("after Forget: %d builds", builds)
	}
}

// An older build finishing last does not replace a newer entry.
func TestEvaluatorCacheOlderBuildLoses(t *testing.T) {
	var c EvaluatorCache
	p := Principal{Tenant: "acme", Kind: KindAPIToken, Name: "ci"}
	grant := []Binding{{Name: "ci", Role: "viewer", Subjects: []Subject{{Kind: SubjectAPIToken, Name: "ci"}}}}
	inOld, release := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, _ = c.Get("acme", 3, func() (*Evaluator, error) {
			close(inOld)
			<-release
			return NewEvaluator("acme", nil, grant), nil
		})
	}()
	<-inOld
	if _, err := c.Get("acme", 4, func() (*Evaluator, error) { return NewEvaluator("acme", nil, nil), nil }); err != nil {
		t.Fatal(err)
	}
	close(release)
	wg.Wait()
	ev, _ := c.Get("acme", 4, func() (*Evaluator, error) { t.Fatal("rebuilt version 4"); return nil, nil })
	if ev.Authorize(p, v1.VerbGet, "OriginPool", "retail").Allowed {
		t.Fatal("the older (granting) build replaced the newer (revoked) entry")
	}
}
