package distrib

import (
	"errors"
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestIsDecommissioned(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"stream closed", status.Error(codes.PermissionDenied, fmt.Errorf("site %q is decommissioned: %w", "s1", errSiteGone).Error()), true},
		{"stream refused", status.Error(codes.PermissionDenied, `site "s1" is decommissioned`), true},
		{"renewal refused, wrapped", fmt.Errorf("renewing the certificate of site %q: %w", "s1", status.Error(codes.PermissionDenied, `site "s1" is decommissioned`)), true},
		{"deleted site", status.Error(codes.PermissionDenied, errSiteGone.Error()), false},
		{"revoked certificate", status.Error(codes.PermissionDenied, `the certificate of site "s1" is revoked`), false},
		{"other code", status.Error(codes.Unavailable, `site "s1" is decommissioned`), false},
		{"plain error", errors.New(`site "s1" is decommissioned`), false},
		{"nil", nil, false},
	} {
		if got := IsDecommissioned(tc.err); got != tc.want {
			t.Errorf("%s: IsDecommissioned(%v) = %v, want %v", tc.name, tc.err, got, tc.want)
		}
	}
}
