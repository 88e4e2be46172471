package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/internal/store"
)

// handleHistory lists the kept generations of an object, oldest first.
func (s *Server) handleHistory(ctx context.Context, w http.ResponseWriter, tenant string, info v1.KindInfo, ref objRef) error {
	tenant = s.storageTenant(&reqCtx{Tenant: tenant}, info)
	if _, _, err := s.loadObject(ctx, tenant, info, ref); err != nil {
		return err
	}
	res, err := s.st.List(ctx, historyPrefix(tenant, ref), store.ListOptions{})
	if err != nil {
		return errInternal(fmt.Errorf("listing history of %s %q: %w", info.Kind, ref.Name, err))
	}
	out := List{APIVersion: v1.APIVersion, Kind: info.Kind + "List", Items: []any{},
		Metadata: ListMeta{ResourceVersion: strconv.FormatInt(res.Revision, 10)}}
	for _, kv := range res.Items {
		obj, err := s.decodeStored(info, kv)
		if err != nil {
			return err
		}
		s.redact(info, obj)
		out.Items = append(out.Items, obj)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// RollbackRequest is the body of POST .../{name}/rollback.
type RollbackRequest struct {
	Generation int64 `json:"generation"`
}

// handleRollback applies the spec of a kept generation as a new generation.
func (s *Server) handleRollback(ctx context.Context, w http.ResponseWriter, r *http.Request, rc *reqCtx, t target, ref objRef, dryRun bool) error {
	body, err := s.readBody(r, false)
	if err != nil {
		return err
	}
	var req RollbackRequest
	dec := json.NewDecoder(bytesReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return errBadRequest("decoding rollback request: %v", err)
	}
	if req.Generation <= 0 {
		return errInvalid("Rollback", "", v1.FieldErrors{v1.Invalid("generation", req.Generation, "must be a positive generation number")})
	}
	tenant := s.storageTenant(rc, t.info)
	if _, _, err := s.loadObject(ctx, tenant, t.info, ref); err != nil {
		return err
	}
	kv, err := s.st.Get(ctx, historyKey(tenant, ref, req.Generation))
	if errors.Is(err, store.ErrNotFound) {
		e := newErr(http.StatusNotFound, v1.StatusReasonNotFound, "generation %d of %s %q is not kept (see its history)", req.Generation, t.info.Kind, ref.Name)
		e.details = &StatusDetails{Kind: t.info.Kind, Name: ref.Name}
		return e
	}
	if err != nil {
		return errInternal(err)
	}
	old, err := s.decodeStored(t.info, kv)
	if err != nil {
		return err
	}
	out, err := s.update(ctx, rc, t, ref, "update", func(cur v1.Object) (v1.Object, error) {
		setSpec(cur, old)
		s.redact(t.info, cur)
		cur.GetMetadata().ResourceVersion = ""
		return cur, nil
	}, old, dryRun)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
