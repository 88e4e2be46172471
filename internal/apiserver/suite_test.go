package apiserver

import (
	"context"
	"fmt"
	"testing"

	"github.com/meridian-platform/meridian/internal/store"
	"github.com/meridian-platform/meridian/internal/store/etcd"
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
		t.Run(c.name, func(t *testing.T) { c.run(t, openBolt) })
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
		st, err := etcd.New(context.Background(), etcd.Options{Endpoints: eps, Prefix: fmt.Sprintf("/test%d/", n)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	for _, c := range suite {
		t.Run(c.name, func(t *testing.T) { c.run(t, open) })
	}
}
