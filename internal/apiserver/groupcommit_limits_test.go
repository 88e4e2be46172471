package apiserver

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/internal/store/backendtest"
)

// testBigWrites: more concurrent writes than one etcd transaction takes
// all succeed (the group commit never builds a transaction over the
// limit), and a single object whose write needs more operations than the
// store accepts in one transaction gets a clear 413 (etcd) — or is written
// (bbolt, no limit).
func testBigWrites(t *testing.T, open storeOpener, limited bool) {
	e := newEnv(t, open)
	tok := e.tenant("acme", "retail")
	ns := "/api/v1/namespaces/retail/"
	const n = 150
	var wg sync.WaitGroup
	codes := make([]int, n)
	sem := make(chan struct{}, 32)
	for i := 0; i < n; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			codes[i] = e.do("POST", ns+"originpools", tok, pool("retail", fmt.Sprintf("p%03d", i))).code
		}()
	}
	wg.Wait()
	for i, c := range codes {
		if c != 201 {
			t.Fatalf("create %d of %d concurrent: %d", i, n, c)
		}
	}
	var pools []string
	for i := 0; i < 70; i++ {
		pools = append(pools, fmt.Sprintf("p%03d", i))
	}
	r := e.do("POST", ns+"httploadbalancers", tok, lb("retail", "wide", pools...))
	switch {
	case limited && r.code == 413:
		if s := r.status(); s.Reason != v1.StatusReasonRequestEntityTooLarge || !strings.Contains(s.Message, `HTTPLoadBalancer "wide"`) {
			t.Fatalf("413 body: %s", r.body)
		}
		e.must(404, "GET", ns+"httploadbalancers/wide", tok, nil)
	case !limited && r.code == 201:
		e.must(200, "GET", ns+"httploadbalancers/wide", tok, nil)
	default:
		t.Fatalf("load balancer referring to 70 pools (limited store %v): %d %s", limited, r.code, r.body)
	}
	// The store (and the tenant's committer) go on.
	e.must(201, "POST", ns+"httploadbalancers", tok, lb("retail", "narrow", pools[:10]...))
	e.must(200, "DELETE", "/api/v1/namespaces/retail?cascade=true", tok, nil)
}

func TestBigWritesOnBolt(t *testing.T) { testBigWrites(t, backendtest.Bolt, false) }
