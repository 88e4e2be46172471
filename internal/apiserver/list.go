package apiserver

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/internal/labels"
	"github.com/meridian-platform/meridian/internal/store"
)

// ListMeta is the metadata of a list.
type ListMeta struct {
	ResourceVersion string `json:"resourceVersion"`
	Continue        string `json:"continue,omitempty"`
}

// List is the answer to a list request.
type List struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Metadata   ListMeta `json:"metadata"`
	Items      []any    `json:"items"`
}

// continueToken is the decoded form of the opaque continue token: the
// revision the list is read at and the last key returned (relative to the
// list prefix, so a token can never point outside it).
type continueToken struct {
	Rev   int64  `json:"r"`
	After string `json:"a"`
}

func encodeContinue(t continueToken) string {
	b, _ := json.Marshal(t)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeContinue(s string) (continueToken, error) {
	var t continueToken
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err == nil {
		err = json.Unmarshal(b, &t)
	}
	if err != nil || t.Rev <= 0 || t.After == "" {
		return t, errBadRequest("invalid continue token")
	}
	return t, nil
}

// parseSelector parses the labelSelector query parameter.
func parseSelector(q map[string][]string) (*labels.Selector, error) {
	v := ""
	if vs := q["labelSelector"]; len(vs) > 0 {
		v = vs[0]
	}
	if strings.TrimSpace(v) == "" {
		return nil, nil
	}
	sel, err := labels.Parse(v)
	if err != nil {
		return nil, errBadRequest("invalid labelSelector %q: %v", v, err)
	}
	return &sel, nil
}

func parseLimit(v string) (int, error) {
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, errBadRequest("invalid limit %q: must be a non-negative integer", v)
	}
	return n, nil
}

// handleList answers a (paged) list, read at one revision.
func (s *Server) handleList(ctx context.Context, w http.ResponseWriter, r *http.Request, tenant string, t target) error {
	q := r.URL.Query()
	limit, err := parseLimit(q.Get("limit"))
	if err != nil {
		return err
	}
	sel, err := parseSelector(q)
	if err != nil {
		return err
	}
	prefix := kindPrefix(s.storageTenant(&reqCtx{Tenant: tenant}, t.info), t.info.Plural, t.namespace, t.allNamespaces)
	opts := store.ListOptions{}
	if c := q.Get("continue"); c != "" {
		tok, err := decodeContinue(c)
		if err != nil {
			return err
		}
		opts.Revision, opts.After = tok.Rev, prefix+tok.After
	}
	out := List{APIVersion: v1.APIVersion, Kind: t.info.Kind + "List", Items: []any{}}
	rev := opts.Revision
	for {
		page := store.ListOptions{Revision: rev, After: opts.After, Limit: 500}
		if limit > 0 && limit-len(out.Items) < page.Limit && sel == nil && t.nsFilter == nil {
			page.Limit = limit - len(out.Items)
		}
		res, err := s.st.List(ctx, prefix, page)
		if err != nil {
			return listErr(err)
		}
		rev = res.Revision
		for i, kv := range res.Items {
			opts.After = kv.Key
			obj, err := s.decodeStored(t.info, kv)
			if err != nil {
				return err
			}
			if !t.visible(obj, sel) {
				continue
			}
			s.redact(t.info, obj)
			out.Items = append(out.Items, obj)
			if limit > 0 && len(out.Items) >= limit {
				more := res.More
				for _, rest := range res.Items[i+1:] {
					if more {
						break
					}
					if sel == nil && t.nsFilter == nil {
						more = true
						break
					}
					o, err := s.decodeStored(t.info, rest)
					more = err == nil && t.visible(o, sel)
				}
				if more {
					out.Metadata.Continue = encodeContinue(continueToken{Rev: rev, After: strings.TrimPrefix(kv.Key, prefix)})
				}
				out.Metadata.ResourceVersion = strconv.FormatInt(rev, 10)
				writeJSON(w, http.StatusOK, out)
				return nil
			}
		}
		if !res.More {
			break
		}
	}
	out.Metadata.ResourceVersion = strconv.FormatInt(rev, 10)
	writeJSON(w, http.StatusOK, out)
	return nil
}

func listErr(err error) error {
	switch {
	case errors.Is(err, store.ErrCompacted):
		return errGone("the resourceVersion of this list or continue token is too old (compacted): start the list again without continue")
	case errors.Is(err, store.ErrWatchOverflow):
		return errGone("the watch fell too far behind: watch again from the last resourceVersion received")
	case errors.Is(err, store.ErrFutureRevision):
		return errBadRequest("the resourceVersion of this list or continue token is in the future")
	}
	return errInternal(err)
}

// visible reports whether a list or watch shows obj.
func (t target) visible(obj v1.Object, sel *labels.Selector) bool {
	md := obj.GetMetadata()
	if t.nsFilter != nil && !t.nsFilter[md.Namespace] {
		return false
	}
	return sel == nil || sel.Matches(md.Labels)
}
