package client

import (
	"context"
	"fmt"
	"net/http"
)

// GetSubresource reads a read-only subresource of an object
// (GET .../<plural>/<name>/<sub>, e.g. a site's "telemetry" or a load
// balancer's "metrics") and decodes the answer into out.
func (c *Client) GetSubresource(ctx context.Context, kind, namespace, name, sub string, out any) error {
	res := ResourceFor(kind, namespace)
	if !validName(name) {
		return fmt.Errorf("client: %s of %s: invalid name %q", sub, res.Kind, name)
	}
	if !validName(sub) {
		return fmt.Errorf("client: %s %q: invalid subresource %q", res.Kind, name, sub)
	}
	return c.call(ctx, request{method: http.MethodGet, path: res.Path(nsFor(res, namespace), name, sub)}, out)
}
