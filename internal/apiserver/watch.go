package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/internal/labels"
	"github.com/meridian-platform/meridian/internal/store"
)

// Watch event types.
const (
	EventAdded    = "ADDED"
	EventModified = "MODIFIED"
	EventDeleted  = "DELETED"
	EventBookmark = "BOOKMARK"
	EventError    = "ERROR"
)

// WatchEvent is one line of a watch stream.
type WatchEvent struct {
	Type   string `json:"type"`
	Object any    `json:"object"`
}

// bookmarkObject carries only the resourceVersion a watch has reached.
type bookmarkObject struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Metadata   ListMeta `json:"metadata"`
}

// handleWatch streams changes as newline-delimited JSON events. With a
// resourceVersion it starts after that revision; without one it first
// sends the current objects as ADDED.
func (s *Server) handleWatch(ctx context.Context, w http.ResponseWriter, r *http.Request, tenant string, t target) error {
	q := r.URL.Query()
	sel, err := parseSelector(q)
	if err != nil {
		return err
	}
	fl, ok := w.(http.Flusher)
	if !ok {
		return errInternal(errors.New("watch: response writer cannot flush"))
	}
	prefix := kindPrefix(s.storageTenant(&reqCtx{Tenant: tenant}, t.info), t.info.Plural, t.namespace, t.allNamespaces)
	var initial []store.KV
	var from int64
	switch rv := q.Get("resourceVersion"); rv {
	case "", "0":
		after := ""
		for {
			res, err := s.st.List(ctx, prefix, store.ListOptions{Revision: from, After: after, Limit: 500})
			if err != nil {
				return listErr(err)
			}
			from = res.Revision
			initial = append(initial, res.Items...)
			if !res.More || len(res.Items) == 0 {
				break
			}
			after = res.Items[len(res.Items)-1].Key
		}
	default:
		n, err := strconv.ParseInt(rv, 10, 64)
		if err != nil || n < 0 {
			return errBadRequest("invalid resourceVersion %q", rv)
		}
		from = n
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch, err := s.st.Watch(wctx, prefix, from)
	if err != nil {
		if errors.Is(err, store.ErrCompacted) {
			return errGone("resourceVersion %d is too old (compacted): list again and watch from the list's resourceVersion", from)
		}
		return listErr(err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	fl.Flush()

	// send writes one event; flush sends what was written. The events of
	// one store response (whole revisions: a group commit writes several
	// objects at one revision) go out in one flush.
	send := func(typ string, obj any) bool {
		b, err := json.Marshal(WatchEvent{Type: typ, Object: obj})
		if err != nil {
			return false
		}
		_, err = w.Write(append(b, '\n'))
		return err == nil
	}
	for _, kv := range initial {
		obj, err := s.decodeStored(t.info, kv)
		if err != nil {
			continue
		}
		if !t.visible(obj, sel) {
			continue
		}
		s.redact(t.info, obj)
		if !send(EventAdded, obj) {
			return nil
		}
	}
	fl.Flush()
	last := from
	tick := time.NewTicker(s.opts.BookmarkInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			if !send(EventBookmark, bookmarkObject{APIVersion: v1.APIVersion, Kind: t.info.Kind,
				Metadata: ListMeta{ResourceVersion: strconv.FormatInt(last, 10)}}) {
				return nil
			}
			fl.Flush()
		case resp, ok := <-ch:
			if !ok {
				return nil
			}
			if resp.Err != nil {
				ae := toAPIError(listErr(resp.Err))
				send(EventError, Status{APIVersion: v1.APIVersion, Kind: "Status", Status: "Failure",
					Code: ae.code, Reason: ae.reason, Message: ae.message})
				fl.Flush()
				return nil
			}
			for _, ev := range resp.Events {
				if ev.KV.ModRevision > last {
					last = ev.KV.ModRevision
				}
				typ, obj := s.watchEvent(t, sel, ev)
				if typ == "" {
					continue
				}
				if !send(typ, obj) {
					return nil
				}
			}
			fl.Flush()
		}
	}
}

// watchEvent turns a store event into a watch event, applying the label
// selector: an object that stops matching is DELETED, one that starts
// matching is ADDED.
func (s *Server) watchEvent(t target, sel *labels.Selector, ev store.Event) (string, any) {
	info := t.info
	matches := func(obj v1.Object) bool { return t.visible(obj, sel) }
	obj, err := s.decodeStored(info, ev.KV)
	if err != nil {
		return "", nil
	}
	s.redact(info, obj)
	if ev.Type == store.EventDelete {
		if !matches(obj) {
			return "", nil
		}
		return EventDeleted, obj
	}
	var prevMatched bool
	if ev.PrevValue != nil {
		prev := info.New()
		if json.Unmarshal(ev.PrevValue, prev) == nil {
			prevMatched = matches(prev)
		}
	}
	now := matches(obj)
	switch {
	case now && ev.PrevValue != nil && prevMatched:
		return EventModified, obj
	case now:
		return EventAdded, obj
	case prevMatched:
		return EventDeleted, obj
	}
	return "", nil
}
