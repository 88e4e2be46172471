package agent_test

import (
	"errors"
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/meridian-platform/meridian/internal/node/agent"
)

// TestRefusalKinds: the console's refusals are recognised whether the
// stream returned them as they are or wrapped (as sending the hello does).
func TestRefusalKinds(t *testing.T) {
	gone := status.Error(codes.PermissionDenied, `site "s" no longer exists: register again with a site token`)
	expired := status.Error(codes.Unauthenticated, "client certificate rejected: verifying client certificate: x509: certificate has expired or is not yet valid: ...")
	decommissioned := status.Error(codes.PermissionDenied, `site "s" is decommissioned`)
	for _, c := range []struct {
		name            string
		err             error
		again, expiredC bool
	}{
		{"gone", gone, true, false},
		{"gone, wrapped", fmt.Errorf("sending hello: %w", gone), true, false},
		{"expired", expired, false, true},
		{"expired, wrapped twice", fmt.Errorf("a: %w", fmt.Errorf("b: %w", expired)), false, true},
		{"decommissioned", decommissioned, false, false},
		{"plain error", errors.New("register again"), false, false},
		{"nil", nil, false, false},
	} {
		if got := agent.MustRegisterAgainForTest(c.err); got != c.again {
			t.Errorf("%s: register again = %v, want %v", c.name, got, c.again)
		}
		if got := agent.RefusedAsExpiredForTest(c.err); got != c.expiredC {
			t.Errorf("%s: refused as expired = %v, want %v", c.name, got, c.expiredC)
		}
	}
}
