package apiserver

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"
)

// testConcurrentDeleteAndReference races the delete of a pool against the
// creation of a load balancer referring to it: whatever the order, a load
// balancer never exists without its pool. Likewise a namespace delete
// against a create inside it.
func testConcurrentDeleteAndReference(t *testing.T, open storeOpener) {
	e := newEnv(t, open)
	tok := e.tenant("acme", "retail")
	// Deletes go to one console, creates to another sharing the store:
	// only the store transactions keep them apart.
	e2 := e.replica()
	ns := "/api/v1/namespaces/retail/"
	const n = 40
	for round := 0; round < 2; round++ {
		for i := 0; i < n; i++ {
			e.must(201, "POST", ns+"originpools", tok, pool("retail", fmt.Sprintf("p%d-%d", round, i)))
		}
		dels, cres := make([]resp, n), make([]resp, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := 0; i < n; i++ {
			p, l := fmt.Sprintf("p%d-%d", round, i), fmt.Sprintf("l%d-%d", round, i)
			wg.Add(2)
			go func() { defer wg.Done(); <-start; dels[i] = e.do("DELETE", ns+"originpools/"+p, tok, nil) }()
			go func() {
				defer wg.Done()
				<-start
				cres[i] = e2.do("POST", ns+"httploadbalancers", tok, lb("retail", l, p))
			}()
		}
		close(start)
		wg.Wait()
		for i := 0; i < n; i++ {
			p, l := fmt.Sprintf("p%d-%d", round, i), fmt.Sprintf("l%d-%d", round, i)
			lbExists := e.do("GET", ns+"httploadbalancers/"+l, tok, nil).code == 200
			poolExists := e.do("GET", ns+"originpools/"+p, tok, nil).code == 200
			if lbExists && !poolExists {
				t.Fatalf("%s: dangling reference (delete %d %s, create %d %s)", l, dels[i].code, dels[i].body, cres[i].code, cres[i].body)
			}
			if (dels[i].code == 200) == poolExists || (cres[i].code == 201) != lbExists {
				t.Fatalf("%s: answers do not match the state: delete %d, create %d, pool %v, lb %v", l, dels[i].code, cres[i].code, poolExists, lbExists)
			}
		}
	}
	for i := 0; i < 10; i++ {
		n := fmt.Sprintf("ns%d", i)
		e.must(201, "POST", "/api/v1/namespaces", tok, obj("Namespace", "", n, nil))
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); e.do("DELETE", "/api/v1/namespaces/"+n, tok, nil) }()
		go func() { defer wg.Done(); e2.do("POST", "/api/v1/namespaces/"+n+"/originpools", tok, pool(n, "x")) }()
		wg.Wait()
		nsExists := e.do("GET", "/api/v1/namespaces/"+n, tok, nil).code == 200
		var l struct{ Items []json.RawMessage }
		_ = json.Unmarshal(e.must(200, "GET", "/api/v1/namespaces/"+n+"/originpools", tok, nil).body, &l)
		if !nsExists && len(l.Items) > 0 {
			t.Fatalf("round %d: object left in deleted namespace", i)
		}
	}
}
