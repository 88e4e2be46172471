package sites_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/client"
	"github.com/meridian-platform/meridian/internal/apiserver"
	"github.com/meridian-platform/meridian/internal/auth"
	"github.com/meridian-platform/meridian/internal/console"
	"github.com/meridian-platform/meridian/internal/pki"
	"github.com/meridian-platform/meridian/internal/sites"
	"github.com/meridian-platform/meridian/internal/sites/sitestest"
	"github.com/meridian-platform/meridian/internal/store"
	"github.com/meridian-platform/meridian/internal/store/backendtest"
	"github.com/meridian-platform/meridian/internal/store/etcd/etcdtest"
)

// backends runs f on a bbolt store and on an in-process etcd.
func backends(t *testing.T, f func(t *testing.T, e *identityEnv)) {
	backendtest.Each(t, func(t *testing.T, st store.Store) { f(t, newIdentityEnvOn(t, st)) })
}

func (e *identityEnv) server(t *testing.T) *sites.Server {
	t.Helper()
	opts := e.options(time.Hour)
	opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := sites.New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return srv
}

// putToken stores the SiteToken acme/name with its index, as the REST API
// writes them, and returns its plaintext.
func (e *identityEnv) putToken(t *testing.T, name string, maxUses int) string {
	t.Helper()
	plain, _, hash := auth.NewToken()
	tok := &v1.SiteToken{Spec: v1.SiteTokenSpec{MaxUses: maxUses}}
	tok.APIVersion, tok.Kind = v1.APIVersion, "SiteToken"
	tok.Metadata = v1.ObjectMeta{Name: name, Tenant: "acme", Generation: 1}
	tok.Status.TokenHash = v1.Secret(hash)
	b, _ := json.Marshal(tok)
	idx, _ := json.Marshal(map[string]string{"tenant": "acme", "name": name})
	if _, err := e.st.Txn(context.Background(), store.Txn{Ops: []store.Op{
		store.Put(tokenKey(name), b), store.Put("/ts/"+hash, idx)}}); err != nil {
		t.Fatal(err)
	}
	return plain
}

func tokenKey(name string) string { return apiserver.ObjectKey("acme", "sitetokens", "", name) }

func (e *identityEnv) tokenUses(t *testing.T, name string) int {
	t.Helper()
	kv, err := e.st.Get(context.Background(), tokenKey(name))
	if err != nil {
		t.Fatal(err)
	}
	var tok v1.SiteToken
	if err := json.Unmarshal(kv.Value, &tok); err != nil {
		t.Fatal(err)
	}
	return tok.Status.Uses
}

func (e *identityEnv) claims(t *testing.T) int {
	t.Helper()
	res, err := e.st.List(context.Background(), "/sitesclaim/", store.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return len(res.Items)
}

func registerAs(ctx context.Context, srv *sites.Server, token, name string, n *node) error {
	_, err := srv.Register(ctx, sites.RegisterRequest{Token: token, Name: name, CSR: n.csr, NodeVersion: "test", CapabilityVersion: 1}, "127.0.0.1")
	return err
}

func errCode(err error) int {
	var e *sites.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return 0
}

// nextEvents reads n events from a store watch.
func nextEvents(t *testing.T, ch <-chan store.WatchResponse, n int) []store.Event {
	t.Helper()
	var evs []store.Event
	timeout := time.After(10 * time.Second)
	for len(evs) < n {
		select {
		case r, ok := <-ch:
			if !ok || r.Err != nil {
				t.Fatalf("watch ended after %d events: %v", len(evs), r.Err)
			}
			evs = append(evs, r.Events...)
		case <-timeout:
			t.Fatalf("%d events after 10s, want %d", len(evs), n)
		}
	}
	return evs
}

// A registration writes the SiteToken (its use count) and the Site at
// revisions of their own: a watch resumed from the token's
// resourceVersion still sees the Site, and one from before sees each once.
func TestRegistrationWritesHaveTheirOwnRevisions(t *testing.T) {
	backends(t, func(t *testing.T, e *identityEnv) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		srv := e.server(t)
		plain := e.putToken(t, "eu", 2)
		before, err := e.st.Revision(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := registerAs(ctx, srv, plain, "station-1", newNode(t)); err != nil {
			t.Fatal(err)
		}
		tokKV, err := e.st.Get(ctx, tokenKey("eu"))
		if err != nil {
			t.Fatal(err)
		}
		siteKV, err := e.st.Get(ctx, sites.SiteKey("acme", "station-1"))
		if err != nil {
			t.Fatal(err)
		}
		if tokKV.ModRevision <= before || siteKV.ModRevision <= tokKV.ModRevision {
			t.Fatalf("revisions: before %d, token %d, site %d; want before < token < site", before, tokKV.ModRevision, siteKV.ModRevision)
		}

		all, err := e.st.Watch(ctx, "/o/acme/", before)
		if err != nil {
			t.Fatal(err)
		}
		evs := nextEvents(t, all, 2)
		if len(evs) != 2 || evs[0].KV.Key != tokenKey("eu") || evs[1].KV.Key != sites.SiteKey("acme", "station-1") ||
			evs[0].KV.ModRevision != tokKV.ModRevision || evs[1].KV.ModRevision != siteKV.ModRevision {
			t.Fatalf("events from %d: %+v", before, evs)
		}
		resumed, err := e.st.Watch(ctx, "/o/acme/", tokKV.ModRevision)
		if err != nil {
			t.Fatal(err)
		}
		evs = nextEvents(t, resumed, 1)
		if len(evs) != 1 || evs[0].KV.Key != sites.SiteKey("acme", "station-1") || evs[0].Type != store.EventPut {
			t.Fatalf("events resumed from the token's revision %d: %+v", tokKV.ModRevision, evs)
		}
		if e.tokenUses(t, "eu") != 1 || e.claims(t) != 0 {
			t.Fatalf("token uses %d, claims left %d; want 1, 0", e.tokenUses(t, "eu"), e.claims(t))
		}
	})
}

// Registrations racing for a token's uses through two consoles sharing the
// store register exactly as many sites as the token allows, and a name once.
func TestTokenUsesAcrossConsoles(t *testing.T) {
	backends(t, func(t *testing.T, e *identityEnv) {
		ctx := context.Background()
		srvs := []*sites.Server{e.server(t), e.server(t)}
		const maxUses, names = 4, 10
		plain := e.putToken(t, "burst", maxUses)
		var mu sync.Mutex
		codes := map[int]int{}
		var wg sync.WaitGroup
		// Each name is asked for twice, once through each console.
		for i := 0; i < 2*names; i++ {
			n := newNode(t)
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				err := registerAs(ctx, srvs[i%2], plain, fmt.Sprintf("s-%02d", i/2), n)
				mu.Lock()
				defer mu.Unlock()
				if err == nil {
					codes[http.StatusCreated]++
				} else {
					codes[errCode(err)]++
				}
			}(i)
		}
		wg.Wait()
		if codes[http.StatusCreated] != maxUses || codes[http.StatusCreated]+codes[http.StatusForbidden]+codes[http.StatusConflict] != 2*names {
			t.Fatalf("answers %v: want %d created, the rest used up or taken", codes, maxUses)
		}
		res, err := e.st.List(ctx, sites.SiteKey("acme", ""), store.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Items) != maxUses || e.tokenUses(t, "burst") != maxUses || e.claims(t) != 0 {
			t.Fatalf("%d sites, token uses %d, %d claims left; want %d, %d, 0", len(res.Items), e.tokenUses(t, "burst"), e.claims(t), maxUses, maxUses)
		}
	})
}

// On a store with one revision per transaction (etcd) a registration that
// stopped between its two transactions left a claim: the node's next
// attempt with the same token completes it without spending another use,
// another token waits for it, and takes the name over once it is
// abandoned.
func TestRegistrationClaimsOnEtcd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd")
	}
	ctx := context.Background()
	e := newIdentityEnvOn(t, backendtest.Etcd(t, etcdtest.Start(t), "/reg/"))
	srv := e.server(t)
	one := e.putToken(t, "one", 1)
	other := e.putToken(t, "other", 1)

	// What the first transaction of an interrupted registration leaves:
	// the token's use counted and a claim on the name.
	kv, _ := e.st.Get(ctx, tokenKey("one"))
	var tok v1.SiteToken
	json.Unmarshal(kv.Value, &tok)
	tok.Status.Uses = 1
	tb, _ := json.Marshal(&tok)
	claim, _ := json.Marshal(map[string]any{"token": "one", "hash": auth.HashToken(one), "time": e.clk.t})
	if _, err := e.st.Txn(ctx, store.Txn{Ops: []store.Op{store.Put(tokenKey("one"), tb), store.Put("/sitesclaim/acme/edge", claim)}}); err != nil {
		t.Fatal(err)
	}
	if err := registerAs(ctx, srv, other, "edge", newNode(t)); errCode(err) != http.StatusConflict {
		t.Fatalf("another token while the claim is fresh: %v", err)
	}
	if err := registerAs(ctx, srv, one, "edge", newNode(t)); err != nil {
		t.Fatalf("completing the claimed registration: %v", err)
	}
	if e.tokenUses(t, "one") != 1 || e.claims(t) != 0 || e.tokenUses(t, "other") != 0 {
		t.Fatalf("uses one %d, other %d, claims %d; want 1, 0, 0", e.tokenUses(t, "one"), e.tokenUses(t, "other"), e.claims(t))
	}
	if err := registerAs(ctx, srv, one, "edge-2", newNode(t)); errCode(err) != http.StatusForbidden {
		t.Fatalf("a one-use token used again: %v", err)
	}

	// An abandoned claim of another token: the name is taken over.
	if _, err := e.st.Txn(ctx, store.Txn{Ops: []store.Op{store.Put("/sitesclaim/acme/far", claim)}}); err != nil {
		t.Fatal(err)
	}
	e.clk.t = e.clk.t.Add(2 * time.Minute)
	if err := registerAs(ctx, srv, other, "far", newNode(t)); err != nil {
		t.Fatalf("taking over an abandoned claim: %v", err)
	}
	if e.tokenUses(t, "other") != 1 || e.claims(t) != 0 {
		t.Fatalf("uses other %d, claims %d; want 1, 0", e.tokenUses(t, "other"), e.claims(t))
	}

	// A claim whose name was created meanwhile by another path: the use
	// is given back.
	back := e.putToken(t, "back", 1)
	kv, _ = e.st.Get(ctx, tokenKey("back"))
	tok = v1.SiteToken{}
	json.Unmarshal(kv.Value, &tok)
	tok.Status.Uses = 1
	tb, _ = json.Marshal(&tok)
	claim, _ = json.Marshal(map[string]any{"token": "back", "hash": auth.HashToken(back), "time": e.clk.t})
	if _, err := e.st.Txn(ctx, store.Txn{Ops: []store.Op{store.Put(tokenKey("back"), tb), store.Put("/sitesclaim/acme/made", claim)}}); err != nil {
		t.Fatal(err)
	}
	e.putSite(t, "made", e.clk.t, false)
	if err := registerAs(ctx, srv, back, "made", newNode(t)); errCode(err) != http.StatusConflict {
		t.Fatalf("claim on a name created meanwhile: %v", err)
	}
	if e.tokenUses(t, "back") != 0 || e.claims(t) != 0 {
		t.Fatalf("uses back %d, claims %d; want 0, 0", e.tokenUses(t, "back"), e.claims(t))
	}
}

// Through a real console on bbolt and on etcd: a watch of Sites resumed
// from the resourceVersion of the SiteToken the registration used (the
// first of its two object writes) delivers the new Site.
func TestRegistrationWatchResumedFromTheTokenRevision(t *testing.T) {
	for _, backend := range []string{console.StoreBolt, console.StoreEtcd} {
		t.Run(backend, func(t *testing.T) {
			var configure func(*console.Options)
			if backend == console.StoreEtcd {
				if testing.Short() {
					t.Skip("starts etcd")
				}
				eps := etcdtest.Start(t)
				keyFile := filepath.Join(t.TempDir(), "master.key")
				if err := os.WriteFile(keyFile, []byte(base64.StdEncoding.EncodeToString(pki.NewMasterKey())), 0o600); err != nil {
					t.Fatal(err)
				}
				configure = func(o *console.Options) {
					o.Store, o.EtcdEndpoints, o.MasterKeyFile = console.StoreEtcd, eps, keyFile
				}
			}
			e := sitestest.StartWith(t, configure)
			admin := e.Client(t, "")
			tok := e.CreateToken(t, "", "eu", v1.SiteTokenSpec{MaxUses: 1})
			if code, _, msg := register(t, e, httpClient(t, e, nil), tok, "station-1", newNode(t)); code != http.StatusCreated {
				t.Fatalf("register: %d %s", code, msg)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			var st v1.SiteToken
			if err := admin.Get(ctx, "SiteToken", "", "eu", &st); err != nil || st.Status.Uses != 1 {
				t.Fatalf("token uses %d, %v", st.Status.Uses, err)
			}
			site := getSite(t, admin, "station-1")
			if st.Metadata.ResourceVersion == site.Metadata.ResourceVersion {
				t.Fatalf("the SiteToken and the Site share resourceVersion %s", site.Metadata.ResourceVersion)
			}
			w, err := admin.Watch(ctx, "Site", "", client.WatchOptions{ResourceVersion: st.Metadata.ResourceVersion})
			if err != nil {
				t.Fatal(err)
			}
			defer w.Stop()
			ev, ok := <-w.Events()
			if !ok {
				t.Fatalf("watch ended: %v", w.Err())
			}
			if ev.Type != "ADDED" || ev.Object == nil || ev.Object.Metadata.Name != "station-1" ||
				ev.Object.Metadata.ResourceVersion != site.Metadata.ResourceVersion {
				t.Fatalf("first event from resourceVersion %s: %s %+v", st.Metadata.ResourceVersion, ev.Type, ev.Object)
			}
		})
	}
}
