package apiserver

import (
	"fmt"
	"testing"
)

// BenchmarkCreateGet measures an authenticated, authorised, audited create
// and a get through HTTP on bbolt.
func BenchmarkCreateGet(b *testing.B) {
	e := newEnv(b, openBolt)
	tok := e.tenant("acme", "retail")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := e.do("POST", "/api/v1/namespaces/retail/originpools", tok, pool("retail", fmt.Sprintf("p%d", i)))
		if r.code != 201 {
			b.Fatalf("create: %d %s", r.code, r.body)
		}
		if r := e.do("GET", "/api/v1/namespaces/retail/originpools/"+fmt.Sprintf("p%d", i), tok, nil); r.code != 200 {
			b.Fatalf("get: %d", r.code)
		}
	}
}
