package client

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	v1 "github.com/meridian-platform/meridian/api/v1"
)

// fakeConsole implements a small part of the REST contract in memory, for
// the client's unit tests only: create/get/update/patch/delete/list (with
// limit, continue and equality label selectors), watch from a
// resourceVersion, dryRun, bearer auth and Status errors.
type fakeConsole struct {
	t     *testing.T
	token string

	mu      sync.Mutex
	rev     int64
	objects map[string]map[string]any // key: collection path + "/" + name
	events  []fakeEvent
	changed *sync.Cond

	// throttle answers the next n requests with 429.
	throttle int
	// lastHeaders are the headers of the last request.
	lastHeaders http.Header
	lastQuery   string
}

type fakeEvent struct {
	rev        int64
	collection string
	typ        string
	obj        map[string]any
}

func newFakeConsole(t *testing.T, token string) *fakeConsole {
	f := &fakeConsole{t: t, token: token, objects: map[string]map[string]any{}}
	f.changed = sync.NewCond(&f.mu)
	return f
}

func (f *fakeConsole) status(w http.ResponseWriter, code int, reason, msg string, causes ...Cause) {
	w.Header().Set("Content-Type", "application/json")
	if code == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", "0")
	}
	w.WriteHeader(code)
	body := map[string]any{"apiVersion": "meridian/v1", "kind": "Status", "status": "Failure", "code": code, "reason": reason, "message": msg}
	if len(causes) > 0 {
		body["details"] = map[string]any{"kind": "OriginPool", "name": "x", "causes": causes}
	}
	_ = json.NewEncoder(w).Encode(body)
}

func (f *fakeConsole) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.lastHeaders = r.Header.Clone()
	f.lastQuery = r.URL.RawQuery
	if f.throttle > 0 {
		f.throttle--
		f.mu.Unlock()
		f.status(w, http.StatusTooManyRequests, v1.StatusReasonTooManyRequests, "slow down")
		return
	}
	f.mu.Unlock()
	if r.Header.Get("Authorization") != "Bearer "+f.token {
		f.status(w, http.StatusUnauthorized, v1.StatusReasonUnauthorized, "missing or unknown token")
		return
	}
	path := strings.TrimPrefix(r.URL.Path, "/api/v1/")
	switch path {
	case "whoami":
		_ = json.NewEncoder(w).Encode(map[string]any{"tenant": "acme", "name": "alice", "kind": "User", "roles": []any{"viewer", map[string]any{"role": "devops", "namespace": "retail"}}})
		return
	case "login":
		var in LoginRequest
		_ = json.NewDecoder(r.Body).Decode(&in)
		if in.Password != "secret" {
			f.status(w, http.StatusUnauthorized, v1.StatusReasonUnauthorized, "wrong user name or password")
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"token": "session-" + in.Username, "expiresAt": "2030-01-01T00:00:00Z"})
		return
	}
	segs := strings.Split(path, "/")
	var collection, name string
	switch {
	case len(segs) >= 3 && segs[0] == "namespaces":
		collection = strings.Join(segs[:3], "/")
		if len(segs) > 3 {
			name = segs[3]
		}
	default:
		collection = segs[0]
		if len(segs) > 1 {
			name = segs[1]
		}
	}
	dry := r.URL.Query().Get("dryRun") == "All"
	f.mu.Lock()
	defer f.mu.Unlock()
	key := collection + "/" + name
	switch {
	case r.Method == http.MethodPost && name == "":
		obj := f.readBody(w, r)
		if obj == nil {
			return
		}
		md := obj["metadata"].(map[string]any)
		key = collection + "/" + md["name"].(string)
		if _, ok := f.objects[key]; ok {
			f.status(w, http.StatusConflict, v1.StatusReasonAlreadyExists, fmt.Sprintf("%s %q already exists", obj["kind"], md["name"]))
			return
		}
		if spec, _ := obj["spec"].(map[string]any); spec != nil && spec["bad"] != nil {
			f.status(w, http.StatusUnprocessableEntity, v1.StatusReasonInvalid, "OriginPool \"x\" is invalid", Cause{Field: "spec.bad", Reason: "FieldUnknown", Message: "unknown field"})
			return
		}
		f.store(w, collection, key, "ADDED", obj, 1, dry)
	case r.Method == http.MethodGet && name == "" && r.URL.Query().Get("watch") == "true":
		f.watch(w, r, collection)
	case r.Method == http.MethodGet && name == "":
		f.list(w, r, collection)
	case r.Method == http.MethodGet:
		obj, ok := f.objects[key]
		if !ok {
			f.status(w, http.StatusNotFound, v1.StatusReasonNotFound, fmt.Sprintf("%q not found", name))
			return
		}
		_ = json.NewEncoder(w).Encode(obj)
	case r.Method == http.MethodPut:
		old, ok := f.objects[key]
		if !ok {
			f.status(w, http.StatusNotFound, v1.StatusReasonNotFound, fmt.Sprintf("%q not found", name))
			return
		}
		obj := f.readBody(w, r)
		if obj == nil {
			return
		}
		rv, _ := obj["metadata"].(map[string]any)["resourceVersion"].(string)
		if rv != "" && rv != old["metadata"].(map[string]any)["resourceVersion"] {
			f.status(w, http.StatusConflict, v1.StatusReasonConflict, "the object has been modified")
			return
		}
		gen := old["metadata"].(map[string]any)["generation"].(float64) + 1
		f.store(w, collection, key, "MODIFIED", obj, gen, dry)
	case r.Method == http.MethodPatch:
		if ct := r.Header.Get("Content-Type"); ct != "application/merge-patch+json" {
			f.status(w, http.StatusUnsupportedMediaType, v1.StatusReasonUnsupportedMediaType, "want merge patch, got "+ct)
			return
		}
		old, ok := f.objects[key]
		if !ok {
			f.status(w, http.StatusNotFound, v1.StatusReasonNotFound, fmt.Sprintf("%q not found", name))
			return
		}
		patch := f.readBody(w, r)
		if patch == nil {
			return
		}
		merged := mergePatch(deepCopy(old), patch).(map[string]any)
		gen := old["metadata"].(map[string]any)["generation"].(float64) + 1
		f.store(w, collection, key, "MODIFIED", merged, gen, dry)
	case r.Method == http.MethodDelete:
		old, ok := f.objects[key]
		if !ok {
			f.status(w, http.StatusNotFound, v1.StatusReasonNotFound, fmt.Sprintf("%q not found", name))
			return
		}
		if !dry {
			delete(f.objects, key)
			f.rev++
			f.events = append(f.events, fakeEvent{f.rev, collection, "DELETED", old})
			f.changed.Broadcast()
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"kind": "Status", "status": "Success"})
	default:
		f.status(w, http.StatusMethodNotAllowed, v1.StatusReasonMethodNotAllowed, r.Method+" not allowed")
	}
}

func (f *fakeConsole) readBody(w http.ResponseWriter, r *http.Request) map[string]any {
	data, _ := io.ReadAll(r.Body)
	var obj map[string]any
	if err := json.Unmarshal(data, &obj); err != nil {
		f.status(w, http.StatusBadRequest, v1.StatusReasonBadRequest, "bad JSON: "+err.Error())
		return nil
	}
	return obj
}

// store saves obj (unless dry) with console-set metadata and answers it.
func (f *fakeConsole) store(w http.ResponseWriter, collection, key, typ string, obj map[string]any, gen float64, dry bool) {
	md := obj["metadata"].(map[string]any)
	md["generation"] = gen
	md["uid"] = "uid-" + md["name"].(string)
	delete(obj, "status")
	if !dry {
		f.rev++
		md["resourceVersion"] = strconv.FormatInt(f.rev, 10)
		f.objects[key] = obj
		f.events = append(f.events, fakeEvent{f.rev, collection, typ, deepCopy(obj).(map[string]any)})
		f.changed.Broadcast()
	}
	_ = json.NewEncoder(w).Encode(obj)
}

func (f *fakeConsole) list(w http.ResponseWriter, r *http.Request, collection string) {
	q := r.URL.Query()
	var keys []string
	for k, obj := range f.objects {
		if !inCollection(k[:strings.LastIndex(k, "/")], collection) {
			continue
		}
		if sel := q.Get("labelSelector"); sel != "" && !matchesEquality(obj, sel) {
			continue
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	start := 0
	if c := q.Get("continue"); c != "" {
		start, _ = strconv.Atoi(c)
	}
	end := len(keys)
	if l, _ := strconv.Atoi(q.Get("limit")); l > 0 && start+l < end {
		end = start + l
	}
	items := []any{}
	for _, k := range keys[start:end] {
		items = append(items, f.objects[k])
	}
	meta := map[string]any{"resourceVersion": strconv.FormatInt(f.rev, 10)}
	if end < len(keys) {
		meta["continue"] = strconv.Itoa(end)
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"apiVersion": "meridian/v1", "kind": "OriginPoolList", "metadata": meta, "items": items})
}

func matchesEquality(obj map[string]any, sel string) bool {
	labels, _ := obj["metadata"].(map[string]any)["labels"].(map[string]any)
	for _, term := range strings.Split(sel, ",") {
		k, v, _ := strings.Cut(term, "=")
		if labels[k] != v {
			return false
		}
	}
	return true
}

// watch streams events after resourceVersion until the client goes away.
// Caller holds f.mu.
func (f *fakeConsole) watch(w http.ResponseWriter, r *http.Request, collection string) {
	from, _ := strconv.ParseInt(r.URL.Query().Get("resourceVersion"), 10, 64)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	flusher := w.(http.Flusher)
	flusher.Flush()
	done := r.Context().Done()
	go func() {
		<-done
		f.mu.Lock()
		f.changed.Broadcast()
		f.mu.Unlock()
	}()
	sent := from
	for {
		// Index loop: events appended while the lock is released for a
		// write are seen before waiting again.
		for i := 0; i < len(f.events); i++ {
			ev := f.events[i]
			if ev.rev <= sent || !inCollection(ev.collection, collection) {
				continue
			}
			line, _ := json.Marshal(map[string]any{"type": ev.typ, "object": ev.obj})
			f.mu.Unlock()
			_, err := w.Write(append(line, '\n'))
			flusher.Flush()
			f.mu.Lock()
			if err != nil {
				return
			}
			sent = ev.rev
		}
		if r.Context().Err() != nil {
			return
		}
		f.changed.Wait()
	}
}

func deepCopy(v any) any {
	data, _ := json.Marshal(v)
	var out any
	_ = json.Unmarshal(data, &out)
	return out
}

// mergePatch applies an RFC 7386 merge patch.
func mergePatch(target, patch any) any {
	pm, ok := patch.(map[string]any)
	if !ok {
		return patch
	}
	tm, ok := target.(map[string]any)
	if !ok {
		tm = map[string]any{}
	}
	for k, v := range pm {
		if v == nil {
			delete(tm, k)
			continue
		}
		tm[k] = mergePatch(tm[k], v)
	}
	return tm
}

// inCollection reports whether objects of collection c (e.g.
// "namespaces/retail/originpools") belong to the listed collection want
// ("originpools" lists across namespaces).
func inCollection(c, want string) bool {
	if c == want {
		return true
	}
	segs := strings.Split(c, "/")
	return !strings.Contains(want, "/") && len(segs) == 3 && segs[0] == "namespaces" && segs[2] == want
}
