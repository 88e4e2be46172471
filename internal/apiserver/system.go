package apiserver

import (
	"context"
	"net/http"

	v1 "github.com/meridian-platform/meridian/api/v1"
)

// KeyRotator starts a new primary data key for secrets at rest
// (*pki.Keyring). Older keys keep decrypting what they sealed.
type KeyRotator interface {
	Rotate(ctx context.Context) (string, error)
}

// RotateKeyResponse is the answer of POST /api/v1/system/rotatekey.
type RotateKeyResponse struct {
	// PrimaryKeyID is the id of the new primary data key.
	PrimaryKeyID string `json:"primaryKeyID"`
}

// dataKeyKind names data keys in audit records and denials.
const dataKeyKind = "DataKey"

// handleRotateKey rotates the data key while the console serves (admins of
// the system tenant only, acting in it); the rotation is audited in the
// system tenant's chain.
func (s *Server) handleRotateKey(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	if r.Method != http.MethodPost {
		return errMethod(r.Method, r.URL.Path)
	}
	ctx := r.Context()
	if !rc.Principal.SystemAdmin || rc.Tenant != SystemTenant {
		return s.deny(ctx, r, rc, "rotate", dataKeyKind, "")
	}
	if s.opts.Keys == nil {
		return newErr(http.StatusNotFound, v1.StatusReasonNotFound, "this console has no data keys to rotate")
	}
	id, err := s.opts.Keys.Rotate(ctx)
	if err != nil {
		return errInternal(err)
	}
	p := &writePlan{rc: rc, verb: "rotate-key", info: v1.KindInfo{Kind: dataKeyKind}, tenant: SystemTenant, ref: objRef{Name: id}}
	p.auditOnly = true
	if _, err := s.submit(ctx, p); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, RotateKeyResponse{PrimaryKeyID: id})
	return nil
}
