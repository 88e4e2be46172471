package auth

import (
	"sync"
	"sync/atomic"
)

// EvaluatorCache keeps one Evaluator per tenant together with the version
// of the tenant's RBAC data (Roles, RoleBindings, Users) it was built from.
// The caller reads the current version (for example the store revision of
// a key every RBAC write touches) before each check: an entry built from an
// older version is never returned, so a revoked grant ends with the first
// check after the revoke is committed. The zero value is ready to use and
// safe for concurrent use.
type EvaluatorCache struct {
	mu     sync.Mutex
	m      map[string]cachedEvaluator
	builds atomic.Int64
}

type cachedEvaluator struct {
	version int64
	ev      *Evaluator
}

// Get returns the tenant's Evaluator for RBAC data at version, calling
// build when the cached one was built from another version. build must
// read the tenant's data AFTER version was read (so what it reads is at
// least as new). A build error is returned and nothing is cached.
func (c *EvaluatorCache) Get(tenant string, version int64, build func() (*Evaluator, error)) (*Evaluator, error) {
	c.mu.Lock()
	e, ok := c.m[tenant]
	c.mu.Unlock()
	if ok && e.version == version {
		return e.ev, nil
	}
	ev, err := build()
	if err != nil {
		return nil, err
	}
	c.builds.Add(1)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]cachedEvaluator{}
	}
	// A slower build of an older version does not replace a newer one.
	if cur, ok := c.m[tenant]; !ok || cur.version <= version {
		c.m[tenant] = cachedEvaluator{version: version, ev: ev}
	}
	return ev, nil
}

// Forget drops the tenant's entry (for example when the tenant is deleted).
func (c *EvaluatorCache) Forget(tenant string) {
	c.mu.Lock()
	delete(c.m, tenant)
	c.mu.Unlock()
}

// Builds returns how many Evaluators Get has built so far.
func (c *EvaluatorCache) Builds() int64 { return c.builds.Load() }
