package apiserver

import (
	"fmt"
	"testing"

	"github.com/meridian-platform/meridian/internal/store"
	"github.com/meridian-platform/meridian/internal/store/backendtest"
	"github.com/meridian-platform/meridian/internal/store/etcd/etcdtest"
)

// suite is every API test; each runs on bbolt, and again on etcd.
var suite = []struct {
	name string
	run  func(*testing.T, storeOpener)
}{
	{"Authentication", testAuthentication},
	{"RBAC", testRBAC},
	{"AuditRecords", testAuditRecords},
	{"RateLimit", testRateLimit},
	{"CRUDMetadataDefaultsGeneration", testCRUDMetadataDefaultsGeneration},
	{"References", testReferences},
	{"NamespaceRulesAndCascade", testNamespaceRulesAndCascade},
	{"DryRun", testDryRun},
	{"HistoryAndRollback", testHistoryAndRollback},
	{"Secrets", testSecrets},
	{"ListPagingSelectorsAndGone", testListPagingSelectorsAndGone},
	{"BadInput", testBadInput},
	{"Watch", testWatch},
	{"WatchBookmarkAndGone", testWatchBookmarkAndGone},
	{"TenantIsolationMatrix", testTenantIsolationMatrix},
	{"ConcurrentDeleteAndReference", testConcurrentDeleteAndReference},
	{"GroupCommit", testGroupCommit},
	{"OpenAPI", testOpenAPI},
	{"UpdateStatus", testUpdateStatus},
	{"SiteTokenFor", testSiteTokenFor},
}

func TestOnBolt(t *testing.T) {
	for _, c := range suite {
		t.Run(c.name, func(t *testing.T) { c.run(t, backendtest.Bolt) })
	}
}

// TestOnEtcd runs the suite over a real in-process etcd, each test under
// its own key prefix.
func TestOnEtcd(t *testing.T) {
	if testing.Short() {
		t.Skip("etcd suite skipped in -short mode")
	}
	eps := etcdtest.Start(t)
	n := 0
	open := func(t testing.TB) store.Store {
		n++
		return backendtest.Etcd(t, eps, fmt.Sprintf("/test%d/", n))
	}
	for _, c := range suite {
		t.Run(c.name, func(t *testing.T) { c.run(t, open) })
	}
}
