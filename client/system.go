package client

import (
	"context"
	"net/http"
)

// RotateDataKey asks the console to start a new primary data key for
// secrets at rest (system-tenant admins only) and returns its id.
func (c *Client) RotateDataKey(ctx context.Context) (string, error) {
	var out struct {
		PrimaryKeyID string `json:"primaryKeyID"`
	}
	if err := c.call(ctx, request{method: http.MethodPost, path: "/api/v1/system/rotatekey", body: []byte("{}"), contentType: "application/json"}, &out); err != nil {
		return "", err
	}
	return out.PrimaryKeyID, nil
}
