package apiserver

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	v1 "github.com/meridian-platform/meridian/api/v1"
)

type watchLine struct {
	Type   string         `json:"type"`
	Object map[string]any `json:"object"`
}

// openWatch starts a watch and returns a channel of its events.
func (e *env) openWatch(ctx context.Context, path, token string) (<-chan watchLine, *http.Response) {
	e.t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "GET", e.hs.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := e.hs.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	ch := make(chan watchLine, 100)
	go func() {
		defer close(ch)
		defer res.Body.Close()
		sc := bufio.NewScanner(res.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var l watchLine
			if json.Unmarshal(sc.Bytes(), &l) == nil {
				ch <- l
			}
		}
	}()
	return ch, res
}

func next(t *testing.T, ch <-chan watchLine) watchLine {
	t.Helper()
	select {
	case l, ok := <-ch:
		if !ok {
			t.Fatal("watch ended")
		}
		return l
	case <-time.After(10 * time.Second):
		t.Fatal("no watch event")
	}
	return watchLine{}
}

func testWatch(t *testing.T, open storeOpener) {
	e := newEnv(t, open)
	tok := e.tenant("acme", "retail", "other")
	other := e.tenant("globex", "retail")
	base := "/api/v1/namespaces/retail/originpools"
	r := e.must(201, "POST", base, tok, pool("retail", "a"))
	rvA := get(r.obj(), "metadata.resourceVersion").(string)
	e.must(200, "PATCH", base+"/a", tok, `{"spec":{"loadBalancing":"random"}}`)
	e.must(201, "POST", base, tok, pool("retail", "b"))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// From a resourceVersion: the changes after it, in order, once.
	ch, res := e.openWatch(ctx, base+"?watch=true&resourceVersion="+rvA, tok)
	if res.StatusCode != 200 {
		t.Fatalf("watch: %d", res.StatusCode)
	}
	if l := next(t, ch); l.Type != "MODIFIED" || get(l.Object, "metadata.name") != "a" || get(l.Object, "spec.loadBalancing") != "random" {
		t.Fatalf("event 1: %+v", l)
	}
	if l := next(t, ch); l.Type != "ADDED" || get(l.Object, "metadata.name") != "b" {
		t.Fatalf("event 2: %+v", l)
	}
	// Other tenants, other namespaces and other kinds are not seen.
	e.must(201, "POST", base, other, pool("retail", "z"))
	e.must(201, "POST", "/api/v1/namespaces/other/originpools", tok, pool("other", "z"))
	e.must(201, "POST", "/api/v1/namespaces/retail/healthchecks", tok, obj("HealthCheck", "retail", "hc", map[string]any{"http": map[string]any{"path": "/"}}))
	e.must(200, "DELETE", base+"/b", tok, nil)
	if l := next(t, ch); l.Type != "DELETED" || get(l.Object, "metadata.name") != "b" {
		t.Fatalf("event 3: %+v", l)
	}

	// Without a resourceVersion: current state as ADDED, then live; label
	// selector turns leaving objects into DELETED.
	ch2, _ := e.openWatch(ctx, "/api/v1/originpools?watch=true&labelSelector=app%3Dshop", tok)
	e.must(200, "PATCH", base+"/a", tok, `{"metadata":{"labels":{"app":"shop"}}}`)
	if l := next(t, ch2); l.Type != "ADDED" || get(l.Object, "metadata.name") != "a" {
		t.Fatalf("selector add: %+v", l)
	}
	e.must(200, "PATCH", base+"/a", tok, `{"metadata":{"labels":{"app":"other"}}}`)
	if l := next(t, ch2); l.Type != "DELETED" {
		t.Fatalf("selector leave: %+v", l)
	}
	ch3, _ := e.openWatch(ctx, "/api/v1/originpools?watch=true", tok)
	seen := map[string]bool{}
	for i := 0; i < 2; i++ {
		l := next(t, ch3)
		if l.Type != "ADDED" {
			t.Fatalf("initial: %+v", l)
		}
		seen[get(l.Object, "metadata.namespace").(string)+"/"+get(l.Object, "metadata.name").(string)] = true
	}
	if !seen["retail/a"] || !seen["other/z"] {
		t.Fatalf("initial state: %v", seen)
	}
}

func testWatchBookmarkAndGone(t *testing.T, open storeOpener) {
	e := newEnv(t, open, func(o *Options) { o.BookmarkInterval = 50 * time.Millisecond })
	tok := e.tenant("acme", "retail")
	base := "/api/v1/namespaces/retail/originpools"
	r := e.must(201, "POST", base, tok, pool("retail", "a"))
	rv := get(r.obj(), "metadata.resourceVersion").(string)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, _ := e.openWatch(ctx, base+"?watch=true&resourceVersion="+rv, tok)
	l := next(t, ch)
	if l.Type != "BOOKMARK" || get(l.Object, "metadata.resourceVersion") != rv {
		t.Fatalf("bookmark: %+v", l)
	}
	e.must(200, "PATCH", base+"/a", tok, `{"spec":{"loadBalancing":"random"}}`)
	now, _ := e.st.Revision(context.Background())
	if err := e.st.Compact(context.Background(), now); err != nil {
		t.Fatal(err)
	}
	r = e.must(410, "GET", base+"?watch=true&resourceVersion=1", tok, nil)
	if r.status().Reason != v1.StatusReasonGone {
		t.Fatalf("gone: %s", r.body)
	}
}
