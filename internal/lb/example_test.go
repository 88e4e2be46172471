package lb_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/meridian-platform/meridian/internal/lb"
)

// The data plane's request path: admit the request, pick an endpoint, count
// the request on it, report the result; retry on another endpoint.
func Example() {
	reg := lb.NewRegistry(lb.RegistryOptions{Logger: slog.New(slog.DiscardHandler)})
	defer reg.Close()
	err := reg.Update(context.Background(), []lb.PoolConfig{{
		ID:        "acme/retail/shop",
		Algorithm: lb.Maglev,
		Endpoints: []lb.EndpointConfig{{Address: "192.0.2.10:8080"}, {Address: "192.0.2.11:8080"}, {Address: "192.0.2.12:8080"}},
		Outlier:   &lb.OutlierConfig{Consecutive5xx: 5},
		Breaker:   &lb.BreakerConfig{MaxRequests: 1000},
	}})
	if err != nil {
		panic(err)
	}
	pool := reg.Pool("acme/retail/shop")

	if err := pool.Acquire(); errors.Is(err, lb.ErrCircuitOpen) {
		return // answer 503
	}
	defer pool.Release()

	key := lb.HashString("203.0.113.7") // e.g. the client address
	first, _ := pool.Pick(key, nil)
	first.Begin()
	first.End(lb.Result{Status: 503})

	again, _ := pool.Pick(key, nil)   // the same key lands on the same endpoint
	retry, _ := pool.Pick(key, first) // a retry goes elsewhere
	fmt.Println(again == first, retry != first)
	fmt.Println(pool.ByID(first.ID()) == first)
	// Output:
	// true true
	// true
}
